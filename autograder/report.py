"""One result per submission: Gradescope ``results.json``, ``feedback.md``, ``feedback.html``, a CSV row.

``results.json`` follows Gradescope's schema: ``score``, ``execution_time``, ``output``, ``visibility``,
``stdout_visibility``, the ``output_format``, ``test_output_format`` and ``test_name_format`` (all
"text": Gradescope shows them as typed, no HTML or links) and ``tests[]`` (``name score max_score status
output visibility tags``); everything
the grader itself wants to remember is under ``extra_data`` (suite, seeds, versions, durations, sandbox
limits, the sandbox's ``isolation`` level, the submission's sha256 and ``complete: true``). A hidden check's
``output`` says passed/failed only, and for a hidden case the function failed on, one generic line made
from its status (e.g. "e_step raised an exception on a hidden case"): never a message, an input or an
expected value, whatever the judge handed over.

Student text is hostile. Everything a student controls (their error messages, the notebook's error text,
values their functions returned, the submission's name) enters ``feedback.md`` only through
:func:`escape_markdown`, ``feedback.html`` only through :func:`escape_html`, ``grades.csv`` only through
:func:`escape_csv`, so it can neither format the report (a fake ``**Score: 100/100**``, a heading, a link,
a table row, raw HTML) nor run as a spreadsheet formula or a terminal control sequence.

Every file is written atomically (a temporary file in the same folder, fsync, ``os.replace``), and the
CSV is rebuilt as a whole from the ``results.json`` files, so a grader killed at any moment leaves either
the old or the new file, never a torn one.
"""
from __future__ import annotations

import csv
import html
import io
import json
import re
import string
from pathlib import Path

__all__ = ["build_results", "error_results", "render_markdown", "render_html", "write_atomic",
           "write_submission", "read_complete", "rebuild_csv", "csv_columns", "format_table", "RESULTS_FILE",
           "escape_markdown", "escape_html", "escape_csv", "hidden_case_line", "STATUS_WORDS", "STUB_HINT", "display_tests"]

RESULTS_FILE = "results.json"
CSV_FILE = "grades.csv"

#: What a function that returned nothing is reported as, by its status (the judge's messages, the summary,
#: and the only text a hidden case contributes). "stub": the static check found its body untouched.
STATUS_WORDS = {
    "error": "raised an exception", "timeout": "ran out of time", "missing": "is not defined in the notebook",
    "not_run": "was not run", "forbidden": "uses a forbidden import", "stub": "is not written yet",
}
#: Gradescope shows every output and test name as plain text (its default format renders HTML links and tags).
PLAIN_TEXT = {"output_format": "text", "test_output_format": "text", "test_name_format": "text"}
#: What to do about a function that is not written yet.
STUB_HINT = "replace `raise NotImplementedError()` with your code"
#: The statuses a function can have (anything else is reported as "error").
_FUNCTION_STATUSES = ("ok", *STATUS_WORDS)


# ---------------------------------------------------------------------- escaping student text
# C0/C1 control characters (but tab and newline), the Unicode controls that reorder or hide text, and lone
# surrogates (JSON's "\ud800" decodes to one, and a file name's undecodable byte becomes one: no UTF-8 encodes it).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MD_PUNCTUATION = frozenset(string.punctuation)     # CommonMark: any ASCII punctuation may be backslash-escaped


def _printable(text) -> str:
    """``text`` as a str with control characters (terminal sequences, bidi overrides) shown as U+FFFD."""
    return _CONTROL.sub("\ufffd", str(text))


