"""The ``shrew`` subcommands, one module per family. Each module has ``register(sub)``,
which adds its subparsers with ``set_defaults(func=...)``; a command function takes the
parsed arguments and an :class:`~shrew_cli.output.Output` and returns an exit status."""

from . import convert, generate, inspect, launch, profile, run, train

FAMILIES = (inspect, run, train, convert, profile, generate, launch)
