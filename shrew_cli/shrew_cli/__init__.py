"""The `shrew` command: dump, validate, info, bench, run, train, export .sw models."""

__version__ = "0.1.0"
