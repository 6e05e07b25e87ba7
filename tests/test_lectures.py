"""The lecture notebooks: in sync with their jupytext source, the same setup cell, and every one executes
(FAST=True) writing exactly its registered figures; regenerating gives the same bytes, and a clean copy of the
course regenerates the committed figures and executed copies byte for byte (slow: the full settings)."""
import argparse
import base64
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from autograder import figures as figcmd
from course_lib.plotting import check_registry, load_registry

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ROOT / "lectures"
NOTEBOOKS = figcmd.lecture_notebooks(LECTURES)
NAMES = ["01_generative_models_mle", "02_expectation_maximization", "03_pca_factor_analysis",
         "04_variational_autoencoders"]


def load(path):
    return json.loads(Path(path).read_text())


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_the_four_lectures_exist():
    assert [p.stem for p in NOTEBOOKS] == NAMES


def test_notebooks_are_in_sync_with_their_source():
    out = subprocess.run([sys.executable, str(LECTURES / "build_notebooks.py"), "--check"], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr


SOURCES = sorted((LECTURES / "nb_src").glob("[0-9][0-9]_*.py"))


def test_every_notebook_has_a_jupytext_source():
    assert [p.stem for p in SOURCES] == NAMES


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_source_is_the_text_jupytext_writes_for_its_notebook(source):
    """Reading the percent-format source and writing the notebook back gives the same text: no cell, blank line,
    markdown line holding '#' or LaTeX, or tag is lost or added on the way (the notebook is what the text shows)."""
    import jupytext
    _, nb = _builder().build(source)
    del nb.cells[1]                                      # the shared setup cell, added by the builder
    nb.metadata = {"jupytext": {"notebook_metadata_filter": "-all"}}
    assert jupytext.writes(nb, fmt="py:percent") == source.read_text(encoding="utf-8")


def test_markdown_with_hashes_and_latex_survives_the_build(tmp_path):
    source = tmp_path / "09_demo.py"
    markdown = "# Title\n\n## A section, #3\n\n$$\\#\\{z\\}=\\sum_i x_i\\quad\\text{50 \\%}$$\n  indented `# %% not a cell`"
    code = "# a comment\nx = 1  # 100 %\n\n\ndef f():\n    return '#'"
    source.write_text("# %% [markdown]\n" + "\n".join(("# " + line).rstrip() for line in markdown.split("\n"))
                      + '\n\n# %% tags=["parameters"]\nFAST = False\n\n# %%\n' + code + "\n")
    name, nb = _builder().build(source)
    assert name == "09_demo"
    assert [c.source for c in nb.cells] == [markdown, _builder().SETUP.read_text().strip("\n"), "FAST = False", code]
    assert [c.id for c in nb.cells] == ["l09-000", "l09-001", "l09-002", "l09-003"]
    assert [c.metadata for c in nb.cells] == [{}, {}, {"tags": ["parameters"]}, {}]


def test_a_source_without_its_parameters_cell_is_one_clear_error(tmp_path):
    source = tmp_path / "09_demo.py"
    source.write_text("# %% [markdown]\n# # Title\n\n# %%\nx = 1\n")
    with pytest.raises(ValueError, match=r"09_demo.py: .*parameters") as err:
        _builder().build(source)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(path):
    nb = load(path)
    cells = code_cells(nb)
    for c in cells:
        assert not c.get("outputs") and c.get("execution_count") is None, "committed notebooks carry no outputs"
    setup, params = cells[0], cells[1]
    assert "seed_everything" in "".join(setup["source"]) and "get_device" in "".join(setup["source"])
    assert "parameters" in params["metadata"].get("tags", [])
    assert "FAST = False" in "".join(params["source"])
    code = "\n".join("".join(c["source"]) for c in cells)
    # notebooks import the estimators from course_lib and never define their own
    assert "\nclass " not in "\n" + code and "def fit(" not in code


def test_every_lecture_opens_with_the_same_setup_cell():
    setups = {"".join(code_cells(load(p))[0]["source"]) for p in NOTEBOOKS}
    assert len(setups) == 1


_RUNS = {}


def executed(stem, tmp_path_factory):
    """Run a lecture once per test session with FAST=True into a temporary figures folder."""
    if stem not in _RUNS:
        nb = LECTURES / f"{stem}.ipynb"
        out = tmp_path_factory.mktemp(f"figs_{stem[:2]}")
        _RUNS[stem] = figcmd.run_lecture(nb, out, {"FAST": True}, executed=out / "executed.ipynb")
    return _RUNS[stem]


@pytest.mark.parametrize("stem", NAMES)
def test_lecture_executes_and_writes_its_registered_figures(stem, tmp_path_factory):
    run = executed(stem, tmp_path_factory)
    registry = load_registry()
    assert check_registry({stem: set(run.figures)}, registry) == []
    assert set(run.figures) == {f for f, e in registry.items() if e["lecture"] == stem}
    for path in run.figures.values():
        assert path.stat().st_size > 5000 and path.read_bytes()[:4] == b"\x89PNG"
    nb = load(run.executed)
    errors = [o for c in code_cells(nb) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # the polls show as plain text when executed without a browser
    text = json.dumps(nb)
    assert "answer key: course_lib.polls.answer" in text or stem == "04_variational_autoencoders"


@pytest.mark.parametrize("name", NAMES)
def test_course_figures_regenerates_byte_identical_files(name, tmp_path, tmp_path_factory, monkeypatch, capsys):
    first = executed(name, tmp_path_factory)
    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    rc = figcmd.figures_command(argparse.Namespace(lectures=[name[:2]], parameters={"FAST": True}))
    out = capsys.readouterr().out
    assert rc == 0 and f"[1/1] {name}" in out
    again = sorted(tmp_path.glob("fig_*.png"))
    assert [p.stem for p in again] == sorted(first.figures)
    for p in again:
        assert p.read_bytes() == first.figures[p.stem].read_bytes(), f"{p.name} differs between two runs"
    # the executed notebooks of the two runs, normalised as for lectures/executed/, are identical too
    import nbformat
    builder = _builder()
    second = Path(tempfile.gettempdir()) / f"course-figures-{name}.ipynb"     # where `course figures` keeps it
    a, b = (builder.render(builder.normalise_executed(nbformat.read(str(path), as_version=4)))
            for path in (first.executed, second))
    assert a == b, f"{name}: two runs give different executed notebooks"


# ------------------------------------------------------------------------------------------------------------
# what the demonstrations show (numbers printed by the FAST run, read back from its executed notebook)
# ------------------------------------------------------------------------------------------------------------
def outputs_text(nb):
    """Every stdout line and Markdown/plain-text result of an executed notebook, joined."""
    parts = []
    for c in code_cells(nb):
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stdout":
                parts.append("".join(o["text"]))
            for kind in ("text/markdown", "text/plain"):
                if kind in o.get("data", {}):
                    parts.append("".join(o["data"][kind]))
    return "\n".join(parts)


def floats(text):
    return [float(v) for v in re.findall(r"-?\d+\.\d+|-?\d+", text)]


def test_factor_analysis_em_moves_monotonically_and_recovers_unequal_noise(tmp_path_factory):
    text = outputs_text(load(executed("03_pca_factor_analysis", tmp_path_factory).executed))
    line = re.search(r"completion by expectation: (\d+) iterations, log P\(X\) from (\S+) to (\S+); "
                     r"non-decreasing: (\w+)", text)
    assert line and int(line[1]) >= 20 and line[4] == "True"
    assert float(line[3]) - float(line[2]) > 100, "EM must start away from its answer and climb"
    first = floats(re.search(r"first 10 log-likelihood values of EM: \[(.*?)\]", text)[1])
    assert len(first) == 10 and all(b >= a for a, b in zip(first, first[1:])) and first[-1] - first[0] > 100
    rows = re.findall(r"^\| (\d) \| (\S+) \| (\S+) \| (\S+) \|$", text, flags=re.M)
    true_d, fa_d, ppca = (np.array([float(r[i]) for r in rows]) for i in (1, 2, 3))
    assert len(rows) == 5 and true_d.max() / true_d.min() >= 5           # clearly unequal noise variances
    assert np.all(np.abs(fa_d / true_d - 1) < 0.2), (fa_d, true_d)       # recovered D within 20 %
    assert np.ptp(ppca) == 0 and np.abs(ppca / true_d - 1).max() > 1    # PPCA: one sigma^2, far from D
    wander = re.search(r"rises in (\d+) steps and falls in (\d+)", text)
    assert int(wander[1]) >= 10 and int(wander[2]) >= 10                 # sampling wanders


def test_gmm_singularity_and_choice_of_k(tmp_path_factory):
    text = outputs_text(load(executed("02_expectation_maximization", tmp_path_factory).executed))
    growth = re.search(r"log P\(O\) at s = 1e-4: (\S+), at s = 1e-8: (\S+); it grows by (\S+) nats", text)
    assert float(growth[2]) - float(growth[1]) > 15                       # climbs without bound as s -> 0
    assert abs(float(growth[3]) - 2 * np.log(10)) < 0.05                  # d log 10 per decade, d = 2
    assert re.search(r"BIC:.* -> K = [23]\b", text) and re.search(r"held-out log-likelihood:.* -> K = \d", text)
    train = floats(re.search(r"training log-likelihood: (.*)", text)[1])[1::2]
    assert train[-1] > train[1]                                           # the training curve keeps rising
    means = re.search(r"true mean \[(.*?)\]\s+EM mean \[(.*?)\]\s+complete rows only \[(.*?)\]", text)
    true_m, em_m, drop_m = (np.array(floats(means[i])) for i in (1, 2, 3))
    # dropping incomplete rows visibly biases the mean; EM, using every row, is much closer
    assert np.abs(drop_m - true_m).max() > 0.25 and np.abs(em_m - true_m).max() < 0.5 * np.abs(drop_m - true_m).max()


def test_classifier_posteriors_and_rendered_table(tmp_path_factory):
    text = outputs_text(load(executed("01_generative_models_mle", tmp_path_factory).executed))
    assert "| parameter | true $p(\\cdot)$ | GDA estimate $q(\\cdot)$ | naive Bayes |" in text
    agree = dict(re.findall(r"(GDA, covariance per class|GDA, shared covariance|naive Bayes) (\d\.\d+)", text))
    assert set(agree) == {"GDA, covariance per class", "GDA, shared covariance", "naive Bayes"}
    assert float(agree["GDA, covariance per class"]) > 0.95 and float(agree["naive Bayes"]) < 1


def test_prior_sampling_has_far_more_variance_than_importance_sampling(tmp_path_factory):
    text = outputs_text(load(executed("04_variational_autoencoders", tmp_path_factory).executed))
    m = re.search(r"exact log P\(x\) (\S+); prior sampling: mean (\S+), s.d. (\S+); "
                  r"importance sampling: mean (\S+), s.d. (\S+)", text)
    exact, prior_sd, is_mean, is_sd = float(m[1]), float(m[3]), float(m[4]), float(m[5])
    assert prior_sd > 10 * is_sd and abs(is_mean - exact) < 3 * is_sd


# ------------------------------------------------------------------------------------------------------------
# the executed copies a student reads (lectures/executed/)
# ------------------------------------------------------------------------------------------------------------
def _builder():
    spec = importlib.util.spec_from_file_location("_build_notebooks", LECTURES / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", NAMES)
def test_executed_copy_matches_its_source_and_shows_the_committed_figures(name):
    source, done = load(LECTURES / f"{name}.ipynb"), load(LECTURES / "executed" / f"{name}.ipynb")
    assert [c["source"] for c in source["cells"]] == [c["source"] for c in done["cells"]], \
        "lectures/executed is stale: run python lectures/build_notebooks.py --executed"
    cells = code_cells(done)
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1))
    for c in cells:
        outs = c.get("outputs", [])
        assert not any(o.get("output_type") == "error" or o.get("name") == "stderr" for o in outs)
        ids = re.findall(r"""\bsavefig\(\s*["'](fig_[a-z0-9_]+)["']""", "".join(c["source"]))
        pngs = [base64.b64decode(o["data"]["image/png"]) for o in outs if "image/png" in o.get("data", {})]
        assert len(pngs) == len(ids), f"{name}: a figure is not shown in the executed copy"
        for fig_id, png in zip(ids, pngs):
            assert png == (LECTURES / "figures" / f"{fig_id}.png").read_bytes(), \
                f"{fig_id}: the executed copy shows another image than lectures/figures"
    text = json.dumps(done)
    assert str(ROOT) not in text and "/tmp/" not in text                 # nothing of one machine
    assert "answer key: course_lib.polls.answer" in text or name == "04_variational_autoencoders"


# ------------------------------------------------------------------------------------------------------------
# the committed figures and executed copies are what any machine regenerates
# ------------------------------------------------------------------------------------------------------------
def copy_of_working_tree(dest: Path) -> Path:
    """The course's files as they are in the working tree (what git tracks or would track), copied to ``dest``."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot tell the course's files from build outputs")
    for rel in sorted({r for r in listed.decode().split("\0") if r}):
        src = ROOT / rel
        if src.is_file() and not src.is_symlink():        # a file deleted in the working tree is not copied
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / rel)
    return dest


@pytest.mark.slow
def test_a_clean_copy_regenerates_the_committed_lectures_byte_for_byte(tmp_path):
    """Build the notebooks from nb_src and run `course figures` (full settings) in a fresh copy of the course;
    every notebook, figure and executed copy must come out with the committed bytes."""
    copy = copy_of_working_tree(tmp_path / "course")
    generated = [*copy.glob("lectures/[0-9][0-9]_*.ipynb"), *copy.glob("lectures/figures/fig_*.png"),
                 *copy.glob("lectures/executed/*.ipynb")]
    for path in generated:                                # regenerated below, from nothing
        path.unlink()
    (tmp_path / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_")}
    env.update(PYTHONPATH=str(copy), COURSE_ROOT=str(copy), TMPDIR=str(tmp_path / "tmp"))

    def run(*args, timeout=120):
        out = subprocess.run([sys.executable, *args], cwd=copy, env=env, capture_output=True, text=True,
                             timeout=timeout)
        assert out.returncode == 0, f"{' '.join(args)} failed: {out.stderr.strip()[-2000:]}"
        return out.stdout

    where = run("-c", "import autograder, course_lib; print(autograder.__file__); print(course_lib.__file__)")
    assert all(Path(p).is_relative_to(copy) for p in where.split()), f"the copy imports another checkout: {where}"
    run("lectures/build_notebooks.py")
    run("-m", "autograder.cli", "figures", timeout=1200)

    rel = sorted(p.relative_to(copy) for p in generated)
    again = sorted(p.relative_to(copy) for pattern in ("lectures/[0-9][0-9]_*.ipynb", "lectures/figures/fig_*.png",
                                                       "lectures/executed/*.ipynb") for p in copy.glob(pattern))
    assert again == rel, f"files written differ from the committed ones: {sorted(set(again) ^ set(rel))}"
    differ = [str(r) for r in rel if (copy / r).read_bytes() != (ROOT / r).read_bytes()]
    assert not differ, f"regenerated on a clean copy, these differ from the committed files: {differ}"
