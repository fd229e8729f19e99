"""The landing zone: members (or their transfer jobs) drop a file and then its manifest.

``$INSURSHARE_HOME/landing/<member id>/**/<file>`` is taken into intake once
``<file>.manifest.json`` exists beside it (the manifest is written last, so a file still being
uploaded is left alone). The folder is the member's identity: a manifest that names another
member is refused, and files outside a member's folder are refused too.

Taking a file is safe against what a hostile or careless sender can put there:
- only regular files are read: a symbolic link is never followed (it is removed and the
  refusal recorded; what it pointed to is not read), and FIFOs, sockets and devices are
  never opened;
- the file and its manifest are first renamed into a private folder (``landing/.taking/``),
  atomically, so a corrected file uploaded meanwhile lands beside them, untouched, and is
  taken on the next run;
- a file that changes while it is being read is archived as read and put back, to be taken
  again once it is stable; it is never deleted unread.
After intake the raw file is in the archive, and both files leave the landing zone, whether
the submission was received or refused.

Instead of one manifest per file, a member may drop one listing (``<name>.listing.csv`` or
``<name>.listing.json``, the columns of ``insurshare submit --listing``, for files in the same
folder): each of its entries becomes that file's ``FILE.manifest.json`` (never over one that is
there), then the listing is removed, and the files are taken as above. Its ``received_at`` is
ignored: a file arrives when it is taken. One file's failure never stops the others: errors a
retry can fix put the file back and are raised after every other file was taken.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from pipelines import archive
from pipelines.bulk import BatchFile, read_listing
from pipelines.config import Settings
from pipelines.errors import InsurShareError, SubmissionError, is_retryable
from pipelines.faults import checkpoint
from pipelines.intake import MANIFEST_SUFFIX, MEMBER_RE, Manifest, receive, refuse_file, refuse_unread

TAKING = ".taking"
LISTING_SUFFIXES = (".listing.csv", ".listing.json")
log = logging.getLogger(__name__)


def landing_dir(settings: Settings) -> Path:
    return settings.home / "landing"


@dataclass(frozen=True)
class Landed:
    """A data file and its manifest as found, and the member folder they are in."""

    data: Path
    manifest: Path
    member: str | None      # None: not inside a member's folder


class LandingFailed(InsurShareError):
    """Some landed files could not be taken (each recorded as refused); the others were."""


def receive_landing(settings: Settings, progress: Callable[[str], None] | None = None) -> list[str]:
    """Take every landed file that has its manifest into intake; return one line per file.

    One file's failure never stops the others. Afterwards, an error a retry can fix is raised
    (those files were put back); failures of the platform itself raise ``LandingFailed`` (those
    files were archived and recorded as refused), so the run does not report success.
    """
    root = landing_dir(settings)
    if not root.is_dir() or root.is_symlink():
        return []
    if progress:
        for line in [*expand_listings(root), *not_ready(root)]:
            progress(line)
    else:
        expand_listings(root)
    lines, transient, failed = [], [], []
    for landed in _landed(root):
        try:
            line = _take(settings, root, landed)
        except Exception as exc:   # one file never stops the others
            if is_retryable(exc):
                transient.append(exc)
                line = f"{landed.data.name}: not taken now, will be taken again - {exc}"
            else:
                log.exception("taking %s failed", landed.data)
                failed.append(landed.data.name)
                line = f"{landed.data.name}: failed - {_refuse_failure(settings, root, landed, exc)}"
        lines.append(line)
        if progress:
            progress(line)
    try:
        (root / TAKING).rmdir()   # left only while a file is being taken
    except OSError:
        pass
    if transient:
        raise transient[0]
    if failed:
        raise LandingFailed(f"{len(failed)} landed file(s) could not be taken: {', '.join(failed[:10])}.",
                            hint="They were archived and recorded as refused; the log has the cause.")
    return lines


def not_ready(root: Path) -> list[str]:
    """One line per landed file that is not taken yet, and why: a data file whose manifest has not
    arrived (or is misnamed), a manifest without its data file. Nothing is read or moved."""
    lines = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        names = {n for n in files if not n.startswith(".")}
        where = Path(folder).relative_to(root.parent)
        for name in sorted(names):
            if name.endswith(MANIFEST_SUFFIX):
                data = name[: -len(MANIFEST_SUFFIX)]
                if data and data not in names:
                    meant = sorted(n for n in names if Path(n).stem == data and not n.endswith(MANIFEST_SUFFIX))
                    lines.append(f"{where / name}: a manifest without its file {data!r}"
                                 + (f"; if it describes {meant[0]}, name it {meant[0]}{MANIFEST_SUFFIX}"
                                    if meant else "; the file is taken once both have arrived"))
            elif name.endswith(LISTING_SUFFIXES):
                continue
            elif name + MANIFEST_SUFFIX not in names and Path(name).stem + MANIFEST_SUFFIX not in names:
                lines.append(f"{where / name}: waiting for its manifest {name}{MANIFEST_SUFFIX} "
                             "(a file is taken once its manifest has arrived)")
    return lines


def expand_listings(root: Path) -> list[str]:
    """Write the manifests of every listing in a member's folder and remove the listing; one line
    per listing (and per entry that was not written, and why). A listing that cannot be read is
    left in place, with a line, for its sender to replace."""
    lines = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        for name in sorted(n for n in files if n.endswith(LISTING_SUFFIXES) and not n.startswith(".")):
            listing = here / name
            where = listing.relative_to(root.parent)
            if _not_regular(listing) or here == root:
                lines.append(f"{where}: not read ({_not_regular(listing) or 'not inside a member folder'})")
                continue
            try:
                entries = read_listing(listing)
            except SubmissionError as exc:
                lines.append(f"{where}: not read, left in place - {exc}")
                continue
            problems = [line for entry in entries if (line := _write_manifest(here, entry))]
            listing.unlink()
            lines.append(f"{where}: {len(entries) - len(problems)} manifest(s) written")
            lines += [f"{where}: {line}" for line in problems]
    return lines


def _write_manifest(folder: Path, entry: BatchFile) -> str | None:
    """Write ``entry``'s manifest beside its file (never over one); None, or why not."""
    if entry.path.parent != folder or entry.path.name in ("", ".", ".."):
        return f"{entry.name}: not a file of this folder; a listing names files beside it"
    target = entry.path.with_name(entry.path.name + MANIFEST_SUFFIX)
    if entry.manifest is not None or os.path.lexists(target):
        return f"{entry.name}: has a manifest already; the listing's entry was not used"
    fields = {k: v for k, v in entry.fields.items() if v not in (None, "")}
    temp = folder / f".{uuid.uuid4().hex}.manifest.tmp"
    temp.write_text(json.dumps(fields, ensure_ascii=False), encoding="utf-8")
    try:
        os.link(temp, target)        # fails if a manifest arrived meanwhile
    except FileExistsError:
        return f"{entry.name}: has a manifest already; the listing's entry was not used"
    finally:
        temp.unlink()
    return None


