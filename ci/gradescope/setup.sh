#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image (the zip is unpacked in /autograder/source).
set -euo pipefail
SOURCE="${COURSE_GRADER_SOURCE:-/autograder/source}"
PYTHON="${COURSE_PYTHON:-python3}"

missing=()
command -v "$PYTHON" >/dev/null || missing+=(python3 python3-pip python3-venv)
command -v bwrap >/dev/null || missing+=(bubblewrap)   # the sandbox's namespaces
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"
fi
pip() { "$PYTHON" -m pip --disable-pip-version-check --timeout 20 --retries 1 "$@"; }
# A torch already there is kept; else a CPU-only build (small image) from PyTorch's index when it answers
# within seconds, else the default index's build: setup never waits on an index it cannot reach.
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  if "$PYTHON" -c "import urllib.request; urllib.request.urlopen('https://download.pytorch.org/whl/cpu/', timeout=10)" \
      2>/dev/null; then
    pip install torch --index-url https://download.pytorch.org/whl/cpu
  else
    pip install torch
  fi
fi
pip install "$SOURCE"

# The grading salt came in the zip: only root may read it (sandboxed runs use other users).
chmod 700 "$SOURCE/state"
chmod 600 "$SOURCE/state/salt"
chmod +x "$SOURCE/run_autograder"
# Build the sandbox's private Python that the assignment's runs use now rather than during each submission
# (each runs in a fresh container made from this image), so that a failure shows here.
"$PYTHON" -m autograder.gradescope prepare --config "$SOURCE/grader.json"
