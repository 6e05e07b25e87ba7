"""The figure registry, savefig and the `course figures` command (without executing whole lectures)."""
import argparse
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from autograder import figures as figcmd  # noqa: E402
from course_lib import plotting  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ROOT / "lectures"
SAVEFIG = re.compile(r"""\bsavefig\(\s*["'](fig_[a-z0-9_]+)["']""")


def figures_in_source():
    """{lecture: [fig ids passed to savefig in its code cells]}"""
    out = {}
    for nb_path in figcmd.lecture_notebooks(LECTURES):
        nb = json.loads(nb_path.read_text())
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        out[nb_path.stem] = SAVEFIG.findall(code)
    return out


def test_registry_is_valid_and_names_only_existing_lectures():
    registry = plotting.load_registry()
    lectures = {p.stem for p in figcmd.lecture_notebooks(LECTURES)}
    assert len(lectures) == 4
    assert registry and {e["lecture"] for e in registry.values()} == lectures
    for fig_id in registry:
        assert plotting.FIG_ID_PATTERN.match(fig_id)


def test_every_figure_has_exactly_one_source_and_is_registered():
    found = figures_in_source()
    all_ids = [f for ids in found.values() for f in ids]
    dupes = sorted({f for f in all_ids if all_ids.count(f) > 1})
    assert not dupes, f"figures saved more than once: {dupes}"
    written = {lec: set(ids) for lec, ids in found.items()}
    assert plotting.check_registry(written) == []
    for lec, ids in found.items():      # a lecture only writes its own figures
        assert all(f.startswith(f"fig_{lec[:2]}_") for f in ids), lec


def test_check_registry_reports_unregistered_and_unwritten_figures():
    registry = {"fig_01_a": {"lecture": "01_x", "caption": "a"}, "fig_01_b": {"lecture": "01_x", "caption": "b"},
                "fig_02_c": {"lecture": "02_y", "caption": "c"}}
    assert plotting.check_registry({"01_x": {"fig_01_a", "fig_01_b"}}, registry) == []
    problems = plotting.check_registry({"01_x": {"fig_01_a", "fig_01_z"}}, registry)
    assert any("fig_01_z" in p and "not in the figure registry" in p for p in problems)
    assert any("fig_01_b" in p and "no notebook writes it" in p for p in problems)
    assert not any("fig_02_c" in p for p in problems)      # lecture 02 was not run
    both = plotting.check_registry({"01_x": {"fig_01_a", "fig_01_b"}, "02_y": {"fig_02_c", "fig_01_a"}}, registry)
    assert any("written by both" in p for p in both)


def test_registry_rejects_mismatched_lecture(tmp_path):
    bad = tmp_path / "registry.json"
    bad.write_text(json.dumps({"figures": {"fig_02_x": {"lecture": "01_generative_models_mle", "caption": "x"}}}))
    with pytest.raises(ValueError, match="must belong to lecture 02"):
        plotting.load_registry(bad)


def _figure():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [1, 0, 2], label="line")
    ax.set(xlabel="x", ylabel="y", title="a title")
    ax.legend()
    return fig


def test_savefig_is_byte_identical_and_checks_ids(tmp_path):
    plotting.use_style()
    fig = _figure()
    a = plotting.savefig("fig_09_test", fig, directory=tmp_path / "a")
    fig2 = _figure()
    b = plotting.savefig("fig_09_test", fig2, directory=tmp_path / "b")
    plt.close("all")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "a").glob("*.tmp"))
    with pytest.raises(ValueError, match="fig_<lecture>_<name>"):
        plotting.savefig("gmm iterations", fig, directory=tmp_path)


def test_savefig_follows_course_figures_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    fig = _figure()
    assert plotting.savefig("fig_09_env", fig) == tmp_path / "fig_09_env.png"
    plt.close(fig)
    assert (tmp_path / "fig_09_env.png").exists()


@pytest.mark.parametrize("name, stem", [("02", "02_expectation_maximization"), ("2", "02_expectation_maximization"),
                                        ("03_pca_factor_analysis", "03_pca_factor_analysis"),
                                        ("lectures/04_variational_autoencoders.ipynb", "04_variational_autoencoders")])
def test_resolve_lectures(name, stem):
    assert [p.stem for p in figcmd.resolve_lectures([name])] == [stem]


def test_resolve_all_and_unknown():
    assert len(figcmd.resolve_lectures([])) == 4
    with pytest.raises(ValueError, match="choose from"):
        figcmd.resolve_lectures(["07"])


def test_figures_command_unknown_lecture_is_one_line_error(capsys):
    rc = figcmd.figures_command(argparse.Namespace(lectures=["nope"]))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("course figures:") and "\n" not in err


def test_cli_wires_figures_command():
    from autograder.cli import build_parser
    args = build_parser().parse_args(["figures", "01", "03"])
    assert args.lectures == ["01", "03"] and callable(args.func)


def test_failing_notebook_gives_one_line_error(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook
    nb = new_notebook(cells=[new_code_cell("FAST = False"), new_code_cell("raise ValueError('broken on purpose')")])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "09_broken.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(RuntimeError) as err:
        figcmd.run_lecture(path, tmp_path / "figs", {"FAST": True})
    msg = str(err.value)
    assert "09_broken failed in cell" in msg and "ValueError: broken on purpose" in msg and "\n" not in msg
