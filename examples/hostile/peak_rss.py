"""Run a command and write its peak memory to a JSON report: ``python peak_rss.py REPORT.json -- COMMAND...``.

The peak is ``ru_maxrss`` of ``RUSAGE_CHILDREN`` once the command has ended: the largest resident set of the
command or of any process below it that was waited for (pool workers, the judge, sandboxed runs). This
process starts nothing else, so the number belongs to the command alone. The command's output passes
through; the exit status is the command's.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python peak_rss.py REPORT.json -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    start = time.monotonic()
    code = subprocess.call(argv[2:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024     # KiB on Linux
    Path(argv[0]).write_text(json.dumps({"returncode": code, "peak_rss_bytes": peak,
                                         "seconds": round(time.monotonic() - start, 3)}))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