def escape_markdown(text, block: bool = False) -> str:
    """Student-controlled text made inert in Markdown: the one way such text enters ``feedback.md``.

    Parameters
    ----------
    text : str
        Anything a student controls (an error message, a returned value rendered in a message, a name).
    block : bool
        False: for one line (a table cell, a heading, a list item). Whitespace runs, newlines included,
        become one space, and every ASCII punctuation character is backslash-escaped (but an underscore
        inside a word, which Markdown never reads as emphasis), so no emphasis, heading, list, quote, link,
        autolink, HTML tag, entity or table-cell separator can start.
        True: for a multi-line message, shown verbatim (alignment kept) in a fenced code block whose fence is
        longer than any run of backticks inside it, so nothing in the text can close it; a code block's
        content is never interpreted (HTML included).

    Returns
    -------
    str
        Markdown that renders as the literal text (control characters shown as U+FFFD).
    """
    text = _printable(text)
    if block:
        longest = max((len(run) for run in re.findall("`+", text)), default=0)
        fence = "`" * max(3, longest + 1)
        return f"{fence}\n{text}\n{fence}"
    line = " ".join(text.split())
    out = []
    for i, ch in enumerate(line):
        # An underscore between two letters or digits can neither open nor close emphasis (CommonMark's
        # flanking rules): identifiers such as fit_gmm stay readable in the raw file.
        inside_word = ch == "_" and 0 < i < len(line) - 1 and line[i - 1].isalnum() and line[i + 1].isalnum()
        out.append("\\" + ch if ch in _MD_PUNCTUATION and not inside_word else ch)
    return "".join(out)


def escape_html(text) -> str:
    """Student-controlled text made inert in HTML (``html.escape``, control characters shown as U+FFFD)."""
    return html.escape(_printable(text), quote=True)


def escape_csv(text) -> str:
    """A text cell of grades.csv that a spreadsheet shows as text: one line, control characters shown as
    U+FFFD, and a leading ``= + - @`` (a formula) quoted with an apostrophe."""
    text = " ".join(_printable(text).split())
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def hidden_case_line(function: str, status: str) -> str:
    """The generic line shown for a hidden case ``function`` did not return from (status only)."""
    return f"{function} {STATUS_WORDS.get(status, STATUS_WORDS['error'])} on a hidden case"


def write_atomic(path, data) -> None:
    """Write ``data`` (str or bytes) to ``path`` atomically (``autograder.wire.write_atomic``), creating its folder."""
    from autograder import wire
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wire.write_atomic(path, data.encode("utf-8") if isinstance(data, str) else bytes(data))


def _check_output(c: dict) -> str:
    """The student-facing text of one check (hidden checks: made from case statuses only)."""
    if c.get("grader_error"):
        return f"grader error: {c['grader_error']}"
    n = len(c.get("cases", []))
    passed = sum(1 for e in c.get("cases", []) if e["fraction"] >= 1.0)
    head = "passed" if c["status"] == "passed" else "failed"
    if c["visibility"] == "hidden":
        # Nothing the judge wrote about a hidden case is used: its message could carry the case's inputs,
        # the expected values or the student's own text from that case.
        parts = [f"{passed} of {n} hidden cases passed"] if n > 1 else []
        parts += sorted({hidden_case_line(c["function"], str(e.get("status")))
                         for e in c.get("cases", []) if e.get("status", "ok") != "ok"})
        return head + (f" ({'; '.join(parts)})" if parts else "")
    lines = [f"{head}" + (f" ({passed} of {n} cases)" if n > 1 else "")]
    for i, e in enumerate(c.get("cases", [])):
        if e["fraction"] >= 1.0:
            continue
        partial = f" (partial credit {e['fraction']:.0%})" if 0 < e["fraction"] < 1 else ""
        lines.append(f"case {i + 1}{partial}:")
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
            "status": c["status"], "output": _check_output(c),
            "visibility": "visible" if c["visibility"] == "visible" else getattr(suite, "hidden_visibility",
                                                                                  "after_published"),
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
            lines.append(f"{f} {STATUS_WORDS[st if st in _FUNCTION_STATUSES else 'error']}")
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
        "visibility": "visible", "stdout_visibility": "hidden", **PLAIN_TEXT, "tests": tests, "extra_data": extra_data,
    }


