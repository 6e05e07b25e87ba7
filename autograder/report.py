"""One result per submission: Gradescope ``results.json``, ``feedback.md``, ``feedback.html``, a CSV row.

``results.json`` follows Gradescope's schema: ``score``, ``execution_time``, ``output``, ``visibility``,
``stdout_visibility`` and ``tests[]`` (``name score max_score status output visibility tags``); everything
the grader itself wants to remember is under ``extra_data`` (suite, seeds, versions, durations, sandbox
limits, the submission's sha256 and ``complete: true``). A hidden check's ``output`` says passed/failed only.

Every file is written atomically (a temporary file in the same folder, fsync, ``os.replace``), and the
CSV is rebuilt as a whole from the ``results.json`` files, so a grader killed at any moment leaves either
the old or the new file, never a torn one.
"""
from __future__ import annotations

import csv
import html
import io
import json
import os
import tempfile
from pathlib import Path

__all__ = ["build_results", "error_results", "render_markdown", "render_html", "write_atomic",
           "write_submission", "read_complete", "rebuild_csv", "csv_columns", "format_table", "RESULTS_FILE"]

RESULTS_FILE = "results.json"
CSV_FILE = "grades.csv"


def write_atomic(path, data) -> None:
    """Write ``data`` (str or bytes) to ``path`` atomically: tmp file in the same folder + os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------------- building results
def _check_output(c: dict) -> str:
    """The student-facing text of one check."""
    if c.get("grader_error"):
        return f"grader error: {c['grader_error']}"
    n = len(c.get("cases", []))
    passed = sum(1 for e in c.get("cases", []) if e["fraction"] >= 1.0)
    head = "passed" if c["status"] == "passed" else "failed"
    if c["visibility"] == "hidden":
        extra = f" ({passed} of {n} hidden cases)" if n > 1 else ""
        statuses = sorted({e["message"] for e in c.get("cases", []) if e.get("message")})
        tail = ("; " + "; ".join(statuses)) if statuses else ""
        return f"{head}{extra}{tail}"
    lines = [f"{head}" + (f" ({passed} of {n} cases)" if n > 1 else "")]
    for i, e in enumerate(c.get("cases", [])):
        if e["fraction"] >= 1.0:
            continue
        lines.append(f"case {i + 1}" + (f" (partial credit {e['fraction']:.0%})" if 0 < e["fraction"] < 1 else "") + ":")
        if e.get("inputs"):
            lines.append("  inputs:")
            lines += [f"    {ln}" for ln in e["inputs"].splitlines()]
        for ln in (e.get("message") or "").splitlines():
            lines.append(f"  {ln}")
        break           # the first failing case is enough to act on
    return "\n".join(lines)


def build_results(suite, judged: dict | None, *, name: str, notebook_status: dict, function_status: dict,
                  extra: dict, execution_time: float, public_only: bool = False) -> dict:
    """Assemble the results.json dict from the judge's checks and the sandbox's outcome.

    Parameters
    ----------
    judged : dict
        ``judge.json`` content (``{"checks": [...]}``).
    notebook_status : dict
        ``{"status", "reason"}`` of the notebook run (reason: one line, shown to the student).
    function_status : dict
        ``{function: status}`` summary (ok / error / timeout / missing / forbidden / not_run).
    extra : dict
        Merged into ``extra_data``.
    """
    tests, by_function = [], {}
    for c in (judged or {}).get("checks", []):
        tests.append({
            "name": c["name"], "score": round(float(c["score"]), 4), "max_score": float(c["points"]),
            "status": c["status"], "output": _check_output(c), "visibility": "visible",
            "tags": [c["visibility"], c["function"]],
        })
        by_function.setdefault(c["function"], []).append(c["name"])
    score = round(sum(t["score"] for t in tests), 4)
    max_score = round(sum(t["max_score"] for t in tests), 4)
    lines = [f"{suite.name}: {score:g} / {max_score:g}"]
    if notebook_status.get("reason"):
        lines.append(f"notebook: {notebook_status['reason']}")
    for f, st in function_status.items():
        if st != "ok":
            lines.append(f"{f}: {st}")
    mistakes = sorted({e["mistake"] for c in (judged or {}).get("checks", []) if c["visibility"] == "visible"
                       for e in c.get("cases", []) if e.get("mistake")})
    if mistakes:
        from autograder.feedback import describe_mistake
        lines += [f"known mistake {m}: {describe_mistake(m)}" for m in mistakes]
    extra_data = dict(extra)
    extra_data.update({"assignment": suite.name, "submission": name, "public_only": bool(public_only),
                       "notebook": notebook_status, "functions": function_status, "max_score": max_score,
                       "mistakes": mistakes, "complete": True})
    return {
        "score": score, "execution_time": round(float(execution_time), 3), "output": "\n".join(lines),
        "visibility": "visible", "stdout_visibility": "hidden", "tests": tests, "extra_data": extra_data,
    }


def error_results(suite_name: str, name: str, reason: str, extra: dict, execution_time: float = 0.0,
                  max_score: float = 100.0) -> dict:
    """A score-0 result that still counts as complete (the submission or the grader failed)."""
    extra_data = dict(extra)
    extra_data.update({"assignment": suite_name, "submission": name, "reason": reason, "max_score": max_score,
                       "complete": True, "error": True})
    return {"score": 0.0, "execution_time": round(float(execution_time), 3), "output": reason,
            "visibility": "visible", "stdout_visibility": "hidden", "tests": [], "extra_data": extra_data}


# ---------------------------------------------------------------------- feedback
def render_markdown(results: dict) -> str:
    """feedback.md: the score, then one section per check (expected vs got for visible ones)."""
    ed = results.get("extra_data", {})
    out = [f"# {ed.get('assignment', '')} — {ed.get('submission', '')}", "",
           f"**Score: {results['score']:g} / {ed.get('max_score', 100):g}**", ""]
    summary = results.get("output", "").splitlines()[1:] if results.get("tests") else [results.get("output", "")]
    if any(s.strip() for s in summary):
        out += [f"- {s}" for s in summary if s.strip()] + [""]
    if results.get("tests"):
        out += ["| check | points | status |", "| --- | ---: | --- |"]
        for t in results["tests"]:
            vis = " (hidden)" if "hidden" in t.get("tags", []) else ""
            out.append(f"| {t['name']}{vis} | {t['score']:g} / {t['max_score']:g} | {t['status']} |")
        out.append("")
        for t in results["tests"]:
            if t["status"] == "passed":
                continue
            out += [f"## {t['name']}", "", "```", t["output"], "```", ""]
    return "\n".join(out)


def render_html(results: dict) -> str:
    """feedback.html: the same content as feedback.md, self-contained."""
    ed = results.get("extra_data", {})
    esc = html.escape
    rows = "".join(
        f"<tr class='{esc(t['status'])}'><td>{esc(t['name'])}{' <em>(hidden)</em>' if 'hidden' in t.get('tags', []) else ''}"
        f"</td><td>{t['score']:g} / {t['max_score']:g}</td><td>{esc(t['status'])}</td></tr>"
        for t in results.get("tests", []))
    details = "".join(f"<h2>{esc(t['name'])}</h2><pre>{esc(t['output'])}</pre>"
                      for t in results.get("tests", []) if t["status"] != "passed")
    title = f"{ed.get('assignment', '')} — {ed.get('submission', '')}"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}"
        ".passed td:last-child{color:#060}.failed td:last-child{color:#a00}pre{background:#f6f6f6;padding:.6em;"
        "white-space:pre-wrap}</style></head><body>"
        f"<h1>{esc(title)}</h1><p><strong>Score: {results['score']:g} / {ed.get('max_score', 100):g}</strong></p>"
        f"<pre>{esc(results.get('output', ''))}</pre>"
        f"<table><tr><th>check</th><th>points</th><th>status</th></tr>{rows}</table>{details}</body></html>\n")


# ---------------------------------------------------------------------- files on disk
def write_submission(out_dir, name: str, results: dict) -> Path:
    """Write DIR/name/{feedback.md, feedback.html, results.json}; results.json last (it marks completion)."""
    d = Path(out_dir) / name
    write_atomic(d / "feedback.md", render_markdown(results))
    write_atomic(d / "feedback.html", render_html(results))
    write_atomic(d / RESULTS_FILE, json.dumps(results, indent=1, sort_keys=False) + "\n")
    return d / RESULTS_FILE


def read_complete(path, sha256: str | None = None, assignment: str | None = None) -> dict | None:
    """The results.json at ``path`` if it is complete (and for this submission/assignment), else None."""
    try:
        res = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    ed = res.get("extra_data") if isinstance(res, dict) else None
    if not isinstance(ed, dict) or not ed.get("complete") or "score" not in res:
        return None
    if sha256 is not None and ed.get("submission_sha256") != sha256:
        return None
    if assignment is not None and ed.get("assignment") != assignment:
        return None
    return res


def csv_columns(check_names) -> list:
    return ["submission", "score", "max_score", "status", "execution_time", "reason", *check_names]


def csv_row(results: dict, check_names) -> dict:
    ed = results.get("extra_data", {})
    scores = {t["name"]: t["score"] for t in results.get("tests", [])}
    status = "error" if ed.get("error") else "graded"
    reason = ed.get("reason") or (ed.get("notebook") or {}).get("reason") or ""
    row = {"submission": ed.get("submission", ""), "score": results.get("score", 0.0),
           "max_score": ed.get("max_score", 100.0), "status": status,
           "execution_time": results.get("execution_time", 0.0), "reason": reason.splitlines()[0] if reason else ""}
    for n in check_names:
        row[n] = scores.get(n, 0.0)
    return row


def rebuild_csv(out_dir, check_names, assignment: str | None = None) -> Path:
    """Rewrite DIR/grades.csv (atomically) with one row per complete DIR/*/results.json, sorted by name."""
    out_dir = Path(out_dir)
    rows = []
    for p in sorted(out_dir.glob(f"*/{RESULTS_FILE}")):
        res = read_complete(p, assignment=assignment)
        if res is not None:
            rows.append(csv_row(res, check_names))
    rows.sort(key=lambda r: r["submission"])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=csv_columns(check_names), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_atomic(out_dir / CSV_FILE, buf.getvalue())
    return out_dir / CSV_FILE


def format_table(results_list) -> str:
    """A plain-text table of scores: submission, score, status, note."""
    rows = []
    for res in results_list:
        ed = res.get("extra_data", {})
        failed = [t["name"] for t in res.get("tests", []) if t["status"] != "passed"]
        note = ed.get("reason") or (f"{len(failed)} check(s) failed" if failed else "all checks passed")
        rows.append((str(ed.get("submission", "?")), f"{res.get('score', 0):g} / {ed.get('max_score', 100):g}",
                     "error" if ed.get("error") else "graded", note.splitlines()[0][:70]))
    head = ("submission", "score", "status", "note")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(lines)