def _refuse_failure(settings: Settings, root: Path, landed: Landed, exc: Exception) -> str:
    """Archive and record as refused a file whose intake failed (else it would fail every run)."""
    what = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}" if str(exc) else type(exc).__name__
    error = SubmissionError(f"Landed file {landed.data.name!r} could not be taken in ({what}).",
                            hint="The platform's operator has been told; send the file again once it is fixed.")
    try:
        if _not_regular(landed.data) is None:
            taken_data, taken_manifest = _move_aside(root, landed)
            refuse_file(settings, taken_data, error, file_name=landed.data.name)
            taken_data.unlink()
            taken_manifest.unlink()
            taken_data.parent.rmdir()
        return f"recorded as refused ({what})"
    except Exception:
        log.exception("recording the failure of %s failed", landed.data)
        return f"left in place ({what})"


def _landed(root: Path) -> Iterator[Landed]:
    """Every manifest under ``root`` (not following links, skipping hidden names) and its file."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        parts = here.relative_to(root).parts
        for name in sorted(files):
            if name.startswith(".") or not name.endswith(MANIFEST_SUFFIX) or name == MANIFEST_SUFFIX:
                continue
            data = here / name[: -len(MANIFEST_SUFFIX)]
            if os.path.lexists(data):
                yield Landed(data, here / name, parts[0] if parts else None)


def _take(settings: Settings, root: Path, landed: Landed) -> str:
    name = landed.data.name
    problem = _not_regular(landed.data) or _not_regular(landed.manifest)
    if problem:
        for path in (landed.data, landed.manifest):
            _remove_entry(path)
        refuse_unread(settings, name, SubmissionError(f"Landed file {name!r} {problem}; it was not read.",
                                                      hint="Upload the file itself, as a regular file."))
        return f"{name}: refused - {problem}"
    taken_data, taken_manifest = _move_aside(root, landed)
    try:
        before = os.stat(taken_data)
        archived = archive.store(settings, taken_data)
        after = os.stat(taken_data)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            _put_back(taken_data, landed.data, taken_manifest, landed.manifest)
            return (f"{name}: changed while it was being taken (still uploading?); archived as read, "
                    "left in place and taken again on the next run")
        line = _intake(settings, taken_data, taken_manifest, landed, archived)
    except BaseException:
        _put_back(taken_data, landed.data, taken_manifest, landed.manifest)
        raise
    taken_data.unlink()
    taken_manifest.unlink()
    taken_data.parent.rmdir()
    return line


def _intake(settings: Settings, data: Path, manifest_path: Path, landed: Landed,
            archived: tuple[str, int, Path]) -> str:
    """Receive one taken, archived file; a refusal is recorded and described, not raised."""
    name = landed.data.name
    checkpoint(settings, "landing-take", name)
    try:
        manifest = _manifest_for(manifest_path, landed)
    except SubmissionError as exc:
        refuse_file(settings, data, exc, file_name=name)
        return f"{name}: refused - {exc}"
    try:
        got = receive(settings, data, manifest, file_name=name, archived=archived)
    except InsurShareError as exc:
        if exc.retryable:
            raise
        return f"{name}: refused - {exc}"
    verb = "received as" if got.created else "already received as"
    return f"{name}: {verb} {got.submission.submission_id}"


def _manifest_for(path: Path, landed: Landed) -> Manifest:
    """The manifest, with the member of the folder (a manifest cannot name another member)."""
    if landed.member is None or not MEMBER_RE.fullmatch(landed.member):
        raise SubmissionError(f"Landed file {landed.data.name!r} is not inside a member's folder.",
                              hint="Each member drops its files into landing/<member id>/, e.g. landing/M001/.")
    manifest = Manifest.from_file(path)
    if manifest.member_id and manifest.member_id != landed.member:
        raise SubmissionError(
            f"The manifest of {landed.data.name!r} in landing/{landed.member}/ names member "
            f"{manifest.member_id[:40]!r}.", hint="A member submits only its own files, from its own folder.")
    return replace(manifest, member_id=landed.member)


def _not_regular(path: Path) -> str | None:
    """Why ``path`` is not a regular file (None when it is), without following a link."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "disappeared before it was taken"
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a folder, pipe, socket or device)"
    return None


