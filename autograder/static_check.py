"""Read a submission without running it: where each graded function is defined, which forbidden modules
it uses, and which cells do not parse.

The check is on the code's syntax tree (``ast``), after IPython's own translation of magics
(``%matplotlib``, ``!pip``) into Python, so it sees what the kernel would run. It never executes anything.
It fails closed on the dynamic tricks it can see (below), but not on every one: ``getattr`` with a computed
name on an object that is not a module stays open on purpose (students write ``getattr(model, name)``; a
builtin's ``__self__`` reached that way is the builtins module), and so does a module handed to code as a value
(``helper(torch)``, ``print(torch)``). The sandbox's runtime is what holds there, with no course_lib
estimators, no scikit-learn or SciPy, and ``torch.distributions`` a stub. Neither sees code the
notebook brings itself: a library's source pasted in, or packed into a string and run, is the student's code
to any grader; telling it from their own work is a review for copying, not a check of names.

A name is *used* when it is imported (``import a.b``, ``from a import b`` → ``a.b``), imported by a call with
a constant string (``__import__("a")``, ``importlib.import_module("a.b")``, ``sys.modules["a"]``, code in
``exec("...")``), or reached as an attribute of an imported module or of a name assigned from one
(``import numpy as np`` ... ``np.cov`` → ``numpy.cov``; ``getattr(np, "cov")`` too). A name computed at run
time counts as every name it could reach (:data:`DYNAMIC`): ``getattr(torch, "distri" + "butions")`` uses
whatever ``torch`` forbids below it. An importer or the builtins used other than by a call the check reads
(``f = __import__``, ``globals()``, ``len.__self__``, ``importlib.util``, ``%run``) counts as every forbidden
name, and costs every function wherever it is; the code in ``%time``/``%%capture``-style magics, the
``{expr}`` IPython expands in ``!cmd`` and magic lines, and a one-line cell run as a magic (automagic) are read
like a cell's. A used name ``U`` matches a forbidden name ``F`` when ``U == F`` or ``U`` lies below
``F`` (``sklearn.mixture`` below ``sklearn``), or when ``U`` is a star import of a package containing ``F``.
"""
from __future__ import annotations

import ast
import functools
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

#: CPython's AST constructor is not safe when two threads build trees at once ("AST constructor recursion
#: depth mismatch", seen with a Dask worker grading in several threads): one parse at a time.
_AST_LOCK = threading.RLock()
#: The deepest syntax tree the check walks: its visitor takes about three stack frames per level, and Python
#: allows a thousand. A person writes trees a few dozen deep.
_MAX_TREE_DEPTH = 250
#: The longest dotted name the check keeps (``course_lib.mixture.GaussianMixture`` is 34 characters): a
#: longer one stands for everything below its top module, so that an alias of a name half a million
#: characters long, used a hundred thousand times, cannot make the check build that name each time.
_MAX_NAME = 256


class _TooDeep(RecursionError):
    """A syntax tree deeper than :data:`_MAX_TREE_DEPTH` (``tree``): Python runs it, the check does not walk it."""

    def __init__(self, tree: ast.Module):
        super().__init__("syntax tree too deep")
        self.tree = tree


