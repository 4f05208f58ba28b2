"""pytest configuration for ``pytest benchmarks --benchmark-only``.

The benchmark files are named ``bench_*.py`` (they are scripts first); this collects them as
test modules, and puts this folder on ``sys.path`` so they can ``import _compare`` under
pytest as they do when run as scripts. The root ``testpaths`` leaves this folder out of the
default test run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def pytest_collect_file(file_path: Path, parent):
    # a file named on the command line is collected by pytest itself
    if parent.session.isinitpath(file_path):
        return None
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
