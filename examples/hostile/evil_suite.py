"""A suite file that must never run: a notebook names it in its metadata (``"course": {"assignment":
"<path>/evil_suite.py"}``) to have ``course check`` execute it, outside any sandbox, as whoever checks.

Importing it writes ``evil_suite.ran`` next to it: the test copies it into a temporary folder and fails if
that marker appears. It defines no ``SUITE``.
"""
from pathlib import Path

Path(__file__).with_suffix(".ran").write_text("a suite named by a notebook was executed\n")
