"""A real S3 object store (SeaweedFS from PyPI) on 127.0.0.1 for the object-storage tests.

The store that ``scripts/start-services.sh`` started is used when it answers; otherwise one is
started here for the session and stopped at its end. Each test gets its own prefix in the bucket."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid

import pytest

from pipelines import seaweed


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seaweedfs")
    started = None if seaweed.answering() else seaweed.start(folder)
    yield seaweed
    if started is not None:
        seaweed.stop(folder, started, wait=3)


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The AWS variables of the local store, and a fresh ``s3://`` prefix for this test."""
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    return f"s3://{seaweed.BUCKET}/t-{uuid.uuid4().hex[:12]}"


class FlakyStore:
    """A TCP relay in front of the S3 store that a test can take down and bring back, as if the
    store stopped and started again: ``down()`` drops every open connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = _free_port()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.up()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        if self._listener is not None:   # shutdown first: it wakes the thread blocked in accept()
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def flaky_store(s3_env, monkeypatch):
    """The test's S3 prefix reached through a relay that the test can stop and start."""
    relay = FlakyStore((seaweed.HOST, seaweed.S3_PORT))
    monkeypatch.setenv("AWS_ENDPOINT_URL", relay.endpoint)
    yield relay
    relay.down()
