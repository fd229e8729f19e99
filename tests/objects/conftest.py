"""A real S3 object store (SeaweedFS from PyPI) on 127.0.0.1 for the object-storage tests.

The store that ``scripts/start-services.sh`` started is used when it answers; otherwise one is
started here for the session and stopped at its end. Each test gets its own prefix in the bucket."""

from __future__ import annotations

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
