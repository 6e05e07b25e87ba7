"""The CI templates a course copies: their YAML is a well-formed workflow, and their shell steps, run here on a
student repository laid out as GitHub Classroom lays it out, give the right exit status, summary and points."""
import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "ci" / "github"
SUBS = ROOT / "tests" / "fixtures" / "fixture_hw" / "submissions"

#: The part of GitHub's workflow syntax these templates use (on, permissions, env, jobs with steps).
WORKFLOW_SCHEMA = {
    "type": "object", "required": ["name", "on", "jobs"],
    "properties": {
        "name": {"type": "string"}, "on": {"type": ["object", "array", "string"]},
        "permissions": {"type": "object", "additionalProperties": {"enum": ["read", "write", "none"]}},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "jobs": {"type": "object", "minProperties": 1, "additionalProperties": {
            "type": "object", "required": ["runs-on", "steps"],
            "properties": {
                "name": {"type": "string"}, "runs-on": {"type": "string"}, "if": {"type": "string"},
                "timeout-minutes": {"type": "integer", "minimum": 1},
                "steps": {"type": "array", "minItems": 1, "items": {
                    "type": "object",
                    "oneOf": [{"required": ["uses"]}, {"required": ["run"]}],
                    "properties": {"name": {"type": "string"}, "id": {"type": "string"}, "if": {"type": "string"},
                                   "uses": {"type": "string", "pattern": r"^[\w.-]+/[\w./-]+@[\w.-]+$"},
                                   "run": {"type": "string"}, "env": {"type": "object"}, "with": {"type": "object"}},
                    "additionalProperties": False}}},
            "additionalProperties": False}},
    },
    "additionalProperties": False,
}


def workflow(name):
    doc = yaml.safe_load((TEMPLATES / name).read_text())
    doc["on"] = doc.pop(True)          # YAML 1.1 reads the key `on` as True
    return doc


def step(doc, title):
    job = next(iter(doc["jobs"].values()))
    return next(s for s in job["steps"] if s.get("name") == title)


@pytest.mark.parametrize("name", ["autograding.yml", "grading.yml"])
def test_templates_are_well_formed_workflows(name):
    jsonschema.validate(workflow(name), WORKFLOW_SCHEMA)


def _run(script, cwd, env):
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def _env(tmp_path, **extra):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"), GITHUB_OUTPUT=str(tmp_path / "output.txt"),
               COURSE_GRADER_STATE=str(tmp_path / "state"), ASSIGNMENT="fixture_hw", **extra)
    env.pop("COURSE_GRADER_SALT", None)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("sample, status", [("complete", 0), ("partial", 1)])
def test_feedback_workflow_is_green_only_when_every_public_check_passes(tmp_path, sample, status):
    doc = workflow("autograding.yml")
    repo = tmp_path / f"fixture_hw-student"          # a Classroom repository: the notebook at its root
    repo.mkdir()
    shutil.copy(SUBS / f"{sample}.ipynb", repo / "fixture_hw.ipynb")
    r = _run(step(doc, "Run the public checks")["run"], repo, _env(tmp_path))
    assert r.returncode == status, r.stderr[-2000:]
    summary = (tmp_path / "summary.md").read_text()
    assert "## Public checks" in summary and ("FAIL" in summary) == bool(status)
    out = dict(line.split("=", 1) for line in (tmp_path / "output.txt").read_text().splitlines())
    payload = json.loads(base64.b64decode(out["result"]))
    assert payload["status"] == ("pass" if status == 0 else "fail") and payload["max_score"] > 0
    points = sum(t["score"] for t in payload["tests"])
    assert (points == payload["max_score"]) == (status == 0)
    reporter = step(doc, "Report the points to GitHub Classroom")
    assert reporter["with"]["runners"].upper() + "_RESULTS" in reporter["env"]   # the reporter finds the result


def test_feedback_workflow_reports_only_points_course_check_computed(tmp_path):
    """Found by an attack: `course check` returned before writing --classroom on a notebook it could not read,
    so a classroom.json committed to the repository (50/50, all passed) went to GitHub Classroom. The step now
    removes it first, and `course check` writes an error payload (0 points) for a notebook it cannot read; a
    notebook named like an option is read as a file."""
    doc = workflow("autograding.yml")
    repo = tmp_path / "fixture_hw-student"
    repo.mkdir()
    (repo / "-h.ipynb").write_text("{not a notebook")
    forged = {"version": 1, "status": "pass", "max_score": 50.0,
              "tests": [{"name": "all", "status": "pass", "score": 50.0, "max_score": 50.0, "message": ""}]}
    (repo / "classroom.json").write_text(json.dumps(forged))
    r = _run(step(doc, "Run the public checks")["run"], repo, _env(tmp_path))
    assert r.returncode == 1, r.stderr[-2000:]
    summary = (tmp_path / "summary.md").read_text()
    assert "could not check the notebook" in summary and "invalid JSON" in summary
    out = dict(line.split("=", 1) for line in (tmp_path / "output.txt").read_text().splitlines())
    payload = json.loads(base64.b64decode(out["result"]))
    assert payload["status"] == "error" and sum(t["score"] for t in payload["tests"]) == 0, payload


@pytest.mark.slow
def test_grading_workflow_fetches_the_roster_and_grades_everyone_once(tmp_path):
    doc = workflow("grading.yml")
    course = tmp_path / "course"
    (course / "rosters").mkdir(parents=True)
    (course / "rosters" / "fixture_hw.csv").write_text("github_username\nalice\nbob\ncarol\n")
    remote = tmp_path / "remote"                   # what `gh repo clone` would fetch
    for who, sample in (("alice", "complete"), ("bob", "partial")):
        (remote / f"fixture_hw-{who}").mkdir(parents=True)
        shutil.copy(SUBS / f"{sample}.ipynb", remote / f"fixture_hw-{who}" / "fixture_hw.ipynb")
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "gh").write_text(f'#!/bin/bash\n# gh repo clone ORG/REPO DEST -- ...\nsrc="{remote}/${{3#*/}}"\n'
                              '[ -d "$src" ] || exit 1\ncp -r "$src" "$4"\n')
    (shims / "sudo").write_text('#!/bin/bash\nwhile [[ "$1" == --* ]]; do shift; done\nexec "$@"\n')
    for p in shims.iterdir():
        p.chmod(0o755)
    env = _env(tmp_path, CLASSROOM_ORG="org", COURSE_GRADER_SALT="instructor-salt",
               COURSE_MIN_ISOLATION="none")
    env["PATH"] = f"{shims}:{env['PATH']}"
    r = _run(step(doc, "Fetch the students' repositories")["run"], course, env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in (course / "submissions").iterdir()) == ["fixture_hw-alice", "fixture_hw-bob"]
    for _ in range(2):                             # a rerun resumes: each student once
        r = _run(step(doc, "Grade (hidden checks)")["run"], course, env)
        assert r.returncode == 0, r.stderr[-2000:]
    import csv
    rows = list(csv.DictReader((course / "grading_output" / "grades.csv").open()))
    assert sorted(r["student"] for r in rows) == ["alice", "bob", "carol"]
    scores = {r["student"]: float(r["score"]) for r in rows}
    assert scores["alice"] == 100.0 and 0 < scores["bob"] < 100 and scores["carol"] == 0.0
