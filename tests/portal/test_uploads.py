"""Uploads: streamed to a private temporary file, size-limited, archived and received; nothing partial kept."""

from __future__ import annotations

import threading
import time

import anyio
import psutil
import pytest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from pipelines.errors import SubmissionError
from pipelines.portal import uploads
from tests.conftest import policy_row, write_csv

BOUNDARY = "----insurshare-test-boundary"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)


def _app(settings, max_bytes: int = 1 << 20, submit: bool = True) -> Starlette:
    """A tiny app with the portal's mapping: 413/400 for the upload, 422 for a refusal."""
    async def upload(request):
        try:
            got = await uploads.read_upload(request, settings, max_bytes)
        except (uploads.UploadTooLarge, uploads.BadUpload) as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        if not submit:
            got.discard()
            return JSONResponse({"size": got.size, "file_name": got.file_name, "fields": got.fields})
        try:
            received = await run_in_threadpool(uploads.submit_upload, settings, got, request.headers["x-member"])
        except SubmissionError as exc:
            return JSONResponse({"error": exc.message}, status_code=422)
        sub = received.submission
        return JSONResponse({"submission_id": sub.submission_id, "created": received.created,
                             "file_name": sub.file_name})

    return Starlette(routes=[Route("/upload", upload, methods=["POST"])])


def _body(file_name: str | None, data: bytes, close: bool = True, **fields: str) -> bytes:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    if file_name is not None:
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


def _post(client, body, member="M001", **headers):
    return client.post("/upload", content=body, headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}",
                                                         "x-member": member, **headers})


def _left(settings):
    """Every file left in the uploads folder and the archive."""
    folders = [settings.work_dir / "uploads", settings.archive_dir]
    return sorted(str(p) for f in folders if f.exists() for p in f.rglob("*") if p.is_file())


@pytest.fixture
def csv_bytes(tmp_path):
    return write_csv(tmp_path / "p.csv", [policy_row(transaction_id=f"T{i:04d}") for i in range(5)]).read_bytes()


def test_upload_is_received_and_again_a_no_op(settings, csv_bytes):
    client = TestClient(_app(settings))
    body = _body("policy_2024Q1.csv", csv_bytes, dataset="policy", period="2024Q1", rows="5")
    first = _post(client, body)
    assert first.status_code == 200, first.text
    assert first.json() == {"submission_id": "M001-policy-2024Q1-v1", "created": True,
                            "file_name": "policy_2024Q1.csv"}
    again = _post(client, body)
    assert again.json() == {**first.json(), "created": False}
    assert list((settings.work_dir / "uploads").iterdir()) == []   # the temporary file is always removed


def test_upload_temp_file_is_private_while_it_waits(settings, csv_bytes):
    seen = {}

    async def peek(request):
        got = await uploads.read_upload(request, settings, 1 << 20)
        seen["mode"], seen["bytes"] = got.path.stat().st_mode & 0o777, got.path.read_bytes()
        got.discard()
        return JSONResponse({"size": got.size})

    client = TestClient(Starlette(routes=[Route("/upload", peek, methods=["POST"])]))
    assert _post(client, _body("a.csv", csv_bytes, dataset="policy")).json() == {"size": len(csv_bytes)}
    assert seen == {"mode": 0o600, "bytes": csv_bytes}


def test_upload_over_the_limit_answers_413_and_keeps_nothing(settings):
    client = TestClient(_app(settings, max_bytes=10_000))
    big = b"a,b\n" + b"1,2\n" * 300_000   # beyond the limit and the allowance for the fields
    declared = _post(client, _body("big.csv", big, dataset="policy", period="2024Q1"))
    assert declared.status_code == 413 and "Nothing was read" in declared.json()["error"]

    def chunks():   # no Content-Length: the limit is found while streaming
        body = _body("big.csv", big, dataset="policy", period="2024Q1")
        for i in range(0, len(body), 4096):
            yield body[i:i + 4096]

    streamed = client.post("/upload", content=chunks(),
                           headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}", "x-member": "M001"})
    assert streamed.status_code == 413 and "nothing of it was kept" in streamed.json()["error"]
    assert _left(settings) == []


@pytest.mark.parametrize("body", [
    _body("cut.csv", b"a,b\n1,2\n" * 100, close=False, dataset="policy", period="2024Q1"),
    _body("cut.csv", b"a,b\n1,2\n" * 100, dataset="policy", period="2024Q1")[:300],
    b"not multipart at all",
], ids=["no-closing-boundary", "cut-in-the-file", "garbage"])
def test_upload_truncated_answers_400_and_keeps_nothing(settings, body):
    response = _post(TestClient(_app(settings)), body)
    assert response.status_code == 400
    assert "nothing was kept" in response.json()["error"] or "multipart" in response.json()["error"]
    assert _left(settings) == []


@pytest.mark.parametrize("name", ["../../etc/passwd.csv", "..\\\\..\\\\x.csv", "a/b.csv", "..", "x\x07.csv",
                                  "gpj\u202e.csv", "", " ", "n" * 201 + ".csv"],
                         ids=["dotdot-slash", "dotdot-backslash", "slash", "dotdot", "control", "rtl-override",
                              "empty", "blank", "too-long"])
def test_upload_refuses_a_file_name_that_is_not_a_plain_name(settings, name):
    response = _post(TestClient(_app(settings)), _body(name, b"a,b\n1,2\n", dataset="policy", period="2024Q1"))
    assert response.status_code == 400, response.text
    assert "name" in response.json()["error"]
    assert _left(settings) == []


