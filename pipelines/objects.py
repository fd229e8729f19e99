"""S3 object storage: where durable files live when ``INSURSHARE_STORAGE`` is ``s3://bucket/prefix``.

Two clients reach the same bucket. DuckDB writes and reads the lake's Parquet files through its
httpfs extension (loaded from its PyPI wheel: nothing is downloaded at run time); the platform's
own files (the encrypted raw archive) go through boto3. Both take credentials, region and endpoint
from the usual AWS sources, resolved once by boto3 (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``, ``AWS_PROFILE`` and the AWS config
files); DuckDB receives them as statement parameters, so a secret never appears in SQL text, a log
or an error message.

Every request is retried with a growing pause (``INSURSHARE_S3_ATTEMPTS`` tries, botocore's
standard retry mode); after the last one the caller gets ``StorageError`` naming the bucket and the
object, never a raw client error. Objects are written once: a put that finds the key taken leaves
the existing object (content-addressed keys hold the same content).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import duckdb

from pipelines.config import Settings
from pipelines.errors import InsurShareError

_TIMEOUT = 20   # seconds to connect, and to wait for each read
_NOT_FOUND = ("404", "NoSuchKey", "NotFound")    # the codes of "no such object"
_MULTIPART = 256 * 1024 * 1024                   # a file larger than this is uploaded in parts of this size


class StorageError(InsurShareError):
    """Object storage could not be reached, or refused a request, after every retry."""


@dataclass(frozen=True)
class Location:
    """An ``s3://bucket/prefix`` location; ``key(name)`` is a name under its prefix."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3:// location: {url!r}")
        return cls(parts.netloc, parts.path.strip("/"))

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def url(self, name: str = "") -> str:
        return f"s3://{self.bucket}/{self.key(name)}" if name else f"s3://{self.bucket}/{self.prefix}"


def storage(settings: Settings) -> Location | None:
    """The S3 location of the platform's durable files, or None (local folders under the home)."""
    return Location.parse(settings.storage) if settings.storage else None


def _env(settings: Settings) -> tuple[tuple[str, str], ...]:
    """The AWS variables that configure the clients, as a hashable key of their caches."""
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE")
    source = settings.env or os.environ    # settings made in code (tests, the sandbox's child) read the process's
    return tuple((k, source[k]) for k in sorted(keys) if source.get(k))


def client(settings: Settings):
    """A boto3 S3 client for ``settings`` (one per process and configuration)."""
    return _client(_env(settings), settings.s3_attempts)


@functools.lru_cache(maxsize=8)
def _client(env: tuple[tuple[str, str], ...], attempts: int):
    from botocore.config import Config

    values = dict(env)
    session = _session(env)
    endpoint = values.get("AWS_ENDPOINT_URL_S3") or values.get("AWS_ENDPOINT_URL")
    config = Config(retries={"max_attempts": attempts, "mode": "standard"}, connect_timeout=_TIMEOUT,
                    read_timeout=_TIMEOUT, s3={"addressing_style": "path" if endpoint else "auto"})
    return session.client("s3", endpoint_url=endpoint, config=config)


@functools.lru_cache(maxsize=8)
def _session(env: tuple[tuple[str, str], ...]):
    """The boto3 session of one configuration: its credential chain (variables, files, roles) is
    resolved once and refreshed by botocore when it holds temporary credentials."""
    import boto3
    from botocore.session import Session as CoreSession

    values = dict(env)
    core = CoreSession()
    for name, var in (("config_file", "AWS_CONFIG_FILE"), ("credentials_file", "AWS_SHARED_CREDENTIALS_FILE")):
        if var in values:
            core.set_config_variable(name, values[var])
    return boto3.Session(
        aws_access_key_id=values.get("AWS_ACCESS_KEY_ID"), aws_secret_access_key=values.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=values.get("AWS_SESSION_TOKEN"),
        region_name=values.get("AWS_REGION") or values.get("AWS_DEFAULT_REGION"),
        profile_name=values.get("AWS_PROFILE"), botocore_session=core)


