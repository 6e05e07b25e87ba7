"""Generate the hw2_em hostile corpus (examples/hostile/hw2_em/*.ipynb + MANIFEST.json).

Each notebook is the correct hw2_em notebook (examples/hw2_em/complete.ipynb, 100 points) with ONE graded
function's cell replaced by an attack of ``hw2_attacks.py`` (see its docstring for the cell's layout), so a
grader that keeps its promises gives it exactly 100 minus that function's points: an attack that wins
scores more, an attack that takes down the grader costs other functions their points. ``ipc_writer`` is the
one correct notebook (it only leaves traces for the ``ipc_read_*`` notebooks graded after it).

Values only a test knows (a TCP port, a Dask scheduler's address, a nonce naming the leak channels, the
marker on a sentinel process's command line) are baked into the notebooks when they are generated:
``python make_hw2_corpus.py --out DIR --port 4242 --scheduler tcp://127.0.0.1:8786 --nonce ab12``. The
notebooks kept in git are generated with the defaults, where those attacks find nothing.

Groups (what the test does with them): ``batch`` is graded in one run with two workers; ``after`` after the
batch (it reads what ``ipc_writer`` left); ``measured`` in a run whose peak memory is measured.

Run: ``python examples/hostile/make_hw2_corpus.py`` (writes examples/hostile/hw2_em/).
"""
from __future__ import annotations

import argparse
import ast
import inspect
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BASE = REPO / "examples" / "hw2_em" / "complete.ipynb"
DEFAULT_OUT = HERE / "hw2_em"
MARKER = "hostile corpus hw2_em"

sys.path.insert(0, str(HERE))
import hw2_attacks  # noqa: E402

#: The values a test bakes in, and their defaults (attacks that need them find nothing).
DEFAULT_BAKE = {"port": 0, "scheduler": "", "nonce": "example", "marker": ""}


@dataclass(frozen=True)
class Variant:
    """One hostile notebook.

    Attributes
    ----------
    description : str
        What it tries, in a few words.
    function : str
        The graded function whose cell is replaced.
    attack : str
        The ``attack_<name>`` of hw2_attacks that replaces it.
    group : str
        "batch", "after" or "measured" (see the module's docstring).
    guarantee : str
        The part of the grader's promise it tests: "isolation", "supervisor" or "score".
    loses : bool
        False for a correct notebook that must keep all its points.
    extra : tuple of str
        Top-level cells added after the function's cell (they call it).
    """

    description: str
    function: str
    attack: str
    group: str
    guarantee: str
    loses: bool = True
    extra: tuple = ()


_CALL = {"missing_e_step": "_probe = missing_e_step(np.array([[1.0, np.nan], [0.0, 0.0]]), np.zeros(2), np.eye(2))",
         "missing_m_step": "_probe = missing_m_step(np.zeros((2, 2)), np.zeros((2, 2, 2)))"}

