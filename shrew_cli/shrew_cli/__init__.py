"""The `shrew` command line (not built yet: this package is empty and installs no command)."""

__version__ = "0.1.0"