def _failed(what: str, exc: BaseException) -> StorageError:
    """A clear error from a client error: what failed and why, never the request's credentials."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "?")
        reason = {"NoSuchBucket": "the bucket does not exist", "AccessDenied": "access was denied",
                  "InvalidAccessKeyId": "the access key is not known to the store",
                  "SignatureDoesNotMatch": "the secret key does not match"}.get(code, f"the store answered {code}")
    elif type(exc).__name__ == "S3UploadFailedError":   # a part of a multipart upload failed
        reason = f"the upload failed ({exc})"
    else:
        reason = f"the store could not be reached ({type(exc).__name__})"
    return StorageError(f"{what}: {reason}.", hint="Check that the object store is up and that the AWS_* "
                        "credentials and AWS_ENDPOINT_URL are right; the request was retried "
                        "(INSURSHARE_S3_ATTEMPTS) before it failed.")


def _errors():
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError
    return (BotoCoreError, ClientError, S3UploadFailedError)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def put_once(settings: Settings, url: str, source: Path | bytes) -> bool:
    """Upload ``source`` (a file, or the bytes themselves) to ``url`` unless an object is there
    already; True when it was written. The store decides (a conditional put), so of two writers
    racing for one key exactly one wins. A file larger than 256 MB goes in parts (multipart upload,
    after a look that the key is free): such files are content-addressed, so a race writes the same
    bytes twice."""
    where = Location.parse(url)
    try:
        if isinstance(source, bytes):
            client(settings).put_object(Bucket=where.bucket, Key=where.prefix, Body=source, IfNoneMatch="*")
        elif source.stat().st_size > _MULTIPART:   # one PUT takes at most 5 GB: send it in parts
            if size(settings, url) is not None:      # (a content-addressed key: whoever wrote it wrote the same)
                return False
            from boto3.s3.transfer import TransferConfig

            client(settings).upload_file(str(source), where.bucket, where.prefix,
                                         Config=TransferConfig(multipart_threshold=_MULTIPART,
                                                               multipart_chunksize=_MULTIPART))
        else:
            with open(source, "rb") as f:
                client(settings).put_object(Bucket=where.bucket, Key=where.prefix, Body=f, IfNoneMatch="*")
        return True
    except _errors() as exc:
        if _code(exc) in ("PreconditionFailed", "412"):
            return False
        raise _failed(f"Writing {url}", exc) from None


def put(settings: Settings, url: str, source: Path, content_type: str | None = None) -> None:
    """Upload ``source`` to ``url``, replacing what is there (for files made again from the lake:
    the reports; the lake's own objects and the archive are written once, ``put_once``)."""
    where = Location.parse(url)
    try:
        with open(source, "rb") as f:
            client(settings).put_object(Bucket=where.bucket, Key=where.prefix, Body=f,
                                        **({"ContentType": content_type} if content_type else {}))
    except _errors() as exc:
        raise _failed(f"Writing {url}", exc) from None


def etags(settings: Settings, url: str) -> dict[str, str]:
    """``{name under the prefix url: ETag}`` of every object there (the MD5 of an object put whole)."""
    where = Location.parse(url)
    prefix = where.prefix.rstrip("/") + "/"
    found = {}
    try:
        for page in client(settings).get_paginator("list_objects_v2").paginate(Bucket=where.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found[item["Key"][len(prefix):]] = item["ETag"].strip('"')
    except _errors() as exc:
        raise _failed(f"Listing {url}", exc) from None
    return found


def size(settings: Settings, url: str) -> int | None:
    """The size of the object at ``url`` in bytes, or None when there is none."""
    where = Location.parse(url)
    try:
        return int(client(settings).head_object(Bucket=where.bucket, Key=where.prefix)["ContentLength"])
    except _errors() as exc:
        if _code(exc) in _NOT_FOUND:
            return None
        raise _failed(f"Looking up {url}", exc) from None


def open_read(settings: Settings, url: str) -> IO[bytes]:
    """The object at ``url`` as a stream (``read(n)``); ``FileNotFoundError`` when there is none."""
    where = Location.parse(url)
    try:
        return client(settings).get_object(Bucket=where.bucket, Key=where.prefix)["Body"]
    except _errors() as exc:
        if _code(exc) in _NOT_FOUND:
            raise FileNotFoundError(url) from None
        raise _failed(f"Reading {url}", exc) from None


def read_bytes(settings: Settings, url: str) -> bytes:
    """The whole object at ``url`` (a small one); ``FileNotFoundError`` when there is none."""
    with open_read(settings, url) as body:
        return body.read()


def list_urls(settings: Settings, url: str) -> Iterator[str]:
    """The objects under the prefix ``url``."""
    where = Location.parse(url)
    prefix = where.prefix.rstrip("/") + "/"
    try:
        for page in client(settings).get_paginator("list_objects_v2").paginate(Bucket=where.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield f"s3://{where.bucket}/{item['Key']}"
    except _errors() as exc:
        raise _failed(f"Listing {url}", exc) from None


def last_under(settings: Settings, url: str, after: str | None = None) -> str | None:
    """The last object under the prefix ``url`` in key order (after the URL ``after``, when given:
    a known earlier object, so that only the newer keys are listed), or None."""
    where = Location.parse(url)
    prefix = where.prefix.rstrip("/") + "/"
    start = Location.parse(after).prefix if after else ""
    last = None
    try:
        pages = client(settings).get_paginator("list_objects_v2").paginate(Bucket=where.bucket, Prefix=prefix,
                                                                            StartAfter=start)
        for page in pages:
            if page.get("Contents"):
                last = page["Contents"][-1]["Key"]
    except _errors() as exc:
        raise _failed(f"Listing {url}", exc) from None
    return f"s3://{where.bucket}/{last}" if last else after


def copy_prefix(settings: Settings, source: str, target: str,
                progress=None) -> tuple[int, int]:
    """Copy every object under ``source`` to the same name under ``target`` (within the store, no
    download), skipping those already there with the same ETag; (copied, skipped). For backups and
    restores of a platform's prefix."""
    src, dst = Location.parse(source), Location.parse(target)
    have = etags(settings, target)
    copied = skipped = 0
    s3 = client(settings)
    for name, etag in etags(settings, source).items():
        if have.get(name) == etag:
            skipped += 1
            continue
        try:
            s3.copy_object(Bucket=dst.bucket, Key=dst.key(name),
                           CopySource={"Bucket": src.bucket, "Key": src.key(name)})
        except _errors() as exc:
            raise _failed(f"Copying {source}/{name} to {target}/{name}", exc) from None
        copied += 1
        if progress is not None and copied % 500 == 0:
            progress(f"{copied:,} objects copied ...")
    return copied, skipped


def delete(settings: Settings, url: str) -> None:
    where = Location.parse(url)
    try:
        client(settings).delete_object(Bucket=where.bucket, Key=where.prefix)
    except _errors() as exc:
        raise _failed(f"Deleting {url}", exc) from None


def configure_duckdb(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Give ``con`` (which has loaded the httpfs extension) the S3 credentials, region and endpoint
    (as parameters, never in SQL text); retries as for boto3."""
    s3 = client(settings)
    creds = _session(_env(settings)).get_credentials()
    frozen = creds.get_frozen_credentials() if creds is not None else None
    values = {"s3_region": s3.meta.region_name or "us-east-1", "s3_url_style": "vhost",
              "s3_use_ssl": True, "http_retries": settings.s3_attempts, "http_timeout": _TIMEOUT}
    endpoint = s3.meta.endpoint_url
    default = f"https://s3.{values['s3_region']}.amazonaws.com"
    if endpoint and endpoint.rstrip("/") != default and "amazonaws.com" not in endpoint:
        parts = urlsplit(endpoint)
        values.update(s3_endpoint=parts.netloc, s3_use_ssl=parts.scheme == "https", s3_url_style="path")
    if frozen is not None:
        values.update(s3_access_key_id=frozen.access_key, s3_secret_access_key=frozen.secret_key)
        if frozen.token:
            values["s3_session_token"] = frozen.token
    for name, value in values.items():
        con.execute(f"SET {name} = ?", [value])
