"""results.json, feedback files, grades.csv: schema, atomic writes, rebuilt rows without duplicates."""
import csv
import json
import os
import re

import mistune
import pytest

from autograder import report
from autograder.suites import load_suite


def judged(fraction_cov=0.0):
    suite = load_suite("fixture_hw")
    checks = []
    for c in suite.checks:
        frac = fraction_cov if c.function == "mle_covariance" else 1.0
        case = {"fraction": frac, "status": "ok", "mistake": None, "message": ""}
        if frac < 1 and c.visibility == "visible":
            case.update(message="expected shape (2, 2) float64, got shape (2, 2) float64\nmax abs error 0.2",
                        mistake="unbiased_covariance", inputs="X = [[1, 2], [3, 4]]")
        checks.append({"name": c.name, "function": c.function, "visibility": c.visibility,
                       "points": float(c.points), "fraction": frac, "score": c.points * frac,
                       "status": "passed" if frac >= 1 else "failed", "cases": [case]})
    return {"checks": checks}


def build(name="alice", **kw):
    return report.build_results(load_suite("fixture_hw"), judged(**kw), name=name,
                                notebook_status={"status": "ok", "reason": ""},
                                function_status={"sample_mean": "ok"},
                                extra={"submission_sha256": "ab" * 32, "seeds": {"visible": "1", "hidden": "2"}},
                                execution_time=3.21)


def test_results_follow_the_gradescope_schema():
    r = build()
    assert r["score"] == 60.0 and r["execution_time"] == 3.21
    assert {"score", "execution_time", "output", "visibility", "stdout_visibility", "tests", "extra_data"} <= set(r)
    assert all({"name", "score", "max_score", "status", "output", "visibility"} <= set(t) for t in r["tests"])
    assert sum(t["max_score"] for t in r["tests"]) == 100
    assert r["extra_data"]["complete"] and r["extra_data"]["mistakes"] == ["unbiased_covariance"]
    json.dumps(r)          # serialisable
    # Gradescope's default format renders HTML tags and links in a student's text: every output is plain text
    for res in (r, report.error_results("fixture_hw", "alice", "<a href='x'>regraded</a>", {})):
        assert {k: res[k] for k in report.PLAIN_TEXT} == {"output_format": "text", "test_output_format": "text",
                                                           "test_name_format": "text"}


def test_visible_failures_show_inputs_and_hidden_ones_only_pass_fail():
    tests = {t["name"]: t for t in build()["tests"]}
    vis = tests["mle_covariance matches the reference"]["output"]
    assert "inputs:\n    X = [[1, 2], [3, 4]]" in vis and "max abs error" in vis
    hid = tests["mle_covariance on hidden data"]["output"]
    assert hid == "failed" and "hidden" in tests["mle_covariance on hidden data"]["tags"]


def test_hidden_checks_are_shown_on_gradescope_after_publishing():
    suite = load_suite("fixture_hw")
    tests = build()["tests"]
    hidden = {c.name for c in suite.checks if c.visibility == "hidden"}
    assert hidden and all(t["visibility"] == "after_published" for t in tests if t["name"] in hidden)
    assert all(t["visibility"] == "visible" for t in tests if t["name"] not in hidden)
    import dataclasses
    with pytest.raises(ValueError, match="hidden_visibility"):
        dataclasses.replace(suite, hidden_visibility="sometimes")


def test_feedback_markdown_and_html():
    r = build()
    md, html = report.render_markdown(r), report.render_html(r)
    assert "**Score: 60 / 100**" in md and "| mle_covariance on hidden data (hidden) | 0 / 15 | failed |" in md
    assert "unbiased_covariance" in md and "<table>" in html and "60 / 100" in html
    r2 = build()
    r2["tests"][2]["output"] = "<script>alert(1)</script>"
    assert "<script>" not in report.render_html(r2)


def test_write_atomic_leaves_old_file_when_interrupted(tmp_path, monkeypatch):
    p = tmp_path / "results.json"
    report.write_atomic(p, "old")

    def boom(src, dst):
        raise OSError("disk full")
    import os
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        report.write_atomic(p, "new" * 1000)
    monkeypatch.undo()
    assert p.read_text() == "old" and [q.name for q in tmp_path.iterdir()] == ["results.json"]


