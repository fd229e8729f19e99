"""Uploads: a member's file streams from the request to the raw archive, never held in memory.

``read_upload`` feeds the request body, chunk by chunk, to python-multipart's streaming parser
and writes the one file part (named ``file``) to a private temporary file under
``<work>/uploads``, counting its bytes; the other parts are the manifest's fields, few and small.
An upload over the limit (by its Content-Length before anything is read, or by the bytes that
arrive) raises ``UploadTooLarge`` (413); a body cut off before its closing boundary, or not
multipart at all, raises ``BadUpload`` (400); either way the temporary file is gone, so nothing
partial is kept anywhere.

``submit_upload`` then does what ``insurshare submit`` does: the manifest from the fields (the
member is always the caller's), the bytes into the archive, and ``intake.receive``, which records
a refusal (the archived file, a ``refused`` submission, an audit entry) and treats the same bytes
for the same slice again as a no-op. One check is added here: a file whose first bytes are not
the format its name says (a PNG named ``.csv``) is refused at once, as ingestion would reject it
later, so the member learns it from the upload's answer.
"""

from __future__ import annotations

import json
import os
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from pipelines import archive, intake, staging
from pipelines.config import Settings
from pipelines.core.domain import format_of
from pipelines.errors import InsurShareError, SubmissionError

if TYPE_CHECKING:
    from starlette.requests import Request

FILE_PART = "file"
MAX_FIELDS = 32
MAX_FIELD_BYTES = 16 << 10
MAX_NAME_CHARS = 200
FIELDS_ALLOWANCE = MAX_FIELDS * (MAX_FIELD_BYTES + 1024) + (64 << 10)   # the body beyond the file itself
NOT_MANIFEST = frozenset({"csrf_token"})      # form fields the portal itself reads
_FIELD_NAMES = {"dataset": "dataset", "period": "period", "contract_version": "contract_version",
                "encoding": "encoding", "sha256": "sha256", "rows": "row_count", "row_count": "row_count"}


class UploadTooLarge(InsurShareError):
    """The upload is larger than the portal accepts (HTTP 413); nothing of it was kept."""

    status = 413


class BadUpload(InsurShareError):
    """The request is not a complete upload: not multipart, cut off, or parts the portal does not take (HTTP 400)."""

    status = 400


