"""`@import` resolution.

Owns reading imported files: a path is resolved relative to the directory of
the importing file, parsed, and attached to the importing Program under its
alias (`@import "layers/t.sw" as tfm;` -> `program.imports["tfm"]`; without
`as`, the alias is the file's stem). Imports are resolved transitively with
cycle detection; a missing file, an unreadable file or a cycle raises
IRImportError pointing at the `@import` line.
"""

from __future__ import annotations

from pathlib import Path

from . import ast as A
from .errors import IRImportError


def read_source(path: Path, span=None) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IRImportError(
            f"file not found: {path}", span, "check the path; imports are relative to the file"
        ) from None
    except OSError as exc:
        raise IRImportError(f"cannot read {path}: {exc.strerror}", span) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IRImportError(
            f"{path} is not valid UTF-8 (byte {exc.start})", span, "save the file as UTF-8"
        ) from None


def resolve_imports(program: A.Program, path: str | Path, _stack: tuple = (), _cache=None) -> None:
    """Load every `@import` of `program` (parsed from `path`) and its imports, recursively."""
    from .parser import parse

    cache: dict[Path, A.Program] = {} if _cache is None else _cache
    here = Path(path).resolve()
    stack = _stack + (here,)
    for item in program.of_type(A.Import):
        target = (here.parent / item.path).resolve()
        alias = item.alias or Path(item.path).stem
        if alias in program.imports:
            raise IRImportError(
                f"import alias '{alias}' is used twice",
                item.span,
                "give one of the imports a different name with 'as'",
            )
        if target in stack:
            chain = " -> ".join(p.name for p in stack[stack.index(target) :]) + f" -> {target.name}"
            raise IRImportError(
                f"import cycle: {chain}", item.span, "remove one of the imports in the cycle"
            )
        if target in cache:
            program.imports[alias] = cache[target]
            continue
        if not target.is_file():
            raise IRImportError(
                f"imported file not found: '{item.path}' (looked for {target})",
                item.span,
                "import paths are resolved relative to the importing file",
            )
        text = read_source(target, item.span)
        child = parse(text, str(target))
        resolve_imports(child, target, stack, cache)
        cache[target] = child
        program.imports[alias] = child
    program.imports_resolved = True