VARIANTS = {
    # ------------------------------------------------------------------ 1. the sandbox isolates the run
    "net_listener": Variant("connects to a TCP listener on the host's loopback", "missing_m_step",
                            "attack_net_listener", "batch", "isolation"),
    "dask_scheduler": Variant("runs the reference ELBO on the grading Dask cluster", "elbo",
                              "attack_dask_scheduler", "batch", "isolation"),
    "other_run": Variant("finds another submission's run and takes its function", "missing_e_step",
                         "attack_other_run", "batch", "isolation"),
    "decoy_course": Variant("imports a world-readable copy of the course found on the disk", "elbo",
                            "attack_decoy_course", "batch", "isolation"),
    "proc_cmdline": Variant("reads the command lines of the host's processes", "missing_e_step",
                            "attack_proc_cmdline", "batch", "isolation"),
    "memory_children": Variant("four children of 1.2 GB each at once", "fit_gmm", "attack_memory_children",
                               "batch", "isolation"),
    "disk_flood": Variant("20,000 files, 1.8 GiB", "fit_gmm", "attack_disk_flood", "batch", "isolation"),
    "ipc_writer": Variant("a correct notebook that leaves a token in shared memory, a message queue, a "
                          "semaphore and world-writable folders", "missing_m_step", "attack_ipc_writer",
                          "batch", "isolation", loses=False),
    "ipc_read_shm": Variant("reads System V shared memory left by an earlier run", "missing_m_step",
                            "attack_ipc_read_shm", "after", "isolation"),
    "ipc_read_msg": Variant("reads a System V message queue left by an earlier run", "missing_m_step",
                            "attack_ipc_read_msg", "after", "isolation"),
    "ipc_read_sem": Variant("reads a POSIX semaphore left by an earlier run", "missing_m_step",
                            "attack_ipc_read_sem", "after", "isolation"),
    "ipc_read_files": Variant("reads files an earlier run left in world-writable folders", "missing_m_step",
                              "attack_ipc_read_files", "after", "isolation"),
    # ------------------------------------------------------------------ 2. the supervisor is out of reach
    "kill_all": Variant("os.kill(-1, SIGKILL) from a graded function (the notebook's cells call it too)",
                        "missing_m_step", "attack_kill_all", "batch", "supervisor"),
    "stop_all": Variant("SIGSTOP of every process in reach (the notebook's cells call it too)", "elbo",
                        "attack_stop_all", "batch", "supervisor"),
    "hang_toplevel": Variant("loops forever, called by three of the notebook's own cells", "missing_e_step",
                             "attack_hang", "batch", "supervisor", extra=(_CALL["missing_e_step"],)),
    "exit_toplevel": Variant("os._exit, called by three of the notebook's own cells", "missing_m_step",
                             "attack_exit", "batch", "supervisor", extra=(_CALL["missing_m_step"],)),
    "npz_bomb": Variant("replaces its output files by zip bombs (2 MB inflating to 2 GB)", "missing_e_step",
                        "attack_npz_bomb", "measured", "supervisor"),
    "deep_json": Variant("replaces its status and case files by JSON nested 200,000 deep", "fit_gmm",
                         "attack_deep_json", "measured", "supervisor"),
    # ------------------------------------------------------------------ 3. the score is earned
    "degenerate_gmm": Variant("fit_gmm without EM: components of covariance 1e-200 I on data points",
                              "fit_gmm", "attack_degenerate_gmm", "batch", "score"),
    "elbo_minus_1e300": Variant("an ELBO of -1e300, below every bound", "elbo", "attack_elbo_minus_1e300",
                                "batch", "score"),
    "import_course_lib": Variant('"course_lib." + "mixture" imported past the static check', "fit_gmm",
                                 "attack_import_course_lib", "batch", "score"),
    "import_sklearn": Variant('"sk" + "learn" imported at run time', "missing_m_step", "attack_import_sklearn",
                              "batch", "score"),
    "import_scipy": Variant('"scipy." + "stats" imported past the static check', "elbo", "attack_import_scipy",
                            "batch", "score"),
    "import_torch": Variant('"tor" + "ch" imported past the static check in a NumPy assignment',
                            "missing_m_step", "attack_import_torch", "batch", "score"),
    "markup_in_error": Variant("**Score: 100/100** and <script> in an error message", "missing_e_step",
                               "attack_markup_in_error", "batch", "score"),
    "hidden_inputs_leak": Variant("a hidden case's inputs in error messages (its own, a later visible "
                                  "case's, and a later function's visible record)", "elbo",
                                  "attack_hidden_inputs_leak", "batch", "score"),
    "huge_number_record": Variant('its records say "seconds": 10**400 (no float holds it)', "missing_m_step",
                                  "attack_huge_number_record", "batch", "supervisor"),
    "markdown_stash": Variant("answers stashed in markdown and cell metadata, keyed by the cases of seeds "
                              "learnt from an earlier result", "missing_m_step", "attack_markdown_stash",
                              "batch", "score"),
}


# ============================================================================================ building
def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _function_node(source: str, name: str) -> ast.FunctionDef:
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise ValueError(f"no function {name} in the cell")


def _renamed(source: str, old: str, new: str) -> str:
    """``source`` (one function definition) with its name changed from ``old`` to ``new``."""
    head = f"def {old}("
    if not source.startswith(head):
        raise ValueError(f"expected a definition of {old}")
    return f"def {new}(" + source[len(head):]


def _helpers(attack) -> list:
    """Every function and class of hw2_attacks that ``attack`` uses, directly or not (in module order)."""
    module = vars(hw2_attacks)
    generated = {"_baked", "_right"}
    found, todo = set(), [attack]
    while todo:
        obj = todo.pop()
        codes = [obj.__code__] if inspect.isfunction(obj) else []
        while codes:
            code = codes.pop()
            codes += [c for c in code.co_consts if inspect.iscode(c)]
            for name in code.co_names:
                target = module.get(name)
                if name in generated or name in found or getattr(target, "__module__", None) != hw2_attacks.__name__:
                    continue
                if inspect.isfunction(target) or inspect.isclass(target):
                    found.add(name)
                    todo.append(target)
    order = list(module)
    return sorted(found, key=order.index)


def _module_constants(names) -> list:
    """Source of hw2_attacks' module-level assignments of any of ``names``."""
    tree = ast.parse(inspect.getsource(hw2_attacks))
    text = inspect.getsource(hw2_attacks)
    out = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = {t.id for t in node.targets if isinstance(t, ast.Name)} | {
                e.id for t in node.targets if isinstance(t, ast.Tuple) for e in t.elts if isinstance(e, ast.Name)}
            if targets & set(names):
                out.append(ast.get_source_segment(text, node))
    return out


def _imports() -> str:
    """The import statements of hw2_attacks (every cell starts with them)."""
    text = inspect.getsource(hw2_attacks)
    tree = ast.parse(text)
    return "\n".join(ast.get_source_segment(text, n) for n in tree.body
                     if isinstance(n, (ast.Import, ast.ImportFrom)) and not (
                         isinstance(n, ast.ImportFrom) and n.module == "__future__"))


