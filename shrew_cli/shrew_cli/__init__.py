"""The `shrew` command line: validate, inspect, run, train, export, import, quantize, profile,
generate and launch .sw programs."""

__version__ = "0.1.0"
