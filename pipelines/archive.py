"""The raw archive: every file as received, encrypted at rest, addressed by its sha256.

Files are written once (read-only, never replaced) under ``archive/sha256/<ab>/<sha256>``,
encrypted with AES-256-GCM in 1 MiB chunks (each chunk authenticated with its index and a
last-chunk flag, so chunks cannot be reordered, dropped or cut off unnoticed). The archive
key lives outside the repository (``INSURSHARE_ARCHIVE_KEY_FILE``, default
``$INSURSHARE_HOME/secrets/archive.key``) and is separate from the pseudonymisation key.
Reading a file back decrypts it and checks that its sha256 is still its address.

With ``INSURSHARE_STORAGE=s3://bucket/prefix`` the archive is the objects under
``prefix/archive/sha256/``: a file is encrypted on this machine into its scratch folder, then
uploaded (written once: an object already at its address is kept), so the store never sees
plaintext; reading streams the object back through the same decryption and checks.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pipelines import objects
from pipelines.config import Settings
from pipelines.core.secrets import EXACT, read_secret, write_new_secret
from pipelines.errors import InsurShareError

MAGIC = b"ISARC1"
CHUNK = 1 << 20


class ArchiveCorrupt(InsurShareError):
    """An archived file no longer decrypts or no longer matches its sha256."""


@dataclass(frozen=True)
class ArchiveKey:
    key_id: str
    secret: bytes

    def __repr__(self) -> str:
        return f"ArchiveKey(key_id={self.key_id!r}, secret=<hidden>)"


def key_file(settings: Settings) -> Path:
    return settings.archive_key_file


def create_key(path: Path, key_id: str | None = None) -> ArchiveKey:
    """Write a new random archive key to ``path`` (mode 0600); refuse to overwrite one.

    Its id is ``a-`` and the key's fingerprint unless one is given (see ``fingerprint_id``).
    """
    key_id, secret = write_new_secret(path, key_id, prefix="a", what="An archive key",
                                      hint="Files encrypted with it could no longer be read.")
    return ArchiveKey(key_id, secret)


def load_key(settings: Settings) -> ArchiveKey:
    path = key_file(settings)
    return ArchiveKey(*read_secret(
        path, EXACT, missing=f"No archive key at {path}.",
        missing_hint="Create one with `insurshare keygen` (or set INSURSHARE_ARCHIVE_KEY_FILE); "
                     "keep it out of the repository and back it up with the archive.",
        malformed=f"The archive key in {path} is not in the form <key id>:<64 hex digits>."))


def path_of(settings: Settings, sha: str) -> Path:
    """The local file of archived file ``sha`` (the archive on local disk; see ``location``)."""
    return settings.archive_dir / "sha256" / sha[:2] / sha


def _remote(settings: Settings) -> objects.Location | None:
    where = objects.storage(settings)
    return None if where is None else objects.Location(where.bucket, where.key("archive"))


def location(settings: Settings, sha: str) -> str:
    """Where archived file ``sha`` is: its local path, or its ``s3://`` URL."""
    remote = _remote(settings)
    return remote.url(f"sha256/{sha[:2]}/{sha}") if remote else str(path_of(settings, sha))


def archived_size(settings: Settings, sha: str) -> int | None:
    """The size of archived file ``sha`` (encrypted), or None when the archive lacks it."""
    if _remote(settings):
        return objects.size(settings, location(settings, sha))
    path = path_of(settings, sha)
    return path.stat().st_size if path.exists() else None


def _open_archived(settings: Settings, sha: str):
    if _remote(settings):
        try:
            return objects.open_read(settings, location(settings, sha))
        except FileNotFoundError:
            return None
    src = path_of(settings, sha)
    return open(src, "rb") if src.exists() else None


def _aad(key_id: str, index: int, last: bool) -> bytes:
    return MAGIC + key_id.encode() + struct.pack(">Q?", index, last)