def error_results(suite_name: str, name: str, reason: str, extra: dict, execution_time: float = 0.0,
                  max_score: float = 100.0) -> dict:
    """A score-0 result that still counts as complete (the submission or the grader failed)."""
    extra_data = dict(extra)
    extra_data.update({"assignment": suite_name, "submission": name, "reason": reason, "max_score": max_score,
                       "complete": True, "error": True})
    return {"score": 0.0, "execution_time": round(float(execution_time), 3), "output": reason,
            "visibility": "visible", "stdout_visibility": "hidden", **PLAIN_TEXT, "tests": [], "extra_data": extra_data}


# ---------------------------------------------------------------------- feedback
def display_tests(results: dict) -> list:
    """The tests as a person reads them: every check of a function that is not written yet (an untouched
    stub) folded into one line for that function, its points summed; other checks as they are. Each item is
    a test dict (``name score max_score status output tags``)."""
    stubs = {f for f, st in ((results.get("extra_data") or {}).get("functions") or {}).items() if st == "stub"}
    out, folded = [], {}
    for t in results.get("tests", []):
        tags = t.get("tags") or []
        fname = tags[1] if len(tags) > 1 else None
        if fname not in stubs:
            out.append(t)
        elif fname in folded:
            folded[fname]["max_score"] += t["max_score"]
        else:
            folded[fname] = {"name": f"{fname} {STATUS_WORDS['stub']}", "score": 0.0, "max_score": t["max_score"],
                             "status": "not written", "tags": ["stub", fname], "output": STUB_HINT}
            out.append(folded[fname])
    return out


def _isolation(results: dict) -> str:
    return str((results.get("extra_data") or {}).get("isolation") or "")


def render_markdown(results: dict) -> str:
    """feedback.md: the score, then one section per check (expected vs got for visible ones).

    Every text taken from ``results`` goes through :func:`escape_markdown`: the Markdown around it is ours.
    """
    md = escape_markdown
    ed = results.get("extra_data", {})
    out = [f"# {md(ed.get('assignment', ''))} — {md(ed.get('submission', ''))}", "",
           f"**Score: {results['score']:g} / {ed.get('max_score', 100):g}**", "",
           f"Sandbox isolation: {md(_isolation(results) or 'not recorded')}", ""]
    summary = results.get("output", "").splitlines()[1:] if results.get("tests") else [results.get("output", "")]
    if any(s.strip() for s in summary):
        out += [f"- {md(s)}" for s in summary if s.strip()] + [""]
    if results.get("tests"):
        tests = display_tests(results)
        out += ["| check | points | status |", "| --- | ---: | --- |"]
        for t in tests:
            vis = " (hidden)" if "hidden" in t.get("tags", []) else ""
            out.append(f"| {md(t['name'])}{vis} | {t['score']:g} / {t['max_score']:g} | {md(t['status'])} |")
        out.append("")
        for t in tests:
            if t["status"] in ("passed", "not written"):     # a stub's one line is in the summary already
                continue
            out += [f"## {md(t['name'])}", "", md(t["output"], block=True), ""]
    return "\n".join(out)


def render_html(results: dict) -> str:
    """feedback.html: the same content as feedback.md, self-contained (every text through :func:`escape_html`)."""
    ed = results.get("extra_data", {})
    esc = escape_html
    tests = display_tests(results)
    rows = "".join(
        f"<tr class='{esc(t['status'])}'><td>{esc(t['name'])}"
        f"{' <em>(hidden)</em>' if 'hidden' in t.get('tags', []) else ''}"
        f"</td><td>{t['score']:g} / {t['max_score']:g}</td><td>{esc(t['status'])}</td></tr>"
        for t in tests)
    details = "".join(f"<h2>{esc(t['name'])}</h2><pre>{esc(t['output'])}</pre>"
                      for t in tests if t["status"] not in ("passed", "not written"))
    title = f"{ed.get('assignment', '')} — {ed.get('submission', '')}"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}"
        ".passed td:last-child{color:#060}.failed td:last-child{color:#a00}pre{background:#f6f6f6;padding:.6em;"
        "white-space:pre-wrap}</style></head><body>"
        f"<h1>{esc(title)}</h1><p><strong>Score: {results['score']:g} / {ed.get('max_score', 100):g}</strong></p>"
        f"<p>Sandbox isolation: {esc(_isolation(results) or 'not recorded')}</p>"
        f"<pre>{esc(results.get('output', ''))}</pre>"
        f"<table><tr><th>check</th><th>points</th><th>status</th></tr>{rows}</table>{details}</body></html>\n")