def _depth_ok(tree) -> None:
    """:class:`_TooDeep` when ``tree`` is deeper than :data:`_MAX_TREE_DEPTH` (checked without recursion)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_TREE_DEPTH:
            raise _TooDeep(tree)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _parse(source: str) -> ast.Module:
    """``ast.parse``, one at a time; RecursionError or MemoryError for code nested too deeply for Python to
    read, :class:`_TooDeep` (a RecursionError) for code Python reads but the check does not walk."""
    with _AST_LOCK:
        tree = ast.parse(source)
    _depth_ok(tree)
    return tree


def _bounded(name: str) -> str:
    """``name`` when it is at most :data:`_MAX_NAME` long, else everything below its top module (``top.?``, or
    ``?`` when the top module's name is that long itself): failing closed."""
    if len(name) <= _MAX_NAME:
        return name
    top = name[:_MAX_NAME + 1].partition(".")[0]
    return f"{top}.{DYNAMIC}" if len(top) <= _MAX_NAME and top != DYNAMIC else DYNAMIC


def _join(base: str, *parts: str) -> str:
    """The name ``base.part…``, bounded without building it longer than :data:`_MAX_NAME`; below a name that
    stands for everything under it (``?``, ``top.?``) is that name itself."""
    if base == DYNAMIC or base.endswith("." + DYNAMIC):
        return base
    if len(base) + sum(len(p) + 1 for p in parts) > _MAX_NAME:
        return f"{base.partition('.')[0]}.{DYNAMIC}"
    return ".".join([base, *parts])


__all__ = ["FunctionInfo", "Violation", "StaticReport", "check_notebook", "check_submission", "cell_sources",
           "definitions_only"]


@dataclass(frozen=True)
class FunctionInfo:
    """Where a graded function is defined (its last top-level definition in the notebook).

    ``cell`` counts code and markdown cells from 0 (the notebook's own order); ``stub`` is True when the
    body still only raises NotImplementedError (or is ``pass``/``...``).
    """

    name: str
    cell: int
    line: int
    args: tuple
    stub: bool = False


@dataclass(frozen=True)
class Violation:
    """A forbidden name used at ``cell``/``line``; ``forbidden`` is the rule it broke. ``function`` names the
    top-level function whose body holds the use (None: top-level code, or a function that declares
    ``global``/``nonlocal`` names and so can hand what it imports to the rest of the notebook)."""

    used: str
    forbidden: str
    cell: int
    line: int
    function: str | None = None

    @property
    def message(self) -> str:
        where = f"cell {self.cell + 1}, line {self.line}"
        if self.used == TOO_DEEP:
            return (f"{where}: the code is nested too deeply for the grader to check it against what this "
                    f"assignment does not allow (no {self.forbidden}); write it with fewer nested levels")
        if self.used == DYNAMIC:
            return (f"{where} imports or runs code the grader cannot read (a computed __import__, import_module, "
                    f"exec or eval, an importer or the builtins used as a value, a magic such as %run), so it "
                    f"cannot check it against what this assignment does not allow (no {self.forbidden}); "
                    f"write the import out")
        if self.used.endswith("." + DYNAMIC):
            return (f"{where} reaches into {self.used[:-2]} by a name computed at run time (getattr, vars or "
                    f"__dict__), so the grader cannot check it against what this assignment does not allow "
                    f"(no {self.forbidden}); write the name out")
        return (f"{where} uses {self.used}, which this assignment does not allow (no {self.forbidden})")


@dataclass
class StaticReport:
    """What the static check found.

    Attributes
    ----------
    functions : dict name -> FunctionInfo
        The graded functions that are defined (at the top level of a code cell).
    missing : list of str
        Graded functions defined nowhere.
    syntax_errors : list of str
        One line per code cell that does not parse ("cell 4, line 3: invalid syntax: ``return x +``").
    violations : list of Violation
        Every use of a forbidden name, whichever function it concerns.
    used : list of (name, cell, line)
        Every module/attribute name the notebook uses (for reports and debugging).
    """

    functions: dict = field(default_factory=dict)
    missing: list = field(default_factory=list)
    syntax_errors: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    used: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.syntax_errors or self.violations)

    def violations_for(self, forbidden) -> list:
        """The violations whose rule is one of ``forbidden`` (e.g. ``suite.forbidden_for(function)``)."""
        forbidden = set(forbidden)
        return [v for v in self.violations if v.forbidden in forbidden]

    def message(self, function: str | None = None) -> str | None:
        """One line for the student about ``function`` (or the notebook): missing, syntax, forbidden."""
        if function is not None and function in self.missing:
            hint = f" ({self.syntax_errors[0]})" if self.syntax_errors else ""
            return f"no function named {function} is defined at the top level of a code cell{hint}"
        if self.syntax_errors and function is None:
            return self.syntax_errors[0]
        return None


def _read(notebook):
    import nbformat
    if isinstance(notebook, (str, Path)):
        return nbformat.read(str(notebook), as_version=4)
    return notebook


def cell_sources(notebook) -> list:
    """``[(cell index, python source)]`` of the code cells, magics translated to Python by IPython."""
    nb = _read(notebook)
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        out.append((i, _to_python(cell.get("source", ""))))
    return out


#: A physical line that may hold an IPython escape: one that starts with any of IPython's escapes (``!cmd``,
#: ``%magic``, ``?obj``, and the autocalls ``,f``, ``;f``, ``/f``), assigns one (``x[0] = !cmd``, ``a, b =
#: %magic``) or ends with ``?`` (``obj?``). A superset of the lines IPython transforms: a line it misses would
#: let a cell of many escapes cost one pass over the whole cell each. Matched one line at a time, the lines cut as
#: IPython cuts them (``str.splitlines``): over the whole cell, ``^\s*`` ran across blank lines, quadratic in them.
_ESCAPE_LINE = re.compile(r"^\s*[!%?,;/](?!=)|(?<![=!<>])=\s*[!%](?!=)|\?\s*$")
#: IPython finds one escape per pass over the whole cell (re-tokenising it each time): past this many
#: escapes times characters, each escape line is translated on its own, in linear time.
_ESCAPE_WORK = 2_000_000


def escape_lines(source: str) -> int:
    """How many lines of ``source`` may hold an IPython escape (a superset of those IPython translates)."""
    return sum(1 for line in source.splitlines() if _ESCAPE_LINE.search(line))


def translation_work(source: str, escapes: int) -> int:
    """About how many characters :func:`_to_python` re-reads to translate ``source`` holding ``escapes`` escape
    lines: the whole cell once per escape, or, past :data:`_ESCAPE_WORK`, each line once."""
    work = escapes * len(source)
    return work if work <= _ESCAPE_WORK else len(source)