@dataclass
class Upload:
    """A received file waiting in a private temporary file, and the form's other fields."""

    path: Path
    file_name: str
    fields: dict[str, str]
    size: int

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def upload_dir(settings: Settings) -> Path:
    folder = settings.work_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def clean_file_name(raw: bytes) -> str:
    """The file name as sent, if it is a plain name; else ``BadUpload`` saying why.

    The archive addresses files by their sha256, but the name is recorded and shown to people, so
    only a bare name is taken: no folder (``/``, ``\\``), no ``..``, no control or format characters
    (a right-to-left override can make ``gpj.csv`` read as ``vsc.jpg``), at most 200 characters.
    """
    try:
        name = unicodedata.normalize("NFC", raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadUpload("The uploaded file's name is not UTF-8 text.", hint="Rename the file and upload it again.") \
            from None
    shown = repr(name[:60])
    if not name.strip():
        raise BadUpload("The uploaded file has no name.", hint="Upload a file named like claims_2025Q1.csv.")
    if len(name) > MAX_NAME_CHARS:
        raise BadUpload(f"The uploaded file's name {shown}... is longer than {MAX_NAME_CHARS} characters.",
                        hint="Rename the file and upload it again.")
    if "/" in name or "\\" in name or ".." in name:
        raise BadUpload(f"The uploaded file's name {shown} names a folder or a path ('/', '\\\\' or '..').",
                        hint="Upload the file under its own name only, e.g. claims_2025Q1.csv.")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        raise BadUpload(f"The uploaded file's name {shown} holds control or invisible formatting characters.",
                        hint="Rename the file with visible characters only and upload it again.")
    return name


class _Form:
    """The parser's callbacks: headers of each part, the file's bytes to a file, fields to memory."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.fields: dict[str, str] = {}
        self.file_name: str | None = None
        self.size = 0
        self.pending: list[bytes] = []   # file bytes parsed from the last chunk, written after it
        self.ended = False
        self._headers: dict[bytes, bytes] = {}
        self._header = [b"", b""]
        self._part: str | None = None     # field name of the current part, None for the file
        self._value = bytearray()

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_header_field": self._field, "on_header_value": self._hvalue,
                "on_header_end": self._header_end, "on_headers_finished": self._headers_done,
                "on_part_data": self._data, "on_part_end": self._part_end, "on_end": self._end}

    def _begin(self) -> None:
        self._headers, self._header, self._value, self._part = {}, [b"", b""], bytearray(), None

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header[0] += data[start:end]

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        self._header[1] += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header[0].strip().lower()] = self._header[1].strip()
        self._header = [b"", b""]

    def _headers_done(self) -> None:
        kind, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if kind != b"form-data" or not name:
            raise BadUpload("A part of the upload has no form-data name.",
                            hint="Send a multipart/form-data body: the file as 'file', the manifest as fields.")
        if b"filename" in options:
            if name != FILE_PART or self.file_name is not None:
                raise BadUpload(f"The upload holds a file part {name[:40]!r}; it takes exactly one file, named "
                                f"{FILE_PART!r}.", hint="Upload one file per submission.")
            self.file_name = clean_file_name(options[b"filename"])
            return
        if name == FILE_PART:
            raise BadUpload("The part 'file' of the upload is not a file (it has no filename).",
                            hint="Send the file as a file part: the browser's file field, or curl -F file=@path.")
        if name in self.fields or len(self.fields) >= MAX_FIELDS or len(name) > 64:
            raise BadUpload(f"The upload's form field {name[:64]!r} is repeated, too long a name, or one field "
                            f"too many (at most {MAX_FIELDS}).", hint="Send each manifest field once.")
        self._part = name

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part is None:
            self.size += end - start
            if self.size > self.max_bytes:
                raise UploadTooLarge(f"The upload is larger than the portal accepts ({self.max_bytes:,} bytes); "
                                     "nothing of it was kept.",
                                     hint="Split the file by period, or ask the operator about "
                                          "INSURSHARE_PORTAL_MAX_UPLOAD.")
            self.pending.append(data[start:end])
            return
        self._value += data[start:end]
        if len(self._value) > MAX_FIELD_BYTES:
            raise BadUpload(f"The upload's form field {self._part!r} is longer than {MAX_FIELD_BYTES:,} bytes.",
                            hint="Manifest fields are short values.")

    def _part_end(self) -> None:
        if self._part is not None:
            try:
                self.fields[self._part] = self._value.decode("utf-8")
            except UnicodeDecodeError:
                raise BadUpload(f"The upload's form field {self._part!r} is not UTF-8 text.") from None

    def _end(self) -> None:
        self.ended = True


def _boundary(request: Request) -> bytes:
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise BadUpload("An upload must be sent as multipart/form-data (the file as 'file', the manifest as fields).",
                        hint="Use the upload page, or e.g. curl -F file=@claims.csv -F dataset=claim -F period=2025Q1.")
    return options[b"boundary"]


def _check_declared_length(request: Request, max_bytes: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + FIELDS_ALLOWANCE:
        raise UploadTooLarge(f"The upload declares {int(declared):,} bytes; the portal accepts files up to "
                             f"{max_bytes:,} bytes. Nothing was read or kept.",
                             hint="Split the file by period, or ask the operator about INSURSHARE_PORTAL_MAX_UPLOAD.")


def _write_all(fd: int, blocks: list[bytes]) -> None:
    for block in blocks:
        view = memoryview(block)
        while view:
            view = view[os.write(fd, view):]


async def read_upload(request: Request, settings: Settings, max_bytes: int | None = None) -> Upload:
    """Stream the multipart body of ``request`` into a temporary file; the ``Upload``, or an error
    (``UploadTooLarge``, ``BadUpload``) with nothing left behind."""
    from starlette.requests import ClientDisconnect

    max_bytes = settings.portal_max_upload_bytes if max_bytes is None else max_bytes
    boundary = _boundary(request)
    _check_declared_length(request, max_bytes)
    form = _Form(max_bytes)
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=upload_dir(settings))   # mode 0600
    path, body = Path(name), 0
    try:
        try:
            parser = MultipartParser(boundary, form.callbacks())
            async for chunk in request.stream():
                body += len(chunk)
                if body > max_bytes + FIELDS_ALLOWANCE:
                    raise UploadTooLarge(f"The upload is larger than the portal accepts ({max_bytes:,} bytes); "
                                         "nothing of it was kept.")
                parser.write(chunk)
                if form.pending:   # off the event loop: other requests go on while the disk writes
                    blocks, form.pending = form.pending, []
                    await anyio.to_thread.run_sync(_write_all, fd, blocks)
            parser.finalize()
        except FormParserError as exc:
            raise BadUpload(f"The upload is not valid multipart/form-data: {str(exc)[:200]}",
                            hint="Send it again; nothing was kept.") from None
        except ClientDisconnect:
            raise BadUpload("The connection closed before the upload finished; nothing was kept.",
                            hint="Send it again.") from None
        _check_complete(form)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return Upload(path, form.file_name, form.fields, form.size)


def _check_complete(form: _Form) -> None:
    if not form.ended:
        raise BadUpload("The upload was cut off before its end (its closing boundary never came); nothing was kept.",
                        hint="Send it again.")
    if form.file_name is None:
        raise BadUpload(f"The upload holds no file part named {FILE_PART!r}.",
                        hint="Send the file as 'file', e.g. curl -F file=@claims_2025Q1.csv.")


def manifest_from_fields(fields: dict[str, str], member_id: str) -> intake.Manifest:
    """The manifest an upload's form declares, for the caller's member (``SubmissionError`` if it
    names another, or a field the manifest does not have; nothing is recorded then).

    Fields: dataset, period, rows, contract_version, encoding, sha256, control totals as
    ``control.<column>`` fields or one ``controls`` JSON object; ``member`` may only repeat the
    caller's member.
    """
    values: dict[str, object] = {}
    totals: dict[str, object] = {}
    for name, value in fields.items():
        if name in NOT_MANIFEST:
            continue
        if name in ("member", "member_id"):
            if value.strip() != member_id:
                raise SubmissionError(f"The upload names member {value[:40]!r}; you submit for {member_id} only.",
                                      hint="Leave the member field out: the portal fills it in.", member=member_id)
        elif name.startswith("control.") and len(name) > len("control."):
            totals[name[len("control."):]] = value
        elif name == "controls":
            totals.update(_controls(value))
        elif name in _FIELD_NAMES:
            values[_FIELD_NAMES[name]] = value.strip() or None
        else:
            raise SubmissionError(f"Form field {name[:64]!r} is not a manifest field.",
                                  hint="Use dataset, period, rows, contract_version, encoding, sha256, "
                                       "control.<column> or controls. Nothing was recorded.", member=member_id)
    missing = [name for name in ("dataset", "period") if not values.get(name)]
    if missing:
        raise SubmissionError(f"The upload lacks the manifest field(s) {', '.join(missing)}.",
                              hint="Give e.g. dataset=claim and period=2025Q1. Nothing was recorded.",
                              member=member_id)
    return intake.Manifest.build(member_id=member_id, control_totals=totals or None, **values)


def _controls(text: str) -> dict[str, object]:
    try:
        parsed = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        raise SubmissionError("The upload's field 'controls' is not a JSON object of column to amount.",
                              hint='Write it like {"written_premium": "1234.50"}. Nothing was recorded.')
    return parsed


def format_mismatch(path: Path, file_name: str) -> SubmissionError | None:
    """The refusal of a file whose first bytes are not the format its name says (else None)."""
    named = format_of(file_name)
    if named is None:
        return None   # intake refuses a name without a format
    sniffed = staging.sniff_format(path)
    if sniffed == named or (named == "csv" and sniffed == "text") or sniffed == "empty":
        return None   # an empty file is refused at ingestion with its own reason (SUB-EMPTY)
    what = {"text": "a text file", "binary": "a binary file of unknown type"}.get(sniffed, f"a {sniffed.upper()} file")
    return SubmissionError(f"File {file_name!r} is named as {named.upper()} but is {what}.",
                           hint="Send the file in the format its name says.", file=file_name)


def submit_upload(settings: Settings, upload: Upload, member_id: str) -> intake.Received:
    """Archive the uploaded file and record it as ``member_id``'s submission (``intake.receive``).

    The same bytes for the same slice again answer the existing submission (``created`` False).
    A refusal is recorded with the archived file and raised as ``SubmissionError``; a manifest the
    form cannot give (another member, an unknown or missing field) is raised before anything is
    archived. The temporary file is removed whatever happens.
    """
    try:
        manifest = manifest_from_fields(upload.fields, member_id)
        archived = archive.store(settings, upload.path)
        refused = format_mismatch(upload.path, upload.file_name)
        if refused is not None:
            intake.refuse_file(settings, upload.path, refused, upload.file_name, manifest=manifest, archived=archived)
            raise refused
        return intake.receive(settings, upload.path, manifest, file_name=upload.file_name, archived=archived)
    finally:
        upload.discard()
