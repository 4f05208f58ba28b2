"""The ``shrew`` command: validate, inspect, run, train, export, import, quantize, profile,
generate and launch .sw programs.

``main(argv)`` parses the arguments, runs one subcommand (see ``commands/``) and turns
every user-facing failure into one short message on stderr and a non-zero exit status:
1 for a program or runtime error (rendered with file, line and column for .sw errors),
2 for a bad command line. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import shrew_core as sc
import shrew_ir

from . import __version__
from .commands import FAMILIES
from .common import UsageError
from .output import Output


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="shrew",
        description="Validate, inspect, run, train, export and deploy .sw model programs.",
    )
    p.add_argument("--version", action="version", version=f"shrew {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for family in FAMILIES:
        family.register(sub)
    for c in sub.choices.values():
        c.add_argument("--json", action="store_true", help="print one JSON document (scripts)")
        c.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Output(as_json=args.json)
    try:
        code = args.func(args, out)
    except UsageError as e:
        return _fail(args, out, f"shrew {args.command}: {e}", 2)
    except shrew_ir.IRError as e:
        return _fail(args, out, str(e), 1)
    except NotImplementedError as e:
        return _fail(args, out, f"shrew {args.command}: not available: {e}", 1)
    except (sc.ShrewError, OSError, ValueError, KeyError, TypeError) as e:
        return _fail(args, out, f"shrew {args.command}: {type(e).__name__}: {e}", 1)
    except ImportError as e:
        return _fail(args, out, f"shrew {args.command}: {e}", 1)
    except KeyboardInterrupt:
        return _fail(args, out, f"shrew {args.command}: interrupted", 130)
    out.finish()
    return code


def _fail(args, out: Output, message: str, code: int) -> int:
    if args.debug:
        raise
    out.note(message)
    if out.as_json:
        out.set(error=message)
        out.finish()
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