def _transform(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager
    return TransformerManager().transform_cell(source)


def _to_python(source) -> str:
    """A cell as the kernel would run it, magics translated by IPython. A cell with so many escapes that
    IPython's translation would take quadratic time (hundreds of ``!`` lines in a large cell) has its escape
    lines translated one by one instead, after IPython's own clean-up of the cell: what a line inside a string
    literal becomes does not change the names the cell uses (a line starting with ``,`` inside brackets is read
    as an autocall, which IPython's whole-cell translation would not)."""
    if isinstance(source, list):
        source = "".join(source)
    try:
        if escape_lines(source) * len(source) <= _ESCAPE_WORK:
            return _transform(source)
        lines = _cleaned_lines(source)
        if _is_cell_magic(lines):
            return _transform(source)
        return "".join(_translate_line(line) if _ESCAPE_LINE.search(line) else line for line in lines)
    except Exception:  # IPython missing or confused: fall back to the raw text
        return source


def _translate_line(line: str) -> str:
    """One line translated on its own, its indentation kept (IPython's translation of a cell removes the
    indentation common to its lines, which for one line is all of it)."""
    body = line.lstrip(" \t")
    return line[:len(line) - len(body)] + _transform(body)


def _is_cell_magic(lines: list) -> bool:
    """Whether IPython reads a cell as one cell magic (``%%name`` first in ``lines``, the cell after its own
    clean-up of leading blank lines, indentation and prompts: :func:`_cleaned_lines`): translated in one pass,
    the body left as a string. Its own test, not ``str.lstrip``: a no-break space before ``%%`` is stripped by
    one and not by the other, and a cell taken for a cell magic that is not one costs IPython a pass over the
    cell per escape line."""
    return bool(lines) and lines[0].startswith("%%") and not re.match(r"%%\w+\?", lines[0])


def _cleaned_lines(source: str) -> list:
    """The lines of ``source`` after IPython's clean-up (leading blank lines, common indentation, prompts), as
    IPython cuts them; linear in the cell."""
    from IPython.core.inputtransformer2 import TransformerManager
    lines = (source if source.endswith("\n") else source + "\n").splitlines(keepends=True)
    for transform in TransformerManager().cleanup_transforms:
        lines = transform(lines)
    return lines


def _is_stub(node) -> bool:
    if node.decorator_list:             # a decorator may replace the body: not an untouched stub
        return False
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                         and isinstance(s.value.value, str))]
    if not body:
        return True
    if len(body) != 1:
        return False
    s = body[0]
    if isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                   and s.value.value is Ellipsis):
        return True
    if isinstance(s, ast.Raise) and s.exc is not None:
        exc = s.exc.func if isinstance(s.exc, ast.Call) else s.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    return False


#: What a name becomes when the check cannot tell what it reaches: ``M.?`` (a computed attribute of module
#: ``M``: ``getattr(M, name)``, ``vars(M)``, ``M.__dict__``) matches every
#: forbidden name below ``M``, and ``?`` (a computed import, ``exec``/``eval`` of a computed string, an importer
#: used other than by a call the check reads) every forbidden name. Failing closed: a graded function may not
#: reach a forbidden module by a name built at run time.
DYNAMIC = "?"
#: What a cell's code uses when it is nested too deeply for the check to walk (Python still runs it): every
#: forbidden name, at the top level (it could bind a name any function uses).
TOO_DEEP = "?deep"
#: The builtins that import, run code given as data, or hand out a namespace holding the importer, as the check
#: names them (``builtins.exec``). Called as the check can read (``__import__("a")``, ``exec("import a")``,
#: ``getattr(np, "cov")``) they are followed; used any other way (``f = exec`` passed on, ``globals()``) they
#: are :data:`DYNAMIC`. ``get_ipython`` is the kernel's: the magics it runs are read (:meth:`_Uses._ipython`).
_BUILTINS = frozenset({"__import__", "exec", "eval", "compile", "getattr", "vars", "globals", "locals", "breakpoint",
                       "__builtins__", "__loader__", "__spec__", "get_ipython"})
_IMPORT_CALLS = ("builtins.__import__", "importlib.import_module", "importlib.__import__",
                 "importlib.util.find_spec")
#: Builtins of ``_BUILTINS`` that students also use as names of their own (``vars`` for variances, an ``eval``
#: flag): bound by the notebook, they are its own names (a builtin assigned to one stays an alias of it).
_SHADOWABLE = frozenset({"vars", "eval", "compile"})
_GET_IPYTHON = ("builtins.get_ipython", "IPython.get_ipython", "IPython.core.getipython.get_ipython")
#: What the check calls the kernel's shell held in a name (``ip = get_ipython()``): its magics are read too.
_SHELL = "IPython.shell"
_EXEC_CALLS = ("builtins.exec", "builtins.eval", "builtins.compile")
_DYNAMIC_CALLS = ("builtins.getattr", "builtins.vars")
#: Modules (and attributes of ``sys``) that reach any module by a name given as data: any use of a name below
#: one of them, other than the calls above, is :data:`DYNAMIC`, also as an attribute of another module
#: (``os.sys.modules``). Importing one is not a use.
_IMPORTERS = ("builtins", "importlib", "pkgutil", "runpy", "imp", "zipimport", "sys.modules", "sys.meta_path",
              "sys.path_hooks", "sys._getframe", "gc.get_objects", "gc.get_referents", "gc.get_referrers",
              "IPython.get_ipython", "IPython.core.getipython", "IPython.InteractiveShell",
              "IPython.core.interactiveshell", "IPython.shell", "__main__", "timeit.timeit", "timeit.repeat",
              "timeit.Timer", "cProfile.run", "profile.run", "pdb.run", "code", "codeop", "pickle.load",
              "pickle.loads", "pickle.Unpickler", "pydoc.locate")