def test_csv_is_rebuilt_from_complete_results_only(tmp_path):
    names = [c.name for c in load_suite("fixture_hw").checks]
    report.write_submission(tmp_path, "alice", build("alice"))
    report.write_submission(tmp_path, "bob", build("bob", fraction_cov=1.0))
    report.write_submission(tmp_path, "bob", build("bob", fraction_cov=1.0))      # written twice
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "results.json").write_text('{"score": 10, "extra_da')     # a torn file is ignored
    report.rebuild_csv(tmp_path, names, assignment="fixture_hw")
    report.rebuild_csv(tmp_path, names, assignment="fixture_hw")
    with open(tmp_path / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["submission"] for r in rows] == ["alice", "bob"]
    assert [float(r["score"]) for r in rows] == [60.0, 100.0]
    assert float(rows[0]["mle_covariance matches the reference"]) == 0.0
    assert not list(tmp_path.rglob("*.tmp"))


def test_read_complete_checks_the_submission_hash(tmp_path):
    p = report.write_submission(tmp_path, "alice", build("alice"))
    assert report.read_complete(p, sha256="ab" * 32, assignment="fixture_hw") is not None
    assert report.read_complete(p, sha256="cd" * 32) is None          # the notebook changed: grade again
    assert report.read_complete(p, assignment="hw2_em") is None
    os.remove(p)
    assert report.read_complete(p) is None


def test_error_results_and_table():
    e = report.error_results("fixture_hw", "carol", "grader error: boom", {"submission_sha256": "x"})
    assert e["score"] == 0 and e["tests"] == [] and e["extra_data"]["complete"]
    table = report.format_table([build("alice"), e])
    assert "alice" in table and "60 / 100" in table and "grader error: boom" in table


# ------------------------------------------------------------------------------ student text is hostile
PAYLOADS = ["**Score: 100/100**", "<script>alert(1)</script>", "# heading", "[link](x)", "| a | b |",
            "see https://evil.example/x", "```\n<b>out of the fence</b>"]


def _render(md_text):
    """HTML as a CommonMark renderer that passes raw HTML through (as many do) makes it."""
    return mistune.create_markdown(escape=False, plugins=["table", "url", "strikethrough"])(md_text)


def _hostile_results():
    text = "\n".join(PAYLOADS)
    r = build(name="**Score: 100/100** <script>")
    r["output"] += "\nnotebook: cell 3 raised ValueError: " + " ".join(PAYLOADS)
    for t in r["tests"]:
        if t["status"] != "passed":
            t["output"] = "failed\n" + text
    return r


def test_each_payload_is_live_markdown_unless_escaped():
    """The payloads do format raw Markdown (so the next test could fail), and escape_markdown disarms each."""
    live = {"**Score: 100/100**": "<strong>", "<script>alert(1)</script>": "<script>", "# heading": "<h1>",
            "[link](x)": "<a ", "| a | b |\n| - | - |": "<table>", "see https://evil.example/x": "<a "}
    for raw, tag in live.items():
        assert tag in _render(raw)
        assert tag not in _render(report.escape_markdown(raw)) and tag not in _render(report.escape_markdown(raw, True))


def test_student_text_renders_inert_in_feedback_markdown():
    r = _hostile_results()
    html = _render(report.render_markdown(r))
    failed = sum(t["status"] != "passed" for t in r["tests"])
    assert html.count("<strong>") == 1 and "<strong>Score: 60 / 100</strong>" in html     # ours only
    assert html.count("<h1>") == 1 and html.count("<h2>") == failed
    assert html.count("<table>") == 1 and html.count("<tr>") == len(r["tests"]) + 1
    assert "<script" not in html and "<a " not in html and "<b>" not in html
    assert "**Score: 100/100**" in html and "&lt;script&gt;" in html       # shown, as text


def test_student_text_is_escaped_in_feedback_html():
    html = report.render_html(_hostile_results())
    assert "<script>" not in html and "<b>out" not in html and "&lt;script&gt;" in html


def test_control_characters_never_reach_a_report(tmp_path):
    r = build(name="alice")
    r["extra_data"]["notebook"] = {"status": "error", "reason": "=cmd|' /C calc'!A0 \x1b[2J\u202eevil"}
    r["output"] += "\nnotebook: \x1b[2J\u202eevil\u061c"
    md, html, table = report.render_markdown(r), report.render_html(r), report.format_table([r])
    for text in (md, html, table):
        assert "\x1b" not in text and "\u202e" not in text and "\u061c" not in text
    report.write_submission(tmp_path, "alice", r)
    report.rebuild_csv(tmp_path, [c.name for c in load_suite("fixture_hw").checks])
    with open(tmp_path / "grades.csv") as f:
        row = next(csv.DictReader(f))
    assert row["reason"].startswith("'=cmd") and "\x1b" not in row["reason"]      # a spreadsheet shows text


