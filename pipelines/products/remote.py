"""Products in S3 object storage (``INSURSHARE_STORAGE``): written once, found through the audit trail.

A build writes its product files in the local scratch folder, as on one machine, then uploads each
under its content, ``<storage>/products/<name>/<sha256>.duckdb``, before the lake transaction whose
audit entry vouches for the build. That entry (``kind = 'products'``) names each product's SHA-256,
so it is what makes a build current: a reader on any machine reads the lake's last products entry,
fetches the objects it names into its scratch folder (once per release; the copy is checked against
the vouched SHA-256 before it is used) and opens the copy read-only, exactly as a local product. A
build that dies before its commit leaves objects that no entry names and that no reader opens; an
object never changes, so a reader cannot see half of a product, and every earlier release stays
in the bucket as the audit trail vouched for it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pipelines import objects, store
from pipelines.config import Settings
from pipelines.errors import InsurShareError


class ProductFileError(InsurShareError):
    """A product object is missing, or is not the file the audit trail vouches for."""


def object_url(settings: Settings, name: str, sha256: str) -> str:
    return f"{settings.storage}/products/{name}/{sha256}.duckdb"


def cache_dir(settings: Settings) -> Path:
    """Where this machine keeps its copies of the current products (scratch: safe to delete)."""
    return settings.work_dir / "products"


def current(settings: Settings) -> dict[str, str]:
    """``{product name: sha256}`` of the last build the audit trail vouches for ({} before any)."""
    con = store.connect(settings, read_only=True)
    try:
        if "audit_log" not in store.lake_tables(con):
            return {}
        row = con.execute(f"SELECT details FROM {store.LAKE}.audit_log WHERE kind = 'products' "
                          "ORDER BY seq DESC LIMIT 1").fetchone()
    finally:
        con.close()
    return dict(json.loads(row[0]).get("sha256", {})) if row else {}


def upload(settings: Settings, name: str, path: Path, sha256: str) -> str:
    """Put one built product under its content (a no-op when that exact file is there already)."""
    url = object_url(settings, name, sha256)
    objects.put_once(settings, url, path)
    return url


def local_copy(settings: Settings, name: str, sha256: str, *, built: Path | None = None) -> Path:
    """This machine's copy of product ``name`` at ``sha256``: ``built`` (the builder's own file) is
    moved into place; otherwise the object is downloaded and checked. Older copies are removed."""
    folder = cache_dir(settings)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{name}.{sha256[:16]}.duckdb"
    if built is not None:
        os.chmod(built, 0o600)
        os.replace(built, path)
    elif not path.exists():
        _download(settings, object_url(settings, name, sha256), sha256, path)
    for old in folder.glob(f"{name}.*.duckdb"):
        if old != path and old.name.count(".") == 2:
            old.unlink(missing_ok=True)
    return path


def _download(settings: Settings, url: str, sha256: str, path: Path) -> None:
    part = path.with_name(path.name + ".part")
    digest = hashlib.sha256()
    try:
        source = objects.open_read(settings, url)
    except FileNotFoundError:
        raise ProductFileError(f"The product file {url} is missing from the store, although the audit trail "
                               "vouches for it.", hint="Build the products again (`insurshare products build "
                               "--force`), then run `insurshare audit verify`.") from None
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with source, os.fdopen(fd, "wb") as out:
        while block := source.read(1 << 20):
            digest.update(block)
            out.write(block)
    if digest.hexdigest() != sha256:
        part.unlink()
        raise ProductFileError(f"The product file {url} is not the file the audit trail vouches for (its sha256 is "
                               f"{digest.hexdigest()[:12]}, not {sha256[:12]}): it was altered in the store.",
                               hint="Build the products again (`insurshare products build --force`) and find "
                                    "out who could write the bucket.")
    os.replace(part, path)


def object_size(settings: Settings, name: str, sha256: str) -> int | None:
    return objects.size(settings, object_url(settings, name, sha256))
