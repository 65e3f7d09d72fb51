"""Fetching weight files: local path first, then a verified download into the cache.

Nothing downloads at import time or behind the user's back: a download happens only when a user names a
URL (or a feature needs a known file that is not on disk), is checked against its SHA-256, and fails with a
message that says where to put the file by hand when the machine is offline.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import UserError
from ..utils.files import set_default_mode

CACHE_ENV = "LATENTSTUDIO_CACHE"


def resolve_cache_dir(override: str | Path | None = None) -> Path:
    if override:
        return Path(override)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "latentstudio"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, sha256: str | None = None, cache_dir: str | Path | None = None,
          local_path: str | Path | None = None, timeout: float = 30.0, progress: bool = True) -> Path:
    """Return a local copy of `url`: `local_path` if given (checked), else the cached or downloaded file."""
    if local_path is not None:
        path = Path(local_path).expanduser()
        if not path.is_file():
            raise UserError(f"{path}: file not found (given instead of downloading {url})")
        _verify(path, sha256, url)
        return path
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or "download"
    target = resolve_cache_dir(cache_dir) / (sha256[:16] + "-" + name if sha256 else name)
    if target.is_file():
        _verify(target, sha256, url)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            _download(url, out, timeout, progress)
        _verify(Path(tmp), sha256, url)
        set_default_mode(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _download(url: str, out, timeout: float, progress: bool) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            bar = _progress_bar(total, url) if progress else None
            for block in iter(lambda: resp.read(1 << 20), b""):
                out.write(block)
                if bar is not None:
                    bar.update(len(block))
            if bar is not None:
                bar.close()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise UserError(f"could not download {url} ({getattr(exc, 'reason', exc)}); if this machine is offline, "
                        "download the file elsewhere and pass its local path instead") from None


def _progress_bar(total, url):
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1][:40], leave=False)


def _verify(path: Path, sha256: str | None, url: str) -> None:
    if sha256 is None:
        return
    got = sha256_file(path)
    if got != sha256.lower():
        raise UserError(f"{path}: SHA-256 {got[:12]}... does not match the expected {sha256[:12]}... for {url}; "
                        "the file is corrupt or not the one expected — delete it and try again")