#: Importers that count also as another module's attribute (``os.sys.modules``, ``np.core.builtins``).
_ANYWHERE = ("builtins", "importlib", "sys.modules", "sys.meta_path", "sys.path_hooks", "sys._getframe")
#: Names below an importer that import nothing new: a package's version, reloading a module already imported.
_NOT_IMPORTERS = ("importlib.metadata.version", "importlib.metadata.PackageNotFoundError", "importlib.reload")
#: Attributes that lead from any object to the builtins, a module's globals or every class loaded (a
#: function's ``__globals__``, a builtin's ``__self__``, a frame's ``f_globals``, ``object.__subclasses__()``):
#: used on anything, by name or as a constant key, they are :data:`DYNAMIC` (what stays open: the module
#: docstring).
_ESCAPES = frozenset({"__builtins__", "__import__", "__globals__", "__self__", "__subclasses__", "__getattribute__",
                      "__loader__", "__spec__", "__reduce__", "__reduce_ex__", "f_globals", "f_builtins", "f_locals",
                      "f_back", "gi_frame", "cr_frame", "ag_frame", "tb_frame"})
#: IPython magics (``%name`` / ``%%name``, as ``get_ipython().run_line_magic`` / ``run_cell_magic``), by what
#: they run. Code (:func:`_magic_code`): Python read like a cell's. Imports: the line names modules
#: (``%load_ext m``). Inert: no Python of the notebook's and no import. Any other magic (``%run``, ``%macro``,
#: an extension's) is :data:`DYNAMIC`.
_CODE_MAGICS = ("time", "timeit", "prun", "capture", "debug", "writefile", "file", "config")
#: The magics whose line IPython does not expand (``{expr}``, ``$name``): the rest evaluate what is in braces.
_NO_EXPAND = ("time", "timeit", "prun", "debug")
#: The most ``{expr}`` fields of one line the check reads.
_MAX_FIELDS = 64
_IMPORT_MAGICS = {"load_ext": None, "aimport": None, "reload_ext": None, "pylab": ("pylab.*", "numpy.*")}
_INERT_MAGICS = frozenset({
    "matplotlib", "precision", "pwd", "cd", "who", "whos", "who_ls", "xmode", "pinfo", "pinfo2", "pdoc",
    "pdef", "psearch", "autoreload", "reset", "history", "pprint", "colors", "automagic", "pip", "conda", "lsmagic",
    "magic", "quickref", "env", "set_env", "pdb", "tb", "autosave", "tensorboard", "html", "markdown", "latex",
    "svg", "javascript", "js", "bash", "sh", "script", "system", "sx", "sc", "python", "python3", "perl", "ruby",
    "cat", "cp", "ldir", "less", "lf", "lk", "ll", "ls", "lx", "man", "mkdir", "more", "mv", "rm", "rmdir", "clear",
    "pushd", "popd", "dirs", "dhist", "bookmark", "unload_ext", "gui", "doctest_mode", "page", "notebook",
    "rerun", "store", "logstart", "logstop", "logon", "logoff", "logstate", "alias", "unalias", "reset_selective",
    "killbgscripts"})
#: The most options the check hands to IPython's option parser (``getopt``, quadratic in their number).
_MAX_OPTIONS = 32
#: How deep the check reads code inside code (``exec`` strings, magics' bodies): each level is read again.
_MAX_NESTED = 2


def _importer(dotted: str) -> bool:
    """Whether a dotted name lies below an importer (:data:`_IMPORTERS`, also as another module's attribute:
    ``os.sys.modules``) or passes through an attribute that leads to the builtins (:data:`_ESCAPES`)."""
    padded = f".{dotted}."
    if any(p in _ESCAPES for p in dotted.split(".")[1:]):
        return True
    hit = any(padded.startswith(f".{m}.") for m in _IMPORTERS) or any(f".{m}." in padded for m in _ANYWHERE)
    return hit and not any(f".{m}." in padded for m in _NOT_IMPORTERS)


