"""Build every audience's data product from one lake snapshot.

``build_products`` pins the lake's current snapshot, applies disclosure control to the
industry marts (``control``), and writes one DuckDB file per audience under
``$INSURSHARE_HOME/products/``: ``regulator.duckdb``, ``public.duckdb`` and
``member_<M>.duckdb`` for every member with accepted data (``catalog`` says what each holds). Each file is
written under a temporary name; once all are written, one lake transaction appends an audit
entry vouching for their SHA-256 and the build's values to the release ledger
(``releases``: what later builds may still publish depends on them), and then every file is renamed into place (an atomic
``os.replace``), so a reader opens either the old product or the new one, never half of it.
Products of members that no longer exist, or have no accepted data, are removed. Builds are serialised by a lock file.
A build is skipped (nothing written, no audit entry) when nothing was committed to the lake since
the last build, under the same disclosure rules, and every product file is still the one that
build vouched for: the products would be the same (``force`` builds anyway).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import duckdb

from pipelines import audit, store
from pipelines.config import Settings
from pipelines.core.domain import SubmissionStatus as Status
from pipelines.core.sql import literal
from pipelines.errors import ConfigError, NotFound
from pipelines.lake import Lake
from pipelines.marts.build import MARTS, last_build
from pipelines.marts.source import touches_only
from pipelines.products import catalog, releases, remote
from pipelines.products.control import ControlResult, apply_control
from pipelines.products.disclosure import PROFILES, REVISION, DisclosureRules

MEMBER_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def products_dir(settings: Settings) -> Path:
    """The product files' folder; on S3 storage, this machine's scratch copies (``remote``)."""
    return remote.cache_dir(settings) if settings.storage else settings.home / "products"


def product_path(settings: Settings, name: str) -> Path:
    """The file of product ``name`` (``regulator``, ``public`` or ``member_<M>``)."""
    return products_dir(settings) / f"{name}.duckdb"


@dataclass(frozen=True)
class ProductsResult:
    lake_snapshot: int
    marts_snapshot: int
    rules: DisclosureRules
    rows: dict[str, dict[str, int]]      # product -> table -> rows
    control: ControlResult
    seconds: float
    folder: Path | str      # where the products are: a folder, or their s3:// prefix
    skipped: bool = False    # the lake, the rules and the files are as the last build left them
    steps: dict[str, float] = field(default_factory=dict)   # seconds per step of the build

    def lines(self) -> list[str]:
        if self.skipped:
            return [f"products are up to date: built from lake snapshot {self.lake_snapshot} "
                    f"(marts from data snapshot {self.marts_snapshot}), release {self.control.release}, "
                    f"disclosure {self.rules.describe()}; nothing changed since (use --force to build again)"]
        withheld = ", ".join(f"{reason} {n:,}" for reason, n in sorted(self.control.withheld.items()))
        out = [f"built {len(self.rows)} products from lake snapshot {self.lake_snapshot} "
               f"(marts from data snapshot {self.marts_snapshot}) in {self.seconds:.1f} s under {self.folder}",
               f"disclosure {self.rules.describe()}",
               f"industry cells: {self.control.published:,} published, "
               f"{sum(self.control.withheld.values()):,} withheld ({withheld or 'none'})",
               f"release {self.control.release}: {self.control.revised:,} cells revised since earlier releases, "
               f"{self.control.withheld.get(REVISION, 0):,} revisions held back"]
        for name, tables in self.rows.items():
            out.append(f"  {name + '.duckdb':<22} {len(tables):>3} tables {sum(tables.values()):>10,} rows")
        return out


def build_products(settings: Settings, rules: DisclosureRules | None = None, *,
                   force: bool = False) -> ProductsResult:
    """Rebuild every product from the lake's current snapshot under ``rules`` (default profile).

    Skipped (``skipped``, nothing written) when the last build left the lake, the rules and the
    files as they are now, unless ``force``.
    """
    rules = rules or PROFILES["default"]
    started = time.perf_counter()
    folder = products_dir(settings)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    with store.file_lock(settings, "products"):
        _remove_leftovers(folder)
        snapshot = _current_snapshot(settings)
        with Lake(settings, read_only=True, snapshot=snapshot) as lake:
            con = lake.con
            lake_tables = store.lake_tables(con)
            same = None if force else _unchanged(con, settings, snapshot, rules, lake_tables)
            if same is not None:
                return replace(same, seconds=round(time.perf_counter() - started, 1))
            marts_snapshot = last_build(con)
            if marts_snapshot is None or not set(MARTS) <= lake_tables:
                raise NotFound(f"The lake at snapshot {snapshot} has no marts to build products from.",
                               hint="Build them first with `insurshare build-marts`.")
            steps: dict[str, float] = {}
            control = apply_control(con, rules, lake_tables, steps)
            info = {"release": control.release, "lake_snapshot": snapshot, "marts_source_snapshot": marts_snapshot,
                    "disclosure_profile": rules.profile, "min_members": rules.min_members,
                    "max_share": rules.max_share, "built_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    "units_published": control.published, "units_withheld": sum(control.withheld.values())}
            rows = _write_all(con, settings, lake_tables, info, steps)
            clock = time.perf_counter()
            ledger = releases.pending(con, control.release)
        digests = {name: _sha256(_temp(settings, name)) for name in rows}
        for name in rows if settings.storage else ():   # in the store before the entry that makes them current
            remote.upload(settings, name, _temp(settings, name), digests[name])
        _audit(settings, snapshot, marts_snapshot, rules, rows, digests, control, info, ledger)
        for name in rows:
            if settings.storage:
                remote.local_copy(settings, name, digests[name], built=_temp(settings, name))
            else:
                os.chmod(_temp(settings, name), 0o600)   # a product is for its audience only
                os.replace(_temp(settings, name), product_path(settings, name))
        for old in folder.glob("member_*.duckdb"):
            if old.name.split(".")[0] not in rows:
                old.unlink()
        steps["ledger_and_audit"] = round(time.perf_counter() - clock, 3)
    return ProductsResult(snapshot, marts_snapshot, rules, rows, control,
                          round(time.perf_counter() - started, 1), _where(settings), steps=steps)


def _where(settings: Settings) -> Path | str:
    return f"{settings.storage}/products" if settings.storage else products_dir(settings)


# Tables whose commits do not make the products stale: every access to the portal is sealed into
# the lake (access_log and an audit entry), and credential changes are audited.
BOOKKEEPING = frozenset({"access_log", "audit_log", "audit_head"})


def _unchanged(con: duckdb.DuckDBPyConnection, settings: Settings, snapshot: int, rules: DisclosureRules,
               lake_tables: set[str]) -> ProductsResult | None:
    """The last build, when nothing but bookkeeping (``BOOKKEEPING``: the portal's access log and
    the audit chain, which no product reads as data) was written to the lake since it committed,
    it ran under ``rules`` and the product files are exactly those it vouched for; else None."""
    if "audit_log" not in lake_tables:
        return None
    built = con.execute(f"SELECT max(snapshot_id) FROM ducklake_snapshots('{store.LAKE}') WHERE snapshot_id <= ? "
                        "AND starts_with(commit_message, 'build products from snapshot ')", [snapshot]).fetchone()[0]
    if built is None:
        return None
    since = con.execute(f"SELECT changes FROM ducklake_snapshots('{store.LAKE}') WHERE snapshot_id > ? "
                        "AND snapshot_id <= ?", [built, snapshot]).fetchall()
    if not all(touches_only(con, changes, BOOKKEEPING) for (changes,) in since):
        return None
    entry = con.execute(f"SELECT details, content_sha256 FROM {store.LAKE}.audit_log WHERE kind = 'products' "
                        "ORDER BY seq DESC LIMIT 1").fetchone()
    if entry is None:
        return None
    details = json.loads(entry[0])
    if details.get("rules") != _rules_record(rules):
        return None
    if settings.storage:   # the objects the entry names, where they still are
        files = {name: sha for name, sha in details.get("sha256", {}).items()
                 if remote.object_size(settings, name, sha) is not None}
    else:
        files = {p.stem: _sha256(p) for p in products_dir(settings).glob("*.duckdb")}
    if set(files) != set(details.get("products", {})) or audit.content_digest(files) != entry[1]:
        return None
    withheld = details.get("units_withheld") or {}
    control = ControlResult(units=int(details.get("units_published", 0)) + sum(withheld.values()),
                            withheld=withheld, release=int(details.get("release", 1)))
    return ProductsResult(int(details["lake_snapshot"]), int(details["marts_source_snapshot"]), rules,
                          {name: {"rows": n} for name, n in details["products"].items()}, control, 0.0, _where(settings),
                          skipped=True)


# The regulator's product, attached read-only while the members' products are cut from it.
LAKE_COPY = "lake_copy"


def _write_all(con: duckdb.DuckDBPyConnection, settings: Settings, lake_tables: set[str], info: dict,
               steps: dict[str, float]) -> dict[str, dict[str, int]]:
    """Write every product (``_plans``); return each one's row counts per table.

    The regulator's comes first: it copies every lake table as it is at the snapshot. Each
    member's own rows and marts are then read from that copy, not from the lake: a query on a
    DuckLake table costs a walk of the catalog's files and snapshots, which grow with the
    number of members, so reading the lake once per member made the members' products grow
    with the square of the members. The copy holds the same rows, in the same order."""
    rows: dict[str, dict[str, int]] = {}
    attached = False
    try:
        for name, audience, member, tables in _plans(con, lake_tables, settings):
            clock = time.perf_counter()
            if audience == "member" and not attached:
                con.execute(f"ATTACH {literal(str(_temp(settings, 'regulator')))} AS {LAKE_COPY} (READ_ONLY)")
                attached = True
            rows[name] = _write(con, _temp(settings, name), tables, audience, member, info)
            step = "write_members" if audience == "member" else f"write_{audience}"
            steps[step] = round(steps.get(step, 0.0) + time.perf_counter() - clock, 3)
    finally:
        if attached:
            con.execute(f"DETACH {LAKE_COPY}")
    return rows


def _plans(con: duckdb.DuckDBPyConnection, lake_tables: set[str], settings: Settings):
    """(product name, audience, member, tables) of every product to build: the regulator's
    first (the members' tables are read from its copy of the lake, see ``_write_all``)."""
    yield "regulator", "regulator", None, catalog.regulator_tables(lake_tables)
    yield "public", "public", None, catalog.public_tables()
    for member in _members(con, lake_tables):
        yield (f"member_{member}", "member", member,
               catalog.member_tables(member, lake_tables, settings.schemas_dir, source=LAKE_COPY))


def _members(con: duckdb.DuckDBPyConnection, lake_tables: set[str]) -> list[str]:
    """Members with accepted data: an accepted submission, or rows in the lake.

    A registered member that has sent nothing accepted gets no product (its file is never
    written, and one an earlier build left is removed); the first build after its first
    accepted submission writes it."""
    sources = [f"SELECT member_id FROM {store.LAKE}.{t}" for t in ("policy", "claim") if t in lake_tables]
    if "submissions" in lake_tables:
        sources.append(f"SELECT member_id FROM {store.LAKE}.submissions WHERE status = {Status.ACCEPTED.sql}")
    if not sources:
        return []
    found = sorted(r[0] for r in con.execute(" UNION ".join(sources)).fetchall() if r[0] is not None)
    for member in found:
        if not MEMBER_ID.fullmatch(member):
            raise ConfigError(f"Member id {member!r} cannot name a product file.",
                              hint="Member ids are letters, digits, '-' and '_' (at most 32).")
    return found


def _write(con: duckdb.DuckDBPyConnection, path: Path, tables: list[catalog.Table], audience: str,
           member: str | None, info: dict) -> dict[str, int]:
    """Write one product file; return its tables' row counts."""
    path.unlink(missing_ok=True)
    con.execute(f"ATTACH {literal(str(path))} AS product")
    try:
        rows = {}
        for table in tables:
            con.execute(f"CREATE TABLE product.{table.name} AS {table.sql}")
            rows[table.name] = con.execute(f"SELECT count(*) FROM product.{table.name}").fetchone()[0]
        con.execute("CREATE TABLE product.product_info AS SELECT ?::VARCHAR AS audience, ?::VARCHAR AS member_id, "
                    + ", ".join(f"?::{_TYPES[k]} AS {k}" for k in info), [audience, member, *info.values()])
        con.execute("CREATE TABLE product.catalog (table_name VARCHAR, rows BIGINT, description VARCHAR)")
        con.executemany("INSERT INTO product.catalog VALUES (?, ?, ?)",
                        [(t.name, rows[t.name], t.description) for t in tables]
                        + [("product_info", 1, catalog.DOCS["product_info"]),
                           ("catalog", len(tables) + 2, catalog.DOCS["catalog"])])
    finally:
        con.execute("DETACH product")
    return rows


_TYPES = {"release": "BIGINT", "lake_snapshot": "BIGINT", "marts_source_snapshot": "BIGINT", "disclosure_profile": "VARCHAR",
          "min_members": "INTEGER", "max_share": "DOUBLE", "built_at": "TIMESTAMP",
          "units_published": "BIGINT", "units_withheld": "BIGINT"}


def _audit(settings: Settings, snapshot: int, marts_snapshot: int, rules: DisclosureRules,
           rows: dict[str, dict[str, int]], digests: dict[str, str], control: ControlResult,
           info: dict, ledger: tuple) -> None:
    """One audit entry for the build, vouching for every product file's SHA-256, and the
    release's values in the ledger, in one transaction."""
    details = {"release": control.release, "lake_snapshot": snapshot, "marts_source_snapshot": marts_snapshot, "profile": rules.profile,
               "min_members": rules.min_members, "max_share": rules.max_share, "rules": _rules_record(rules),
               "products": {name: sum(t.values()) for name, t in rows.items()}, "sha256": digests,
               "units_withheld": control.withheld, "units_published": control.published}
    with Lake(settings, read_only=False) as lake:
        lake.write(lambda c: (releases.record(c, control.release, _ledger_info(info, control), *ledger),
                                      audit.append(c, "products", f"snapshot {snapshot}", details, content=digests)),
            message=f"build products from snapshot {snapshot}", extra=json.dumps({"lake_snapshot": snapshot}))


def _rules_record(rules: DisclosureRules) -> dict:
    """Every field of the rules, as the audit entry keeps them (a later build compares them)."""
    return json.loads(json.dumps(asdict(rules), default=str))


def _ledger_info(info: dict, control: ControlResult) -> dict:
    return {**info, "units_revised": control.revised, "units_held": control.withheld.get(REVISION, 0)}


def _current_snapshot(settings: Settings) -> int:
    with Lake(settings, read_only=True) as lake:
        con = lake.con
        return store.current_snapshot(con)


def _remove_leftovers(folder: Path) -> None:
    """Remove what a killed build or query left: half-written ``*.duckdb.tmp`` files (and their
    WALs) and ``*.duckdb.tmp/`` spill folders (a product query used to spill next to the product)."""
    for stale in folder.glob("*.duckdb.tmp*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale)
        else:
            stale.unlink()


def _temp(settings: Settings, name: str) -> Path:
    return products_dir(settings) / f"{name}.duckdb.tmp"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


