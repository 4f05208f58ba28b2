"""Downloading dataset files: a cache directory, streaming download to a temporary file,
SHA-256 verification, atomic rename. The only place shrew_data reads the environment
(``SHREW_DATA_HOME``)."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from .errors import DataError


def default_cache_dir() -> Path:
    """``$SHREW_DATA_HOME`` or ``~/.cache/shrew/data``."""
    env = os.environ.get("SHREW_DATA_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "shrew" / "data"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def download_file(url: str, dest: str | os.PathLike, sha256: str | None = None,
                  timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest``; with ``sha256`` the digest must match or nothing is kept."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:
            while block := resp.read(1 << 20):
                h.update(block)
                out.write(block)
    except (urllib.error.URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DataError(f"download of {url} failed: {reason}") from exc
    digest = h.hexdigest()
    if sha256 is not None and digest != sha256.lower():
        part.unlink(missing_ok=True)
        raise DataError(
            f"checksum mismatch for {url}: expected sha256 {sha256}, got {digest}; "
            "the download was discarded (a wrong mirror or a corrupted transfer)"
        )
    os.replace(part, dest)
    return dest