class _Uses(ast.NodeVisitor):
    """Collect dotted names used: imports, import calls with constant strings, attributes of modules, and
    computed access (see :data:`DYNAMIC`)."""

    def __init__(self):
        self.aliases = {}   # local name -> dotted module/attribute name
        self.found = []     # (dotted, line)
        self.nested = 0     # levels of code read from strings (exec, magics)
        self.shadowed = set()   # names of _SHADOWABLE the notebook binds itself
        self.resolved = {}      # node -> its dotted name, for the statement being walked (see _walk)

    def bind(self, tree) -> None:
        """Note which of :data:`_SHADOWABLE` the code of ``tree`` binds (a variable, a parameter, a function;
        not ``vars = vars``, an alias that keeps the builtin)."""
        kept, bound = set(), []
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in _BUILTINS:
                kept.update(id(t) for t in node.targets)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                bound.append((id(node), node.id))
            elif isinstance(node, ast.arg):
                bound.append((None, node.arg))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.append((None, node.name))
        self.shadowed.update(name for key, name in bound if name in _SHADOWABLE and key not in kept)

    def _resolve(self, node) -> str | None:
        """The dotted name an expression stands for (``np.linalg`` -> ``numpy.linalg``, ``exec`` ->
        ``builtins.exec``, ``getattr(F, "torch")`` -> ``torch.nn.functional.torch``, ``__import__("a.b")`` ->
        ``a``), or None; bounded (see :func:`_bounded`), and never built longer than that. Kept per node for
        the statement being walked: nested calls would otherwise resolve their arguments again at each level."""
        if node not in self.resolved:
            self.resolved[node] = self._resolve_now(node)
        return self.resolved[node]

    def _resolve_now(self, node) -> str | None:
        chain = []
        while isinstance(node, ast.Attribute):
            chain.append(node.attr)
            node = node.value
        if isinstance(node, ast.Call) and node.args:
            callee, first = self._resolve(node.func), node.args[0]
            key = node.args[1] if len(node.args) > 1 else None
            if callee == "builtins.getattr" and len(node.args) in (2, 3) and isinstance(key, ast.Constant) \
                    and isinstance(key.value, str):                                    # getattr(F, "torch").x
                base = self._resolve(first)
                return None if base is None else _join(base, key.value, *reversed(chain))
            if callee in _IMPORT_CALLS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                name = first.value                                  # __import__("a.b") is a, unless fromlist
                if callee == "builtins.__import__" and len(node.args) < 4 and not node.keywords:
                    name = name.partition(".")[0]
                return _join(_bounded(name), *reversed(chain))
        if not isinstance(node, ast.Name):
            return None
        if node.id in self.aliases:
            return _join(self.aliases[node.id], *reversed(chain))
        if node.id in _BUILTINS and node.id not in self.shadowed:
            return _join(f"builtins.{node.id}", *reversed(chain))
        return None

    def _use(self, dotted: str, line: int) -> None:
        """Record ``dotted`` as used (``M.__dict__...`` as ``M.?``), or :data:`DYNAMIC` when it reaches an
        importer (:func:`_importer`)."""
        head, sep, _ = dotted.partition(".__dict__")
        self.found.append((DYNAMIC if _importer(dotted) else f"{head}.{DYNAMIC}" if sep else dotted, line))

    def _read(self, code: str | None, line: int, magics: bool = False, strict: bool = False) -> None:
        """Walk code given as a string (``exec``'s, a magic's); :data:`DYNAMIC` when it is not a constant, is
        nested too deep, or is too deep to parse, and (``strict``: a magic's code, which the check rebuilds
        from IPython's arguments) when it does not parse."""
        tree = None
        if code is not None and self.nested < _MAX_NESTED:
            try:
                tree = _parse(_to_python(code) if magics else code)
            except SyntaxError:
                tree = None if strict else ast.Module(body=[], type_ignores=[])
            except (RecursionError, MemoryError):   # too deep to read: as unreadable as a computed string
                tree = None
        if tree is None:
            self.found.append((DYNAMIC, line))
            return
        self.nested += 1
        try:
            self.visit(tree)
        finally:
            self.nested -= 1

    def visit_Import(self, node):
        for a in node.names:
            name = _bounded(a.name)
            self.found.append((name, node.lineno))
            if a.asname:
                self.aliases[a.asname] = name
            else:
                top = a.name.partition(".")[0]
                self.aliases[top] = _bounded(top)
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        if node.level:  # relative imports cannot reach installed packages
            return
        mod = node.module or ""
        for a in node.names:
            full = _bounded(f"{mod}.{a.name}") if a.name != "*" else _bounded(f"{mod}.*")
            if full in _GET_IPYTHON:             # from IPython import get_ipython: its calls are read
                self.found.append((full, node.lineno))
            else:                                # from importlib import import_module: an importer at hand
                self._use(full, node.lineno)
            if a.name != "*":
                self.aliases[a.asname or a.name] = full
        self.generic_visit(node)

    def visit_Assign(self, node):
        names = all(isinstance(t, ast.Name) for t in node.targets)
        if names and self._is_shell_call(node.value):          # ip = get_ipython(): its magics are read too
            for t in node.targets:
                self.aliases[t.id] = _SHELL
            return
        target = self._resolve(node.value)     # t = torch; d = torch.distributions: t and d are aliases too
        if target is not None and names:
            for t in node.targets:
                self.aliases[t.id] = target
            if isinstance(node.value, ast.Name):   # an alias of a name: used where the alias is used
                if _importer(target):              # f = exec: an importer under another name, wherever it goes
                    self.found.append((DYNAMIC, node.lineno))
                return
        self.generic_visit(node)

    def _is_shell_call(self, node) -> bool:
        """Whether ``node`` is ``get_ipython()`` (no arguments)."""
        return (isinstance(node, ast.Call) and not node.args and not node.keywords
                and self._resolve(node.func) in _GET_IPYTHON)

    def visit_Name(self, node):
        dotted = self._resolve(node)      # an importer as a value (f = exec handed on, match importlib: case m)
        if dotted is not None and isinstance(node.ctx, ast.Load) and _importer(dotted):
            self.found.append((DYNAMIC, node.lineno))

    def visit_Call(self, node):
        f = node.func
        callee = self._resolve(f)
        first = node.args[0] if node.args else None
        constant = isinstance(first, ast.Constant) and isinstance(first.value, str)
        if callee is None and isinstance(f, ast.Name) and f.id in _SHADOWABLE and f.id not in self.aliases:
            guess = f"builtins.{f.id}"   # the notebook binds the name too: still read what the builtin would do
            if (guess in _EXEC_CALLS and constant) or (guess == "builtins.vars" and first is not None
                                                        and self._resolve(first) is not None):
                callee = guess
        if callee is None and isinstance(f, ast.Attribute) and f.attr in ("import_module", "__import__"):
            callee = "importlib.import_module"      # an importer the check did not see bound (imported later)
        if callee in _IMPORT_CALLS and first is not None:
            self.found.append((_bounded(first.value) if constant else DYNAMIC, node.lineno))
        elif callee in _EXEC_CALLS and first is not None:
            self._read(first.value if constant else None, node.lineno)
        elif callee in _DYNAMIC_CALLS and first is not None:
            key = node.args[1] if len(node.args) > 1 else None
            named = callee == "builtins.getattr" and isinstance(key, ast.Constant) and isinstance(key.value, str)
            if named and key.value in _ESCAPES:
                self.found.append((DYNAMIC, node.lineno))
            target = self._resolve(first)
            if target is not None:
                self._use(_join(target, key.value if named else DYNAMIC), node.lineno)
                if isinstance(first, ast.Name):   # the module read here is not handed on
                    first = None
            for arg in (node.args[1:] if first is None else node.args) + [k.value for k in node.keywords]:
                self.visit(arg)
            return
        elif self._ipython(node):
            return
        elif callee in ("builtins.globals", "builtins.locals", "builtins.vars"):   # the namespace with the builtins
            self.found.append((DYNAMIC, node.lineno))
        elif isinstance(f, ast.Name):
            if callee is not None:
                self._use(callee, node.lineno)
            elif f.id in ("str", "repr", "type", "print", "isinstance"):    # 'google.colab' in str(get_ipython())
                for arg in node.args + [k.value for k in node.keywords]:
                    if not self._is_shell_call(arg):
                        self.visit(arg)
                return
        else:
            self.generic_visit(node)
            return
        for arg in node.args + [k.value for k in node.keywords]:   # the callee was read above: not a value
            self.visit(arg)

    def _ipython(self, node) -> bool:
        """Read ``get_ipython().<method>(...)`` (or a name holding the shell), what IPython makes of ``!cmd`` and
        ``%magic`` (see :data:`_CODE_MAGICS`), with the Python IPython expands in them (``{expr}``, ``$name``);
        True when ``node`` is such a call (read, or :data:`DYNAMIC`)."""
        f = node.func
        if not (isinstance(f, ast.Attribute) and (self._is_shell_call(f.value) or self._resolve(f.value) == _SHELL)):
            return False
        for arg in node.args + [k.value for k in node.keywords]:     # evaluated first, whatever the call does
            self.visit(arg)
        args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in node.args]
        line, shell = node.lineno, f.attr in ("system", "getoutput")
        if (f.attr not in ("system", "getoutput", "run_line_magic", "run_cell_magic") or node.keywords
                or None in args or len(args) < (1 if shell else 2)):
            self.found.append((DYNAMIC, line))
            return True
        if shell:                                            # !cmd: a shell, after IPython's expansion
            self._expand(args[0], line)
            return True
        name, text, body = args[0], args[1], (args[2] if len(args) > 2 else None)
        if name not in _NO_EXPAND:
            self._expand(text, line)
        if name in _INERT_MAGICS:
            return True
        if name in _IMPORT_MAGICS:
            words = [w.lstrip("-") for w in text.replace(",", " ").split()]
            for module in _IMPORT_MAGICS[name] or [w for w in words if w]:
                self.found.append((_bounded(module), line))
            return True
        code = _magic_code(name, text, body) if name in _CODE_MAGICS else None
        if code is None:
            self.found.append((DYNAMIC, line))
            return True
        target = text.split()[-1:]                      # %%writefile's file: not Python unless it is a .py
        strict = name not in ("writefile", "file") or not target or target[0].endswith(".py")
        for source in code:
            self._read(source, line, magics=True, strict=strict)
        return True

    def _expand(self, text: str, line: int) -> None:
        """Read the Python IPython evaluates in a shell line or a magic's line: ``{expr}`` and ``$name`` fields
        (an expansion that fails runs nothing, so a field that does not parse is nothing)."""
        from IPython.utils.text import DollarFormatter
        try:
            fields = [field for _, field, _, _ in DollarFormatter().parse(text) if field]
        except Exception:                # IPython leaves such a line as it is
            return
        if len(fields) > _MAX_FIELDS:
            self.found.append((DYNAMIC, line))
            return
        for field in fields:
            self._read(field, line)

    def visit_Compare(self, node):
        """``"google.colab" in sys.modules`` reads names only: not a use of the importer."""
        if all(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            for value in (node.left, *node.comparators):
                dotted = self._resolve(value)
                if not (dotted == "sys.modules" or (dotted or "").endswith(".sys.modules")):
                    self.visit(value)
            return
        self.generic_visit(node)

    def visit_Subscript(self, node):
        key = node.slice
        constant = isinstance(key, ast.Constant) and isinstance(key.value, str)
        if self._resolve(node.value) == "sys.modules":      # sys.modules["a.b"] / sys.modules[computed]
            self.found.append((_bounded(key.value) if constant else DYNAMIC, node.lineno))
            self.visit(key)
            return
        if constant and key.value in _ESCAPES:             # globals()["__builtins__"], f.__globals__[...]
            self.found.append((DYNAMIC, node.lineno))
        self.generic_visit(node)

    def visit_Attribute(self, node):
        dotted = self._resolve(node)
        if dotted is not None:
            self._use(dotted, node.lineno)
            return  # the inner attributes are prefixes of this one
        if node.attr in _ESCAPES:
            self.found.append((DYNAMIC, node.lineno))
        self.generic_visit(node)


class _OptionParser:
    """What IPython's option parser needs of a magic (its table of default options: none)."""
    options_table: dict = {}


def _magic_code(name: str, line: str, body: str | None) -> list | None:
    """The Python a code magic runs (``%time``, ``%timeit``, ``%prun``, ``%debug``, ``%config``, ``%%capture``,
    and the file ``%%writefile`` writes, which the notebook may import): its line after IPython's options, and
    its cell's body, joined as IPython joins them; None when IPython would not read the line either, or when it
    starts with more options than the check parses (:data:`_MAX_OPTIONS`)."""
    from IPython.core.error import UsageError
    from IPython.core.magic import Magics
    if name in ("capture", "writefile", "file"):   # the line names a variable or a file; a .py file is imported
        return [body] if body is not None else None
    if name == "config":                           # %config A.b = expr runs exec("cfg." + line)
        return ["_cfg." + line] if "=" in line else []
    words = line.split()
    if name in ("timeit", "prun"):                 # getopt reads the leading options: bounded, one word may pack
        i, count, chars = 0, 0, 0                  # many (-tttt)
        while i < len(words) and words[i].startswith("-"):
            count, chars = count + 1, chars + len(words[i])
            i += 2 if words[i] in ("-n", "-r", "-p", "-v", "-D", "-l", "-s", "-T") else 1
        if count > _MAX_OPTIONS or chars > 8 * _MAX_OPTIONS:
            return None
    try:
        if name == "timeit":                  # %%timeit: the line is the setup
            _, stmt = Magics.parse_options(_OptionParser(), line, "n:r:tcp:qov:", posix=False, strict=False,
                                           preserve_non_opts=True)
            return [stmt] if body is None else [stmt, body]
        if name == "prun":
            _, stmt = Magics.parse_options(_OptionParser(), line, "D:l:rs:T:q", list_all=True, posix=False)
        elif name == "time":                  # its one option (--no-raise-error, or a prefix), anywhere
            kept = [w for w in words if not (len(w) > 2 and "--no-raise-error".startswith(w))]
            stmt = line if len(kept) == len(words) else " ".join(kept)
        else:                                 # %debug --breakpoint/-b FILE:LINE, then the statement
            i = 0
            while i < len(words) and words[i].startswith("-"):
                i += 2 if words[i] in ("-b", "--breakpoint") else 1
            stmt = " ".join(words[i:])
    except (UsageError, ValueError):
        return None
    return [stmt if body is None else f"{stmt}\n{body}"]


@functools.lru_cache(maxsize=1 << 16)
def _matches(used: str, forbidden: str) -> bool:
    if used in (DYNAMIC, TOO_DEEP):   # a computed import, exec of a computed string, code not walked: anything
        return True
    if used == forbidden or used.startswith(forbidden + ".") or f".{forbidden}." in f".{used}.":
        return True       # torch.nn.functional.torch.distributions: a module's own import of another
    if used.endswith((".*", "." + DYNAMIC)):  # from package import *, getattr(package, name): anything below it,
        parts, top = used[:-2].split("."), forbidden.partition(".")[0]    # also where the package sits inside
        for i in range(len(parts)):                                       # the name (F.torch.?)
            if i == 0 or parts[i] == top:
                pkg = ".".join(parts[i:])
                if forbidden == pkg or forbidden.startswith(pkg + "."):
                    return True
    return False


def check_notebook(notebook, functions=(), forbidden=()) -> StaticReport:
    """Statically check a notebook.

    Parameters
    ----------
    notebook : path or nbformat.NotebookNode
    functions : iterable of str
        The graded functions to look for.
    forbidden : iterable of str
        Dotted names no cell may use (``"sklearn"``, ``"course_lib.mle"``, ``"numpy.cov"``).

    Returns
    -------
    StaticReport
    """
    report = StaticReport()
    wanted = set(functions)
    forbidden = tuple(dict.fromkeys(forbidden))
    try:
        sources = cell_sources(notebook)
    except Exception as exc:  # not a notebook at all
        report.syntax_errors.append(f"the file is not a readable Jupyter notebook: {str(exc).splitlines()[0][:200]}")
        report.missing = sorted(wanted)
        return report
    uses = _Uses()
    for index, src in sources:
        try:
            tree = _parse_cell(src)
        except SyntaxError as exc:
            text = (exc.text or "").strip()
            where = f" near `{text[:80]}`" if text else ""
            report.syntax_errors.append(f"cell {index + 1}, line {exc.lineno}: {exc.msg}{where}")
            continue
        except _TooDeep as exc:                  # Python runs it; the check does not walk it: fail closed
            tree = exc.tree
            _record(report, forbidden, TOO_DEEP, index, 1, None)
        except (RecursionError, MemoryError):   # Python's parser gives up on code nested thousands deep
            report.syntax_errors.append(f"cell {index + 1}: its code is nested too deeply for Python to read")
            continue
        else:
            _walk(tree, index, uses, report, forbidden)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in wanted:
                args = tuple(a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs)
                report.functions[node.name] = FunctionInfo(node.name, index, node.lineno, args, _is_stub(node))
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
                for t in node.targets:
                    if isinstance(t, ast.Name) and t.id in wanted:
                        args = tuple(a.arg for a in node.value.args.args)
                        report.functions[t.id] = FunctionInfo(t.id, index, node.lineno, args, False)
    report.missing = sorted(wanted - set(report.functions))
    return report


def _parse_cell(src: str) -> ast.Module:
    """A cell's syntax tree; a one-line cell that is not Python is read as IPython's kernel reads it, as a magic
    without its ``%`` (automagic: ``time import x`` runs ``%time import x``)."""
    try:
        return _parse(src)
    except SyntaxError:
        line = src.strip()
        if not line or "\n" in line or line.startswith("%"):
            raise
        magic = _to_python("%" + line)
        if magic.lstrip().startswith(("get_ipython().run_line_magic(", "get_ipython().run_cell_magic(")):
            try:
                return _parse(magic)
            except SyntaxError:
                pass
        raise


def _record(report: StaticReport, forbidden, used: str, cell: int, line: int, scope: str | None) -> None:
    report.used.append((used, cell, line))
    for f in forbidden:
        if _matches(used, f):
            report.violations.append(Violation(used, f, cell, line, scope))


def _walk(tree: ast.Module, cell: int, uses: _Uses, report: StaticReport, forbidden) -> None:
    """The names each top-level statement of a cell uses, into ``report``; a statement whose walk runs out of
    stack (``exec`` strings nested in deep code) uses everything (:data:`TOO_DEEP`), at the top level."""
    uses.bind(tree)
    for node in tree.body:
        start = len(uses.found)
        uses.resolved.clear()
        try:
            uses.visit(node)
        except RecursionError:
            del uses.found[start:]
            _record(report, forbidden, TOO_DEEP, cell, node.lineno, None)
            continue
        scope = node.name if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not any(
            isinstance(n, (ast.Global, ast.Nonlocal)) for n in ast.walk(node)) else None
        for used, line in uses.found[start:]:   # what runs code unseen can bind names for any function
            _record(report, forbidden, used, cell, line, None if used in (DYNAMIC, TOO_DEEP) else scope)


def check_submission(notebook, suite) -> StaticReport:
    """``check_notebook`` with a suite's graded functions and every name it forbids."""
    names = list(suite.functions)
    forbidden = []
    for fname in names:
        forbidden.extend(suite.forbidden_for(fname))
    return check_notebook(notebook, names, forbidden)


def definitions_only(source: str) -> str | None:
    """The imports, function and class definitions of a cell, without its other top-level statements.

    Used to re-run a cell whose top-level code hung or killed the kernel while keeping the functions it
    defines. None when the cell does not parse or defines nothing.
    """
    try:
        tree = _parse(_to_python(source))
    except (SyntaxError, RecursionError, MemoryError):
        return None
    keep = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                                    ast.AsyncFunctionDef, ast.ClassDef))]
    if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in keep):
        return None
    with _AST_LOCK:
        return ast.unparse(ast.Module(body=keep, type_ignores=[]))
