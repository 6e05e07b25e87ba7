#!/usr/bin/env bash
# Creates (or updates) the project's virtual environment and installs the package with what its tests need.
# Usage: scripts/install.sh [VENV_DIR]   (default .venv)
#
# PyTorch: where torch is already installed it is kept. Otherwise, on a machine with an NVIDIA GPU the
# default (CUDA) build is installed; without one, a CPU-only build: first from a local wheelhouse if pip has
# one configured (find-links), else from PyTorch's CPU index. Set TORCH_SPEC to choose yourself,
# e.g. TORCH_SPEC="torch==2.5.1".
#
# The grader's sandbox uses bubblewrap (`bwrap`) for namespaces. Where it is missing and this script runs as
# root on a Debian/Ubuntu host, it is installed with apt-get; elsewhere the script says how, and the grader
# falls back to weaker isolation (and refuses hidden checks there unless told otherwise).
#
# The browser test of the student's JupyterLab (tests/test_student_lab.py) drives a headless Chromium with
# Playwright. Where no Chromium or Chrome is installed: as root on Debian/Ubuntu, apt-get installs `chromium`;
# elsewhere Playwright downloads its own build. When neither works the set-up goes on and that test is skipped
# with the reason.
set -euo pipefail
venv="${1:-.venv}"

if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing bubblewrap (the grader's sandbox)"
        apt-get install -y -q bubblewrap >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q bubblewrap >/dev/null 2>&1; } \
            || echo "could not install bubblewrap: the grader will use weaker isolation" >&2
    else
        echo "bubblewrap (bwrap) is not installed: install it (e.g. 'sudo apt-get install bubblewrap') for the" \
             "grader's namespace sandbox" >&2
    fi
fi
have_chromium() {
    command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1 \
        || command -v google-chrome-stable >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}
if ! have_chromium && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (the browser test of the student's JupyterLab)"
    apt-get install -y -q chromium >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
        || echo "could not install chromium with apt-get" >&2
fi
python="${PYTHON:-python3}"

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip() { "$venv/bin/python" -m pip "$@"; }

if [ -n "${TORCH_SPEC:-}" ]; then
    pip install "$TORCH_SPEC"
elif ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        pip install "torch>=2.2"
    else
        echo "no NVIDIA GPU found: installing a CPU-only build of PyTorch"
        pip install --no-index --no-deps "torch>=2.2" 2>/dev/null \
            || pip install "torch>=2.2" --index-url https://download.pytorch.org/whl/cpu
    fi
fi
pip install -e ".[dev]"
if ! have_chromium; then
    "$venv/bin/python" -m playwright install chromium \
        || echo "no Chromium: the browser test of the student's JupyterLab will be skipped" >&2
fi
touch "$venv/.installed"
