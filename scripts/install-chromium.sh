#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the browser tests of the quality reports.
# Idempotent: does nothing when /usr/bin/chromium (or $CHROMIUM) already runs.
# Needs root (or sudo) and the Debian package registry; exits 0 when Chromium is usable.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

usable() { [ -x "$CHROMIUM" ] && "$CHROMIUM" --headless --no-sandbox --version >/dev/null 2>&1; }

if usable; then
    echo "chromium present: $("$CHROMIUM" --version 2>/dev/null)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install-chromium: not root and no passwordless sudo; install the Debian package 'chromium' by hand" >&2
        exit 2
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: apt-get not found; install Chromium with this system's package manager" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive
# Serialise concurrent installs (parallel test runs, CI) on one lock.
exec 9>/tmp/insurshare-install-chromium.lock
flock 9
if usable; then
    echo "chromium present: $("$CHROMIUM" --version 2>/dev/null)"
    exit 0
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-noto-cjk >/dev/null
usable || { echo "install-chromium: chromium installed but does not start" >&2; exit 3; }
echo "chromium installed: $("$CHROMIUM" --version 2>/dev/null)"
