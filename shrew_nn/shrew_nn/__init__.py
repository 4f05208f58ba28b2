"""Neural-network layers, activations and losses for Shrew."""

__version__ = "0.1.0"