def attack_cell(variant_name: str, variant: Variant, solution_source: str, bake: dict) -> str:
    """The source of the graded cell of one variant."""
    fn = variant.function
    node = _function_node(solution_source, fn)
    right = _renamed(ast.get_source_segment(solution_source, node), fn, "_right")
    args = [a.arg for a in node.args.args]
    attack = getattr(hw2_attacks, variant.attack)
    helpers = _helpers(attack)
    names_used = set()
    for name in [variant.attack, *helpers]:
        obj = getattr(hw2_attacks, name)
        if inspect.isfunction(obj):
            names_used |= set(obj.__code__.co_names)
            names_used |= {n for c in obj.__code__.co_consts if inspect.iscode(c) for n in c.co_names}
    baked = {**DEFAULT_BAKE, **{k: v for k, v in bake.items() if k in DEFAULT_BAKE}}
    baked.update(function=fn, variant=variant_name, token=f"hostile-{baked['nonce']}")
    parts = [f"# {MARKER}: {variant_name}: {variant.description}", _imports(),
             *_module_constants(names_used),
             f"def _baked():\n    return {baked!r}", right]
    parts += [inspect.getsource(getattr(hw2_attacks, h)).rstrip() for h in helpers]
    parts.append(_renamed(inspect.getsource(attack).rstrip(), variant.attack, "_attack"))
    parts.append(f"def {fn}({', '.join(args)}):\n    return _attack(_right, {', '.join(args)})")
    return "\n\n\n".join(p.strip("\n") for p in parts) + "\n"


def make_variant(base, name: str, bake: dict | None = None):
    """The notebook of one variant (a new NotebookNode)."""
    variant = VARIANTS[name]
    nb = nbformat.from_dict(json.loads(json.dumps(base)))
    index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and _grade_id(c) == variant.function)
    cell = nb.cells[index]
    cell.source = attack_cell(name, variant, cell.source, bake or {})
    nb.cells[index + 1:index + 1] = [nbformat.v4.new_code_cell(src) for src in variant.extra]
    for c in nb.cells:
        c.pop("id", None)
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    nb.nbformat_minor = 4
    return nb


def manifest() -> dict:
    return {name: {"description": v.description, "function": v.function, "group": v.group,
                   "guarantee": v.guarantee, "loses": v.loses} for name, v in VARIANTS.items()}


def build(out, bake: dict | None = None, base=BASE, names=None) -> dict:
    """Write the corpus (or the variants ``names``) and MANIFEST.json into ``out``; return the manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(str(base), as_version=4)
    for name in names or VARIANTS:
        nbformat.write(make_variant(nb, name, bake), str(out / f"{name}.ipynb"))
    doc = {"assignment": "hw2_em", "base": str(Path(base).resolve().relative_to(REPO))
           if Path(base).resolve().is_relative_to(REPO) else str(base), "variants": manifest()}
    (out / "MANIFEST.json").write_text(json.dumps(doc, indent=1) + "\n")
    return doc


# ============================================================================================ test helpers
def with_stash(path, out, stash: dict):
    """Copy the notebook ``path`` to ``out`` with ``stash`` ({key: answers}) in a new markdown cell and in
    the metadata of every code cell: the code cells are unchanged."""
    nb = nbformat.read(str(path), as_version=4)
    text = json.dumps(stash)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(f"Notes.\n\n```json\n{text}\n```\n"))
    for c in nb.cells:
        c.pop("id", None)
        if c.cell_type == "code":
            c.metadata["hostile_stash"] = stash
    nbformat.write(nb, str(out))
    return Path(out)


def with_note(path, out, note: str):
    """Copy the notebook ``path`` to ``out`` with one more markdown cell (a resubmission, same code)."""
    nb = nbformat.read(str(path), as_version=4)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(note))
    for c in nb.cells:
        c.pop("id", None)
    nbformat.write(nb, str(out))
    return Path(out)


def huge_notebook(out, min_bytes: int, base=BASE):
    """The correct notebook grown past ``min_bytes`` by one code cell's stream output; written in pieces."""
    nb = json.loads(Path(base).read_text())
    filler = "x" * (1 << 20)
    count = -(-min_bytes // len(filler)) + 1
    nb["cells"].append({"cell_type": "code", "execution_count": 1, "metadata": {}, "source": "print('x')",
                        "outputs": [{"output_type": "stream", "name": "stdout", "text": ["@@FILL@@"]}]})
    head, tail = json.dumps(nb).split('"@@FILL@@"')
    with open(out, "w") as fh:
        fh.write(head)
        for i in range(count):
            fh.write(f'{", " if i else ""}"{filler}"')
        fh.write(tail)
    return Path(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--port", type=int, default=DEFAULT_BAKE["port"], help="the test's TCP listener")
    p.add_argument("--scheduler", default=DEFAULT_BAKE["scheduler"], help="the test's Dask scheduler")
    p.add_argument("--nonce", default=DEFAULT_BAKE["nonce"], help="names the leak channels of one test run")
    p.add_argument("--marker", default=DEFAULT_BAKE["marker"], help="on the command line of the test's sentinel")
    args = p.parse_args(argv)
    bake = {"port": args.port, "scheduler": args.scheduler, "nonce": args.nonce, "marker": args.marker}
    doc = build(args.out, bake)
    print(f"wrote {len(doc['variants'])} notebooks to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