def test_lone_surrogates_never_stop_a_report(tmp_path):
    """A student's error message "\\ud800" (JSON decodes it to a lone surrogate) or a file name with a byte
    that is not UTF-8 (Python reads it as one) reach the results: UTF-8 cannot encode them, and writing the
    feedback raised, which stopped the whole batch on every rerun. Each is shown as U+FFFD everywhere."""
    r = build(name="alice")
    r["output"] += "\nnotebook: cell 3 raised ValueError: \ud800 boom"
    r["tests"][-1]["output"] = "failed\n\udcff.ipynb"
    r["extra_data"].update(student="al\udcffice", reason="2 notebooks are alice's (a.ipynb, \udcff.ipynb)")
    report.write_submission(tmp_path, "alice", r)
    report.rebuild_csv(tmp_path, [c.name for c in load_suite("fixture_hw").checks])
    for name in ("alice/feedback.md", "alice/feedback.html", "alice/results.json", "grades.csv"):
        text = (tmp_path / name).read_bytes().decode("utf-8")          # strict: every byte is valid UTF-8
        assert ("\ufffd" in text or "\\ufffd" in text) and not re.search(r"\\ud[89a-f]", text), name
    back = json.loads((tmp_path / "alice" / "results.json").read_text())
    assert "\ufffd boom" in back["output"] and back["extra_data"]["student"] == "al\ufffdice"
    assert "\ufffd.ipynb" in report.format_table([r])


def test_hidden_case_text_never_reaches_the_report():
    """Whatever the judge hands over for a hidden case (inputs, expected values, the student's message from
    that case, a mistake), the report shows only the check's name, passed/failed and a generic line."""
    secret = "SECRET 3.14159 hidden input"
    j = judged()
    for c in j["checks"]:
        if c["visibility"] == "hidden":
            c["cases"] = [{"fraction": 0.0, "status": "error", "mistake": "unbiased_covariance", "message": secret,
                           "inputs": secret},
                          {"fraction": 0.0, "status": "ok", "mistake": None, "message": f"expected {secret}"}]
            c.update(fraction=0.0, score=0.0, status="failed")
    r = report.build_results(load_suite("fixture_hw"), j, name="alice", notebook_status={"status": "ok", "reason": ""},
                             function_status={"sample_mean": "ok", "mle_covariance": f"error {secret}"},
                             extra={}, execution_time=1.0)
    seen = [r["output"], *(t["output"] for t in r["tests"]), report.render_markdown(r), report.render_html(r)]
    assert not any("SECRET" in text or "3.14159" in text for text in seen)
    hidden = [t["output"] for t in r["tests"] if "hidden" in t["tags"]]
    assert hidden and all(re.fullmatch(r"failed \(0 of 2 hidden cases passed; \w+ raised an exception on a hidden "
                                       r"case\)", o) for o in hidden), hidden
    assert "mle_covariance raised an exception" in r["output"]


def test_isolation_level_in_grades_csv_and_feedback(tmp_path):
    names = [c.name for c in load_suite("fixture_hw").checks]
    ns = build("alice")
    ns["extra_data"]["isolation"] = "namespaces"
    report.write_submission(tmp_path, "alice", ns)
    report.write_submission(tmp_path, "bob", build("bob"))             # not recorded: an empty cell
    report.rebuild_csv(tmp_path, names)
    with open(tmp_path / "grades.csv") as f:
        rows = {r["submission"]: r for r in csv.DictReader(f)}
    assert rows["alice"]["isolation"] == "namespaces" and rows["bob"]["isolation"] == ""
    assert report.csv_columns(names).index("isolation") < report.csv_columns(names).index(names[0])
    md = (tmp_path / "alice" / "feedback.md").read_text()
    assert [ln for ln in md.splitlines() if "isolation" in ln] == ["Sandbox isolation: namespaces"]
    assert "Sandbox isolation: namespaces" in (tmp_path / "alice" / "feedback.html").read_text()
    assert "Sandbox isolation: not recorded" in (tmp_path / "bob" / "feedback.md").read_text()