@pytest.mark.parametrize("body, words", [
    (_body(None, b"", dataset="policy"), "no file part named 'file'"),
    (_body("a.csv", b"x", file="not-a-file"), "is not a file"),
], ids=["no-file", "file-as-field"])
def test_upload_needs_a_file_part_named_file(settings, body, words):
    response = _post(TestClient(_app(settings, submit=False)), body)
    assert response.status_code == 400 and words in response.json()["error"]


def test_upload_refuses_two_files(settings):
    body = _body("a.csv", b"x", close=False) + _body("b.csv", b"y")
    response = _post(TestClient(_app(settings, submit=False)), body)
    assert response.status_code == 400 and "exactly one file" in response.json()["error"]


def test_upload_limits_the_fields(settings):
    many = {f"f{i}": "v" for i in range(uploads.MAX_FIELDS + 1)}
    assert _post(TestClient(_app(settings, submit=False)), _body("a.csv", b"x", **many)).status_code == 400
    long = _post(TestClient(_app(settings, submit=False)), _body("a.csv", b"x", dataset="p" * 20_000))
    assert long.status_code == 400 and "longer than" in long.json()["error"]


def test_upload_for_another_member_is_refused_and_nothing_recorded(settings, csv_bytes, lake):
    response = _post(TestClient(_app(settings)),
                     _body("p.csv", csv_bytes, dataset="policy", period="2024Q1", member="M002"))
    assert response.status_code == 422 and "you submit for M001 only" in response.json()["error"]
    assert _left(settings) == []


def test_upload_unknown_field_is_refused(settings, csv_bytes):
    response = _post(TestClient(_app(settings)), _body("p.csv", csv_bytes, dataset="policy", period="2024Q1",
                                                       colour="blue"))
    assert response.status_code == 422 and "'colour' is not a manifest field" in response.json()["error"]


def test_upload_fields_make_the_manifest():
    m = uploads.manifest_from_fields({"dataset": "policy", "period": "2024Q1", "rows": "5", "csrf_token": "x",
                                      "control.written_premium": "6000.00", "member": "M001",
                                      "controls": '{"written_exposure": "5"}'}, "M001")
    assert (m.member_id, m.dataset, m.period, m.row_count) == ("M001", "policy", "2024Q1", 5)
    assert m.control_totals == {"written_premium": "6000.00", "written_exposure": "5"}


def test_upload_bytes_that_are_not_their_name_are_refused_and_recorded(settings, lake):
    response = _post(TestClient(_app(settings)), _body("policy.csv", PNG, dataset="policy", period="2024Q1"))
    assert response.status_code == 422
    assert response.json()["error"] == "File 'policy.csv' is named as CSV but is a binary file of unknown type."
    row = lake().execute("SELECT member_id, status, file_name, archive_path FROM lake.submissions").fetchone()
    assert row[:3] == ("M001", "refused", "policy.csv") and row[3]
    assert list((settings.work_dir / "uploads").iterdir()) == []


def test_upload_a_refused_manifest_is_recorded(settings, csv_bytes, lake):
    response = _post(TestClient(_app(settings)), _body("p.csv", csv_bytes, dataset="policy", period="1970Q1"))
    assert response.status_code == 422 and "before 1980Q1, the earliest" in response.json()["error"]
    assert lake().execute("SELECT member_id, status FROM lake.submissions").fetchone() == ("M001", "refused")


def _streamed_request(chunks) -> Request:
    """A Starlette request whose body arrives chunk by chunk, as from a server (the test client would
    read the whole body first)."""
    source = iter(chunks)

    async def receive():
        chunk = next(source, None)
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    scope = {"type": "http", "method": "POST", "path": "/upload", "query_string": b"",
             "headers": [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())]}
    return Request(scope, receive)


def test_upload_streams_without_holding_the_file_in_memory(settings):
    """64 MiB through the parser to disk: the process grows by far less than the file."""
    size, block = 64 << 20, b"0123456789abcdef" * 65536   # 1 MiB, the same object every time
    head, tail = _body("big.csv", b"", close=False).removesuffix(b"\r\n"), f"\r\n--{BOUNDARY}--\r\n".encode()

    def chunks():
        yield head
        for _ in range(size // len(block)):
            for i in range(0, len(block), 64 << 10):   # 64 KiB, as uvicorn hands them over
                yield block[i:i + (64 << 10)]
        yield tail

    process, peak, done = psutil.Process(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.002)

    anyio.run(_read_and_discard, _streamed_request([head, b"x", tail]), settings, size)   # warm up
    base = process.memory_info().rss
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        got = anyio.run(_read_and_discard, _streamed_request(chunks()), settings, size)
    finally:
        done.set()
        sampler.join()
    assert got == size
    assert (peak[0] - base) < 16 << 20, f"grew by {(peak[0] - base) >> 20} MiB for a {size >> 20} MiB upload"


async def _read_and_discard(request, settings, max_bytes):
    got = await uploads.read_upload(request, settings, max_bytes)
    assert got.path.stat().st_size == got.size
    got.discard()
    return got.size


def test_upload_keeps_a_plain_unicode_name(settings):
    response = _post(TestClient(_app(settings, submit=False)), _body("保单 2024Q1.csv", b"a,b\n", dataset="policy"))
    assert response.status_code == 200 and response.json()["file_name"] == "保单 2024Q1.csv"
