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
"$PYTHON" -m pip install --upgrade pip
# CPU-only PyTorch keeps the image small; the course package brings everything else.
"$PYTHON" -m pip install torch --index-url https://download.pytorch.org/whl/cpu
"$PYTHON" -m pip install "$SOURCE"

# The grading salt came in the zip: only root may read it (sandboxed runs use other users).
chmod 700 "$SOURCE/state"
chmod 600 "$SOURCE/state/salt"
chmod +x "$SOURCE/run_autograder"
# Build the sandbox's private Python now rather than during the first submission.
"$PYTHON" -c "from autograder.sandbox import build_runtime; build_runtime()" || true