# ---------------------------------------------------------------------- files on disk
def _encodable(value):
    """``value`` (a results dict) with each lone surrogate in its strings shown as U+FFFD: UTF-8 cannot encode
    one, and a JSON reader may refuse its ``\\ud800`` escape."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encodable(v) for v in value]
    return value


def results_json(results: dict) -> str:
    """The text of results.json: every string encodable (no lone surrogates)."""
    return json.dumps(_encodable(results), indent=1) + "\n"


def write_submission(out_dir, name: str, results: dict) -> Path:
    """Write DIR/name/{feedback.md, feedback.html, results.json}; results.json last (it marks completion)."""
    d = Path(out_dir) / name
    results = _encodable(results)
    write_atomic(d / "feedback.md", render_markdown(results))
    write_atomic(d / "feedback.html", render_html(results))
    write_atomic(d / RESULTS_FILE, results_json(results))
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
    """grades.csv's header: the submission's columns, then one column per check."""
    return ["submission", "student", "score", "max_score", "status", "execution_time", "isolation", "reason",
            *check_names]


def csv_row(results: dict, check_names) -> dict:
    """One submission's row of grades.csv (``isolation``: the sandbox's level, empty when not recorded)."""
    ed = results.get("extra_data", {})
    scores = {t["name"]: t["score"] for t in results.get("tests", [])}
    status = "error" if ed.get("error") else "graded"
    reason = str(ed.get("reason") or (ed.get("notebook") or {}).get("reason") or "")
    row = {"submission": escape_csv(ed.get("submission", "")), "student": escape_csv(ed.get("student") or ""),
           "score": results.get("score", 0.0),
           "max_score": ed.get("max_score", 100.0), "status": status,
           "execution_time": results.get("execution_time", 0.0), "isolation": escape_csv(_isolation(results)),
           "reason": escape_csv(reason.splitlines()[0]) if reason.strip() else ""}
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


def classroom_payload(results: dict, max_score: float) -> dict:
    """One result as GitHub Classroom's autograding reporter reads a runner's (base64 of this JSON in the
    ``<RUNNER>_RESULTS`` variable): ``version``, ``status`` ("pass", "fail" or "error"), ``max_score`` and
    ``tests[]`` (``name status score message``); the points it reports are the sum of the tests' scores."""
    error = bool(results.get("extra_data", {}).get("error"))
    tests = [{"name": t["name"], "status": "pass" if t["status"] == "passed" else "fail",
              "score": float(t["score"]), "max_score": float(t["max_score"]), "message": _printable(t["output"]),
              "test_code": "", "filename": "", "line_no": 0, "execution_time": ""}
             for t in results.get("tests", [])]
    status = "error" if error else ("pass" if tests and all(t["status"] == "pass" for t in tests) else "fail")
    if error:
        tests = [{"name": "the notebook", "status": "error", "score": 0.0, "max_score": float(max_score),
                  "message": _printable(results.get("output", "")), "test_code": "", "filename": "",
                  "line_no": 0, "execution_time": ""}]
    return {"version": 1, "status": status, "max_score": float(max_score), "tests": tests}


def format_table(results_list) -> str:
    """A plain-text table of scores: submission, score, status, note."""
    rows = []
    for res in results_list:
        ed = res.get("extra_data", {})
        failed = [t["name"] for t in res.get("tests", []) if t["status"] != "passed"]
        note = ed.get("reason") or (f"{len(failed)} check(s) failed" if failed else "all checks passed")
        rows.append((_printable(ed.get("submission", "?")), f"{res.get('score', 0):g} / {ed.get('max_score', 100):g}",
                     "error" if ed.get("error") else "graded", " ".join(_printable(note).split())[:70]))
    head = ("submission", "score", "status", "note")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(lines)
