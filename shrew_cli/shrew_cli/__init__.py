"""The `shrew` command line: validate, dump, info, run, train and bench .sw programs."""

__version__ = "0.1.0"
