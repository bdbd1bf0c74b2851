#!/usr/bin/env bash
# Set up .venv with everything hardyt needs; what pip cannot install comes from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(iverilog dataset-fashion-mnist g++)

missing=()
command -v iverilog >/dev/null || missing+=(iverilog)
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
command -v g++ >/dev/null || missing+=(g++)   # hls4ml's C simulation (export --format hls4ml)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "bootstrap: apt-get install ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
        echo "bootstrap: error: missing Debian packages: ${missing[*]}" >&2
        echo "bootstrap: run as root: apt-get install ${DEB_PACKAGES[*]}" >&2
        exit 1
    fi
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The CPU wheel first: an unpinned torch resolves to a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
# hls4ml's extra too: make test runs its C simulation.
.venv/bin/python -m pip install -q -e '.[test,hls4ml]'
echo "bootstrap: .venv ready"