def store(settings: Settings, source: Path) -> tuple[str, int, Path | str]:
    """Encrypt ``source`` into the archive; return its sha256, size and archived path (or URL)."""
    key = load_key(settings)
    aes = AESGCM(key.secret)
    remote = _remote(settings)
    scratch = settings.work_dir / "archive" if remote else settings.archive_dir
    scratch.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=scratch, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as f:
            out.write(MAGIC + bytes([len(key.key_id)]) + key.key_id.encode())
            chunk, index = f.read(CHUNK), 0
            while True:
                following = f.read(CHUNK)
                digest.update(chunk)
                size += len(chunk)
                nonce = secrets.token_bytes(12)
                sealed = aes.encrypt(nonce, chunk, _aad(key.key_id, index, not following))
                out.write(nonce + struct.pack(">I", len(sealed)) + sealed)
                if not following:
                    break
                chunk, index = following, index + 1
            out.flush()
            os.fsync(out.fileno())
        sha = digest.hexdigest()
        if remote:
            objects.put_once(settings, location(settings, sha), Path(tmp))
            os.unlink(tmp)
            return sha, size, location(settings, sha)
        target = path_of(settings, sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            os.unlink(tmp)
        else:
            os.chmod(tmp, 0o400)   # read-only, and the owner's only
            os.replace(tmp, target)
        return sha, size, target
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def restore(settings: Settings, sha: str, dest: Path) -> Path:
    """Decrypt the archived file ``sha`` to ``dest`` and check its sha256; return ``dest``.

    The plaintext goes to a temporary file beside ``dest`` that replaces it only once every
    chunk authenticated and the sha256 matched: a wrong key, a damaged file or a crash never
    leaves a partial (or empty) ``dest``, nor a temporary file.
    """
    src = _open_archived(settings, sha)
    if src is None:
        raise ArchiveCorrupt(f"The archive has no file {sha[:12]} ({location(settings, sha)}).",
                             hint="Restore the archive from backup.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out, src:
            _decrypt(settings, src, sha, out)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dest


def _decrypt(settings: Settings, f, sha: str, out) -> None:
    """Decrypt stream ``f`` chunk by chunk into ``out``, checking each chunk and the whole sha256."""
    digest = hashlib.sha256()
    key_id = archived_key_id(f, sha)
    key = load_key(settings)
    if key.key_id != key_id:
        raise ArchiveCorrupt(f"Archived file {sha[:12]} was encrypted with archive key {key_id!r}, "
                             f"not {key.key_id!r}.",
                             hint=f"Point INSURSHARE_ARCHIVE_KEY_FILE at key {key_id!r} (restore it from "
                                  "backup if it was lost).")
    aes, index, last = AESGCM(key.secret), 0, False
    while not last:
        header = f.read(16)
        if len(header) < 16:
            raise ArchiveCorrupt(f"Archived file {sha[:12]} is cut short at chunk {index}.")
        nonce, length = header[:12], struct.unpack(">I", header[12:])[0]
        sealed = f.read(length)
        plain = None
        for flag in (False, True):
            try:
                plain = aes.decrypt(nonce, sealed, _aad(key_id, index, flag))
                last = flag
                break
            except InvalidTag:
                continue
        if plain is None:
            raise ArchiveCorrupt(f"Archived file {sha[:12]} fails authentication at chunk {index}: "
                                 "it was altered or damaged.", hint="Restore it from backup.")
        digest.update(plain)
        out.write(plain)
        index += 1
    if digest.hexdigest() != sha:
        raise ArchiveCorrupt(f"Archived file {sha[:12]} decrypts to content with another sha256.")


def archived_key_id(f, sha: str = "") -> str:
    """The id of the key an archive file (open for reading, at its start) was encrypted with."""
    if f.read(len(MAGIC)) != MAGIC:
        raise ArchiveCorrupt(f"Archived file {sha[:12]} is not an InsurShare archive file.")
    size = f.read(1)
    return f.read(size[0] if size else 0).decode("ascii", errors="replace")


def key_ids_in_archive(settings: Settings, limit: int = 1000) -> set[str]:
    """The ids of the keys the archive's files were encrypted with (looking at up to ``limit`` files)."""
    found: set[str] = set()
    remote = _remote(settings)
    if remote:
        for n, url in enumerate(objects.list_urls(settings, remote.url("sha256"))):
            if n >= limit:
                break
            try:
                with objects.open_read(settings, url) as f:
                    found.add(archived_key_id(f, url.rsplit("/", 1)[-1]))
            except (OSError, ArchiveCorrupt):
                continue
        return found
    root = settings.archive_dir / "sha256"
    for n, path in enumerate(p for p in root.glob("*/*") if p.is_file()) if root.exists() else ():
        if n >= limit:
            break
        try:
            with open(path, "rb") as f:
                found.add(archived_key_id(f, path.name))
        except (OSError, ArchiveCorrupt):
            continue
    return found
