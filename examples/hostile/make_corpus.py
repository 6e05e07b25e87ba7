"""Generate the corpus of hostile and broken submissions (examples/hostile/*.ipynb + MANIFEST.json).

Each notebook is the base assignment notebook (by default the fixture assignment's) with one kind of
misbehaviour: in a graded function's cell (slots F0, F1, F2 = the first three graded functions, found by
their nbgrader ``grade_id``) or in an extra top-level cell. MANIFEST.json says, per notebook, what the
*execution* must conclude: the notebook-level status and each slot's status (plus words its message must
contain). Scores are the judge's business and are not listed here.

Switching the corpus to another assignment: ``python make_corpus.py --base assignments/hw2_em/hw2_em.ipynb
--functions e_step m_step log_likelihood --out DIR``; the slot bodies below only use NumPy and the
function's own first argument, so they stay plausible for any array-in, array-out function.

Destructive notebooks (``delete_files``) only act when they run as one of the grader's private users
(uid 61000-61499): an unprivileged grader cannot protect the file system, and the corpus must never
damage the machine of someone who runs it that way.

``read_hidden`` derives every place it probes at run time (``read_hidden_probe.py``: the folders of the
command lines and working directories in sight, the temporary folders, the home folder), so it finds
another checkout of the course on the same host as readily as the one being tested.

Run: ``python examples/hostile/make_corpus.py`` (writes next to this file).
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from read_hidden_probe import _hidden_within_reach  # noqa: E402
REPO = HERE.parents[1]
DEFAULT_BASE = REPO / "tests" / "fixtures" / "fixture_hw" / "fixture_hw.ipynb"
DEFAULT_FUNCTIONS = ("sample_mean", "mle_covariance", "log_sum_exp")


def _braces(source: str) -> str:
    """``source`` made safe for ``str.format`` (the slot bodies are format templates)."""
    return source.replace("{", "{{").replace("}", "}}")


# ------------------------------------------------------------------------------------------ the variants
# Each: description, {slot: new cell source (with {name}, {arg})}, extra top-level cells (after the graded
# cells), expected {"notebook": status, "slots": {slot: status}, "contains": {slot: text}}.
_SEGFAULT = "import ctypes\n    ctypes.string_at(0)  # reads address 0: SIGSEGV"
# read_hidden: the probe (read_hidden_probe.py, every place derived at run time), then the graded function
_READ_HIDDEN = (_braces(inspect.getsource(_hidden_within_reach)) + "\n\n"
                "def {name}({arg}):\n"
                "    found = _hidden_within_reach()\n"
                "    if found:\n"
                "        raise RuntimeError('READ SECRET: ' + repr(found[:3]))\n"
                "    return {arg}.mean(axis=0)\n")
VARIANTS = {
    "syntax_error": (
        "a graded cell that does not parse",
        {"F1": "def {name}({arg}):\n    D = {arg} - {arg}.mean(axis=0\n    return D.T @ D / {arg}.shape[0]\n"},
        [], {"notebook": "error", "slots": {"F1": "missing"}}),
    "missing_function": (
        "a graded function under another name",
        {"F2": "def my_{name}({arg}):\n    return None\n"},
        [], {"notebook": "error", "slots": {"F2": "missing"}}),
    "wrong_shape": (
        "returns an array of the wrong shape",
        {"F0": "def {name}({arg}):\n    return np.asarray({arg}).mean()  # one number instead of one per column\n"},
        [], {"notebook": "ok", "slots": {"F0": "ok"}}),
    "nan_output": (
        "returns NaN",
        {"F2": "def {name}({arg}):\n    return float('nan')\n"},
        [], {"notebook": "ok", "slots": {"F2": "ok"}}),
    "infinite_loop": (
        "a graded function that never returns",
        {"F1": "def {name}({arg}):\n    while True:\n        pass\n"},
        [], {"notebook": "timeout", "slots": {"F1": "timeout"}, "contains": {"F1": "budget"}}),
    "sleep": (
        "a graded function that sleeps far too long",
        {"F0": "def {name}({arg}):\n    import time\n    time.sleep(100_000)\n    return {arg}.mean(axis=0)\n"},
        [], {"notebook": "timeout", "slots": {"F0": "timeout"}}),
    "memory_bomb": (
        "a graded function allocating without bound",
        {"F1": "def {name}({arg}):\n    blocks = []\n    while True:\n        blocks.append(np.zeros(10**8))\n"},
        [], {"notebook": "error", "slots": {"F1": "error"}, "contains": {"F1": "memory"}}),
    "fork_bomb": (
        "a graded function forking without bound",
        {"F0": "def {name}({arg}):\n    import os\n    while True:\n        try:\n            os.fork()\n"
               "        except OSError:\n            pass\n"},
        [], {"notebook": "timeout", "slots": {"F0": "timeout"}}),
    "sys_exit": (
        "a graded function calling sys.exit",
        {"F2": "def {name}({arg}):\n    import sys\n    sys.exit(0)\n"},
        [], {"notebook": "error", "slots": {"F2": "error"}, "contains": {"F2": "sys.exit"}}),
    "os_exit": (
        "a graded function calling os._exit",
        {"F1": "def {name}({arg}):\n    import os\n    os._exit(0)\n"},
        [], {"notebook": "crashed", "slots": {"F1": "error"}, "contains": {"F1": "os._exit"}}),
    "segfault": (
        "a graded function crashing the interpreter (ctypes reads address 0)",
        {"F0": "def {name}({arg}):\n    " + _SEGFAULT + "\n    return {arg}.mean(axis=0)\n"},
        [], {"notebook": "crashed", "slots": {"F0": "error"}, "contains": {"F0": "segmentation fault"}}),
    "toplevel_segfault": (
        "a top-level cell that crashes the kernel after the definitions",
        {}, ["import ctypes\nctypes.string_at(0)\n"],
        {"notebook": "crashed", "slots": {}}),
    "toplevel_hang": (
        "a top-level cell that ignores interrupts and spins forever",
        {}, ["import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"],
        {"notebook": "timeout", "slots": {}}),
    "toplevel_sys_exit": (
        "a top-level cell calling sys.exit",
        {}, ["import sys\nsys.exit('done')\n"],
        {"notebook": "error", "slots": {}}),
    "monkeypatch": (
        "patches NumPy's and torch's comparison functions, returns zeros",
        {"F0": "def {name}({arg}):\n    return np.zeros({arg}.shape[1])\n",
         "F1": "def {name}({arg}):\n    return np.zeros(({arg}.shape[1], {arg}.shape[1]))\n",
         "F2": "def {name}({arg}):\n    return 0.0\n"},
        ["np.allclose = lambda *a, **k: True\nnp.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), bool)\n"
         "np.array_equal = lambda *a, **k: True\nnp.testing.assert_allclose = lambda *a, **k: None\n"
         "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.testing.assert_close = lambda *a, **k: None\n"],
        {"notebook": "ok", "slots": {"F0": "ok", "F1": "ok", "F2": "ok"}}),
    "fake_results": (
        "writes a perfect results.json and grades.csv wherever a grader might look",
        {}, ["import glob, json, os\n"
             "fake = {'score': 100.0, 'tests': [], 'output': 'all tests passed'}\n"
             "targets = ['results.json', '../results.json', '../../results.json', '/autograder/results/results.json',\n"
             "           '/tmp/results.json', 'grading_output/results.json', '../grades.csv']\n"
             "for cwd in glob.glob('/proc/*/cwd'):  # every working folder it can see, the grader's among them\n"
             "    try:\n"
             "        where = os.readlink(cwd)\n"
             "    except OSError:\n"
             "        continue\n"
             "    targets += [f'{where}/grading_output/results.json', f'{where}/grading_output/grades.csv']\n"
             "for t in targets:\n"
             "    try:\n"
             "        os.makedirs(os.path.dirname(t) or '.', exist_ok=True)\n"
             "        with open(t, 'w') as fh:\n"
             "            json.dump(fake, fh)\n"
             "    except OSError:\n"
             "        pass\n"],
        {"notebook": "ok", "slots": {"F0": "ok", "F1": "ok", "F2": "ok"}}),
    "read_hidden": (
        "tries to read the hidden tests, the grading salt and the reference; fails loudly if it can",
        {"F0": _READ_HIDDEN},
        [], {"notebook": "ok", "slots": {"F0": "ok"}}),
    "fake_score": (
        "prints a fake perfect score in several formats",
        {}, ["print('Total score: 100/100')\nprint('{\"score\": 100.0, \"max_score\": 100.0}')\n"
             "import sys\nprint('score=100', file=sys.stderr)\n"],
        {"notebook": "ok", "slots": {"F0": "ok", "F1": "ok", "F2": "ok"}}),
    "delete_files": (
        "deletes everything it can reach: its parent folder, /tmp, the repository",
        {}, ["import glob, os, shutil\n"
             "if os.getuid() in range(61000, 61500):  # corpus safety: only inside the grader's private user\n"
             "    seen = []\n"
             "    for cwd in glob.glob('/proc/*/cwd'):  # every working folder it can see, the grader's among them\n"
             "        try:\n"
             "            seen.append(os.readlink(cwd))\n"
             "        except OSError:\n"
             "            pass\n"
             "    for target in ['..', '/tmp', '/autograder', os.path.expanduser('~'), *seen]:\n"
             "        shutil.rmtree(target, ignore_errors=True)\n"
             "    for path in glob.glob('/tmp/*') + glob.glob('/tmp/*/*'):\n"
             "        try:\n"
             "            os.remove(path)\n"
             "        except OSError:\n"
             "            pass\n"
             "        try:\n"
             "            open(path, 'w').write('overwritten')\n"
             "        except OSError:\n"
             "            pass\n"],
        {"notebook": "ok", "slots": {"F0": "ok", "F1": "ok", "F2": "ok"}}),
    "output_flood": (
        "prints about 60 MB to stdout and stderr",
        {}, ["import sys\nline = 'x' * 100_000\nfor _ in range(300):\n    print(line)\n    print(line, file=sys.stderr)\n"],
        {"notebook": "ok", "slots": {"F0": "ok", "F1": "ok", "F2": "ok"}}),
    "calls_reference": (
        "calls course_lib's reference and scikit-learn",
        {"F0": "def {name}({arg}):\n    from sklearn.preprocessing import StandardScaler\n"
               "    return StandardScaler().fit({arg}).mean_\n",
         "F1": "def {name}({arg}):\n    from course_lib.mle import gaussian\n    return gaussian({arg})[1]\n"},
        [], {"notebook": "error", "slots": {"F0": "error", "F1": "error"},
             "contains": {"F0": "sklearn", "F1": "course_lib"}}),
    "lone_surrogate": (
        "raises an error whose message holds a lone surrogate (UTF-8 cannot encode it)",
        {"F2": "def {name}({arg}):\n    raise ValueError('\\ud800 <b>not encodable</b>')\n"},
        [], {"notebook": "ok", "slots": {"F2": "error"}, "contains": {"F2": "not encodable"}}),
    "output_inflation": (
        "returns 24 MB of zeros from every case, written compressed (a thousandfold smaller)",
        {"F0": "def {name}({arg}):\n    return np.zeros(3_000_000)\n",
         "F1": "def {name}({arg}):\n    return np.zeros(3_000_000)\n",
         "F2": "def {name}({arg}):\n    return np.zeros(3_000_000)\n"},
        ["np.savez = np.savez_compressed  # the harvest writes each output with np.savez\n"],
        {"notebook": "ok", "slots": {"F0": "error", "F1": "error", "F2": "error"},
         "contains": {"F0": "outputs together", "F1": "outputs together", "F2": "outputs together"}}),
    "pickle_payload": (
        "returns an object array, and a background thread replaces harvested outputs with a pickle and a link",
        {"F1": "def {name}({arg}):\n    return np.array([{{'covariance': 1}}], dtype=object)\n"},
        ["import os, pickle, threading, time\n"
         "class Payload:\n"
         "    def __reduce__(self):\n"
         "        return (os.system, ('touch /tmp/course-unpickled-marker',))\n"
         "def tamper():\n"
         "    names = %(names)r\n"
         "    while True:\n"
         "        try:\n"
         "            os.makedirs('outputs', exist_ok=True)\n"
         "            with open(f'outputs/{names[0]}.0.value.x', 'wb') as fh:\n"
         "                pickle.dump(Payload(), fh)\n"
         "            os.replace(f'outputs/{names[0]}.0.value.x', f'outputs/{names[0]}.0.value')\n"
         "            if not os.path.islink(f'outputs/{names[2]}.0.value'):\n"
         "                try:\n"
         "                    os.remove(f'outputs/{names[2]}.0.value')\n"
         "                except OSError:\n"
         "                    pass\n"
         "                os.symlink('/etc/shadow', f'outputs/{names[2]}.0.value')\n"
         "        except OSError:\n"
         "            pass\n"
         "        time.sleep(0.001)\n"
         "threading.Thread(target=tamper, daemon=True).start()\n"],
        {"notebook": "ok", "slots": {"F0": "error", "F1": "error", "F2": "error"},
         "contains": {"F0": "rejected", "F1": "object", "F2": "rejected"}}),
}


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def make_variant(base_nb, functions, name):
    """The notebook of one variant (a new NotebookNode)."""
    desc, slot_sources, extra, _ = VARIANTS[name]
    nb = nbformat.from_dict(json.loads(json.dumps(base_nb)))
    slots = {f"F{i}": f for i, f in enumerate(functions)}
    last_graded = 0
    for i, cell in enumerate(nb.cells):
        gid = _grade_id(cell)
        if cell.cell_type == "code" and gid in functions:
            last_graded = i
            slot = f"F{functions.index(gid)}"
            if slot in slot_sources:
                arg = _first_arg(cell.source) or "X"
                cell.source = slot_sources[slot].format(name=gid, arg=arg)
    names = {"names": list(functions)}
    new = [nbformat.v4.new_code_cell(src % names if "%(names)" in src else src) for src in extra]
    nb.cells[last_graded + 1:last_graded + 1] = new
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"<!-- hostile corpus: {name}: {desc} -->"))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def _first_arg(source: str) -> str | None:
    import ast
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.args.args:
            return node.args.args[0].arg
    return None


def manifest(functions) -> dict:
    out = {}
    for name, (desc, _, _, expect) in VARIANTS.items():
        slots = {f"F{i}": f for i, f in enumerate(functions)}
        fn_status = {f: "ok" for f in functions}
        fn_status.update({slots[s]: st for s, st in expect["slots"].items()})
        out[name] = {"description": desc, "notebook": expect["notebook"], "functions": fn_status,
                     "contains": {slots[s]: t for s, t in expect.get("contains", {}).items()}}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", default=str(DEFAULT_BASE))
    p.add_argument("--functions", nargs=3, default=list(DEFAULT_FUNCTIONS), metavar="NAME")
    p.add_argument("--out", default=str(HERE))
    args = p.parse_args(argv)
    base = nbformat.read(args.base, as_version=4)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in VARIANTS:
        nbformat.write(make_variant(base, list(args.functions), name), str(out / f"{name}.ipynb"))
    (out / "MANIFEST.json").write_text(json.dumps(
        {"base": str(Path(args.base).resolve().relative_to(REPO)) if Path(args.base).resolve().is_relative_to(REPO)
         else args.base, "functions": list(args.functions), "variants": manifest(list(args.functions))},
        indent=1) + "\n")
    print(f"wrote {len(VARIANTS)} notebooks to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
