"""``shrew launch -n N script.py ...``: run a script on N MPI ranks (a thin ``mpiexec``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ..common import UsageError, existing_file


def mpiexec_path() -> str:
    """``mpiexec`` beside this Python first (the ``mpich`` wheel of ``shrew[mpi]``), then PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise UsageError('mpiexec not found: install the MPI extra with `pip install "shrew[mpi]"`')
    return found


def cmd_launch(args, out) -> int:
    if args.n < 1:
        raise UsageError(f"-n must be at least 1, got {args.n}")
    script = existing_file(args.script)
    command = [mpiexec_path(), "-n", str(args.n), sys.executable, str(script), *args.args]
    out.note("$ " + " ".join(command))
    try:
        return subprocess.run(command, timeout=args.timeout).returncode
    except subprocess.TimeoutExpired:
        out.note(f"shrew launch: the job ran past --timeout {args.timeout} s and was stopped")
        return 124


def register(sub) -> None:
    c = sub.add_parser("launch", help="run a Python script on N MPI ranks (mpiexec)")
    c.add_argument("-n", type=int, required=True, help="number of ranks (processes)")
    c.add_argument("--timeout", type=float, default=None, help="stop the job after S seconds")
    c.add_argument("script", help="the Python script")
    c.add_argument("args", nargs="...", help="arguments passed to the script")
    c.set_defaults(func=cmd_launch)