def _remove_entry(path: Path) -> None:
    """Remove a link or special file itself (never what a link points to); leave folders."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def _move_aside(root: Path, landed: Landed) -> tuple[Path, Path]:
    """Rename the pair into a private folder, atomically (the same file system)."""
    private = root / TAKING
    private.mkdir(mode=0o700, exist_ok=True)
    folder = private / uuid.uuid4().hex
    folder.mkdir(mode=0o700)
    data, manifest = folder / "data", folder / "manifest.json"
    os.rename(landed.manifest, manifest)
    try:
        os.rename(landed.data, data)
    except OSError:
        os.rename(manifest, landed.manifest)
        folder.rmdir()
        raise
    if _not_regular(data) or _not_regular(manifest):   # swapped for a link between the checks
        _put_back(data, landed.data, manifest, landed.manifest)
        raise SubmissionError(f"Landed file {landed.data.name!r} changed into a link while it was taken.")
    return data, manifest


def _put_back(data: Path, data_home: Path, manifest: Path, manifest_home: Path) -> None:
    """Return a taken pair to where it was, or beside it as ``<name>.changed-<n><suffix>`` when
    a new upload took its place meanwhile."""
    def names(n: int) -> tuple[Path, Path]:
        if n == 0:
            return data_home, manifest_home
        other = data_home.with_name(f"{data_home.stem}.changed-{n}{data_home.suffix}")
        return other, other.with_name(other.name + MANIFEST_SUFFIX)

    n = 0
    while any(os.path.lexists(p) for p in names(n)):
        n += 1
    for taken, home in zip((data, manifest), names(n), strict=True):
        if os.path.lexists(taken):
            os.rename(taken, home)
    try:
        data.parent.rmdir()
    except OSError:
        pass
