"""Work folders: scratch space for one submission at a time, never left holding plaintext.

``claim`` gives the process that ingests a submission its own folder under
``$INSURSHARE_HOME/work/`` (owner-only), locked with ``flock`` for as long as it works there,
and removes it afterwards. A process that is killed leaves its folder behind, with the
decrypted raw file or spill files in it; ``sweep`` (run whenever a folder is claimed) removes
every folder whose lock nobody holds, so leftovers live only until the next ingestion starts,
while folders that other workers of the same machine are using are left alone.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.config import Settings

_LOCK = ".in-use"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def submissions_dir(settings: Settings) -> Path:
    return settings.work_dir / "submissions"


def queries_dir(settings: Settings) -> Path:
    """Scratch folders of users' queries (spill files, results), one per running query."""
    return settings.work_dir / "queries"


@contextmanager
def claim(settings: Settings, name: str, *, root: Path | None = None) -> Iterator[Path]:
    """A fresh, locked, owner-only folder for ``name`` (a submission id) under ``root`` (default
    ``submissions_dir``); removed on exit."""
    root = root or submissions_dir(settings)
    folder = root / f"{_UNSAFE.sub('_', name)[:120]}-{os.getpid()}"
    with _sweeping(root):   # no sweep can run between creating the folder and locking it
        _sweep(root)
        folder.mkdir(mode=0o700)
        fd = os.open(folder / _LOCK, os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


def sweep(settings: Settings, root: Path | None = None) -> list[Path]:
    """Remove the work folders under ``root`` (default ``submissions_dir``) that no live process
    holds; return them."""
    root = root or submissions_dir(settings)
    with _sweeping(root):
        return _sweep(root)


@contextmanager
def _sweeping(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(root / ".sweep.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _sweep(root: Path) -> list[Path]:
    removed = []
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.is_symlink():
            continue
        if _abandoned(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _abandoned(folder: Path) -> bool:
    try:
        fd = os.open(folder / _LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)
