"""Datasets, DataLoader with background prefetch, transforms, MNIST and bundled datasets for Shrew."""

__version__ = "0.1.0"
