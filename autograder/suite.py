"""What an assignment's grader checks: the suite API.

One module per assignment, ``autograder/suites/<HW>.py``, exposes ``SUITE = Suite(...)``. The grader reads
it in two places:

* the grading process (static check, sandbox, harvest) uses ``name``, ``notebook``, ``parameters``,
  ``functions`` and ``make_cases``;
* the judge process (never runs student code) uses ``checks``: each check's ``judge`` compares what one
  graded function returned on one case with course_lib's reference and with invariants.

How the pieces fit
------------------
``make_cases(rng, visibility)`` is called twice per submission, once with ``visibility="visible"`` and once
with ``"hidden"``, each time with its own ``numpy.random.Generator`` seeded from HMAC(secret salt, the
submission's code). It returns ``{function_name: [case, ...]}``; a case is a dict of keyword arguments
(NumPy arrays, Python ints/floats/bools/strings) and the harvest cell calls ``function(**case)``.
Key names starting with ``_`` are *not* passed to the function: a suite may stash extra data for its
judges there (e.g. ``"_true_means"``); the sandbox never sees them. ``course check`` (a student's own
machine) only asks for the visible cases; hidden cases are never generated there.

Each ``Check`` belongs to one graded function and one visibility. Its ``judge(case, output, ctx)`` is called
once for every case of that function *with the same visibility* and returns a ``CheckResult`` whose
``score_fraction`` is in [0, 1]; the check earns ``points * mean(score_fraction over its cases)``
(partial credit). If the function raised, timed out or is missing for a case, the judge is not called for
that case: it scores 0 with the reason. ``output`` is the function's return value as data: a NumPy array
(torch tensors arrive as NumPy arrays), a Python float/int/bool, or a tuple of those when the function
returns several values. A judge that raises (e.g. on an output of the wrong type) scores 0 for that case
with "could not check the output: ..." — write judges so that this is rare; check types first.

Hidden checks show only their name and passed/failed: their messages, inputs and the student's error
messages are never shown (a hidden case the function failed on is reported as one generic line, e.g.
"e_step raised an exception on a hidden case"). Visible checks show the judge's message (use
``autograder.feedback.compare`` to get "expected vs got" with shapes, dtype, max abs/rel error and where,
and the known mistake matched).

Judges must check what a degenerate answer cannot fake. An invariant (a bound, a sign, a monotone
history) is credited only together with the reference value wherever one exists (``invariant_judge(...,
reference=...)``); an optimisation result (a fitted mixture, a trained model) is judged by quantities the
grader computes itself from the returned parameters on bounded, regularised terms, against course_lib run
from the same start, never by a number the student's code reports about itself.

Points over all checks must sum to 100 (``Suite.validate()``, run when the suite is loaded).

Import course_lib *inside* reference/judge functions (or at module top: the judge imports it anyway), and
keep ``make_cases`` cheap and free of torch if you can — it runs in the coordinating process.

Example (the fixture assignment used by the project's tests, tests/fixtures/fixture_hw/suite.py)::

    import numpy as np
    from autograder.suite import Check, Function, Suite, reference_judge, invariant_judge

    def make_cases(rng, visibility):
        n = 5 if visibility == "visible" else 7
        X = rng.normal(size=(n, 3))
        return {"sample_mean": [{"X": X}], "sample_cov": [{"X": X}]}

    def _cov(X):            # the reference (course_lib.mle.gaussian in a real assignment)
        return np.cov(X, rowvar=False, bias=True)

    SUITE = Suite(
        name="fixture_hw",
        notebook="tests/fixtures/fixture_hw/fixture_hw.ipynb",
        parameters={"n_samples": 50},
        functions={"sample_mean": Function(time_budget_s=10),
                   "sample_cov": Function(time_budget_s=10, forbidden=("numpy.cov",))},
        make_cases=make_cases,
        checks=[
            Check("sample_mean matches the reference", "sample_mean", 20, "visible",
                  reference_judge(lambda case: case["X"].mean(axis=0), rtol=1e-10, atol=1e-12)),
            Check("sample_cov matches the reference", "sample_cov", 30, "visible",
                  reference_judge(lambda case: _cov(case["X"]), rtol=1e-10, atol=1e-12,
                                  mistakes={"biased_covariance":
                                            lambda case: np.cov(case["X"], rowvar=False, bias=False)})),
            Check("sample_cov is symmetric", "sample_cov", 10, "hidden",
                  invariant_judge(lambda case, out: np.allclose(out, np.transpose(out)),
                                  "the covariance must equal its transpose",
                                  reference=lambda case: _cov(case["X"]), rtol=1e-10, atol=1e-12)),
            ...  # more checks, until the points sum to 100
        ],
    )

Tolerances say why (STYLE.md rule 7): float64 reference 1e-10; float32/torch 1e-4.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = [
    "VISIBILITIES", "ALWAYS_FORBIDDEN", "Function", "Check", "CheckResult", "JudgeContext", "Suite",
    "reference_judge", "invariant_judge", "case_arguments",
]

#: The two kinds of check: "visible" (public: `course check` runs it, feedback shows expected vs got) and
#: "hidden" (only the grader runs it; feedback shows its name and passed/failed, nothing else).
VISIBILITIES = ("visible", "hidden")
#: The visibilities Gradescope knows for a test in results.json.
GRADESCOPE_VISIBILITIES = ("visible", "after_published", "after_due_date", "hidden")

#: Imports no submission may use anywhere in the notebook (each function may forbid more).
ALWAYS_FORBIDDEN = ("sklearn",)

#: How the student notebook names a package a suite's runs lack (see :meth:`Suite.runtime_without`), where its
#: import name is not what people call it (``autograder.sandbox.STUDENT_UNAVAILABLE`` has the others).
_SPOKEN_NAMES = {"torch": "PyTorch"}

#: Total points of a suite.
TOTAL_POINTS = 100.0


@dataclass(frozen=True)
class Function:
    """A graded function: the student defines it (by this name, in its own cell) and the grader calls it.

    Parameters
    ----------
    time_budget_s : float
        Wall-clock seconds for all of this function's cases together inside the sandbox; past it, the
        function's remaining cases are "timeout" (its checks lose those cases' points, nothing else does).
    forbidden : tuple of str
        Dotted module or attribute names this function must not rely on, on top of ``ALWAYS_FORBIDDEN``:
        typically course_lib's reference for it, e.g. ``("course_lib.mixture",)`` or
        ``("course_lib.mle.gaussian",)``. An import (or ``from X import Y``) of a forbidden name anywhere in
        the notebook zeroes this function's checks with the reason.
    description : str
        One line shown in feedback next to the function's checks.
    probe : str
        For a function that returns something that is not data (a trained model): the source of a function
        ``probe(output, **inputs)`` that the sandbox runs on the returned object, and whose data result is
        harvested instead. Case keys starting with ``probe_`` go to the probe (without the prefix), not to
        the student's function.
    """

    time_budget_s: float = 30.0
    forbidden: tuple[str, ...] = ()
    description: str = ""
    probe: str = ""

    def __post_init__(self):
        if not (isinstance(self.time_budget_s, (int, float)) and self.time_budget_s > 0):
            raise ValueError(f"Function.time_budget_s must be a positive number of seconds, got {self.time_budget_s!r}")
        if isinstance(self.forbidden, str):
            object.__setattr__(self, "forbidden", (self.forbidden,))
        object.__setattr__(self, "forbidden", tuple(self.forbidden))
        if self.probe and "def probe(" not in self.probe:
            raise ValueError("Function.probe must be the source of a function named probe(output, **inputs)")


@dataclass(frozen=True)
class CheckResult:
    """What a judge says about one output on one case.

    Parameters
    ----------
    score_fraction : float in [0, 1]
        1 = full marks for this case, 0 = none; values in between are partial credit.
    message : str
        For the student (visible checks only): what was expected and what came back, and what to change.
    mistake : str or None
        The name of the known mistake the output matches (see ``autograder.feedback.KNOWN_MISTAKES``), if any.
    """

    score_fraction: float
    message: str = ""
    mistake: str | None = None

    def __post_init__(self):
        f = float(self.score_fraction)
        if not math.isfinite(f):
            f = 0.0
        object.__setattr__(self, "score_fraction", min(1.0, max(0.0, f)))

    @property
    def passed(self) -> bool:
        return self.score_fraction >= 1.0


@dataclass(frozen=True)
class JudgeContext:
    """What a judge may look at besides the case and the output.

    Attributes
    ----------
    suite : Suite
    check : Check
        The check being judged.
    index : int
        The case's position in ``cases[check.function]`` for this visibility.
    cases : dict
        Every case of this visibility, ``{function: [case, ...]}`` (for checks relating several functions).
    outputs : dict
        ``{function: [output or None, ...]}`` for this visibility, aligned with ``cases`` (None: no output).
    parameters : dict
        The suite's papermill parameters (the notebook ran with these).
    """

    suite: "Suite"
    check: "Check"
    index: int
    cases: Mapping[str, Sequence[Mapping[str, Any]]]
    outputs: Mapping[str, Sequence[Any]]
    parameters: Mapping[str, Any]


JudgeFn = Callable[[Mapping[str, Any], Any, JudgeContext], "CheckResult | bool | float"]


@dataclass(frozen=True)
class Check:
    """One graded check of one function.

    Parameters
    ----------
    name : str
        Unique within the suite; shown to students (also for hidden checks), so make it say what is checked,
        e.g. ``"e_step: responsibilities match the reference"``.
    function : str
        A key of ``Suite.functions``.
    points : float
        Positive; all checks of a suite sum to 100.
    visibility : "visible" or "hidden"
    judge : callable ``judge(case, output, ctx) -> CheckResult``
        May also return a bool (pass/fail) or a float (score fraction).
    """

    name: str
    function: str
    points: float
    visibility: str
    judge: JudgeFn

    def __post_init__(self):
        if self.visibility not in VISIBILITIES:
            raise ValueError(f"check {self.name!r}: visibility must be 'visible' or 'hidden', got {self.visibility!r}")
        if not (isinstance(self.points, (int, float)) and self.points > 0):
            raise ValueError(f"check {self.name!r}: points must be a positive number, got {self.points!r}")
        if not callable(self.judge):
            raise ValueError(f"check {self.name!r}: judge must be callable(case, output, ctx)")

    def run(self, case, output, ctx: JudgeContext) -> CheckResult:
        """Call the judge and normalise what it returns to a ``CheckResult``."""
        res = self.judge(case, output, ctx)
        if isinstance(res, CheckResult):
            return res
        if isinstance(res, (bool, np.bool_)):
            return CheckResult(1.0 if res else 0.0, "" if res else "the output does not pass this check")
        if isinstance(res, (int, float, np.floating, np.integer)):
            return CheckResult(float(res))
        raise TypeError(f"judge of {self.name!r} returned {type(res).__name__}, expected CheckResult")


@dataclass
class Suite:
    """An assignment's grading suite.

    Parameters
    ----------
    name : str
        The assignment, e.g. ``"hw2_em"`` (the module is ``autograder/suites/hw2_em.py``).
    notebook : str
        The released student notebook, relative to the repository root (e.g. ``assignments/hw2_em/hw2_em.ipynb``).
    parameters : dict
        Papermill parameters injected when grading (small data, few epochs): the notebook's own cells
        run fast with them; graded functions are called on the grader's cases regardless.
    functions : dict of str -> Function
        The graded functions by name.
    make_cases : callable ``make_cases(rng, visibility) -> {function: [case dict, ...]}``
        ``rng`` is a ``numpy.random.Generator``; ``visibility`` is "visible" or "hidden". Return cases only
        for functions that have checks of that visibility (others are ignored).
    checks : list of Check
        Points sum to 100.
    description : str
        One line for the report header.
    notebook_timeout_s : float
        Wall-clock budget for the student's own cells (before harvesting).
    hidden_visibility : str
        Gradescope visibility of the tests that hold hidden checks: "after_published" (default: students see
        them once grades are published), "after_due_date", "hidden" or "visible". Public checks are "visible".
    max_notebook_mb : float or None
        Largest notebook accepted for this assignment (default: the grader's limit).
    allowed : tuple of str
        What students write the functions with, as Markdown phrases (``("NumPy",)``, ``("NumPy", "PyTorch
        (`torch`, `torch.nn`)")``). With the forbidden lists it makes :meth:`rules_markdown`, the paragraph
        `course release` writes into the student notebook, and the feedback on a forbidden name.
    """

    name: str
    notebook: str
    parameters: dict
    functions: dict
    make_cases: Callable[[np.random.Generator, str], dict]
    checks: list
    description: str = ""
    notebook_timeout_s: float = 120.0
    forbidden: tuple[str, ...] = field(default=ALWAYS_FORBIDDEN)
    hidden_visibility: str = "after_published"
    max_notebook_mb: float | None = None
    allowed: tuple[str, ...] = ("NumPy",)

    def __post_init__(self):
        self.allowed = (self.allowed,) if isinstance(self.allowed, str) else tuple(self.allowed)
        self.checks = list(self.checks)
        self.functions = dict(self.functions)
        self.parameters = dict(self.parameters)
        self.forbidden = tuple(self.forbidden)
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> "Suite":
        """Raise ValueError (one line) unless the suite is consistent and its points sum to 100."""
        if not self.name or not str(self.name).isidentifier():
            raise ValueError(f"suite name must be an identifier like 'hw2_em', got {self.name!r}")
        if not self.functions:
            raise ValueError(f"suite {self.name}: no graded functions")
        if self.hidden_visibility not in GRADESCOPE_VISIBILITIES:
            raise ValueError(f"suite {self.name}: hidden_visibility must be one of "
                             f"{', '.join(GRADESCOPE_VISIBILITIES)}, got {self.hidden_visibility!r}")
        for fname, fn in self.functions.items():
            if not str(fname).isidentifier():
                raise ValueError(f"suite {self.name}: graded function name {fname!r} is not a Python identifier")
            if not isinstance(fn, Function):
                raise ValueError(f"suite {self.name}: functions[{fname!r}] must be a Function(...)")
        if not callable(self.make_cases):
            raise ValueError(f"suite {self.name}: make_cases must be callable(rng, visibility)")
        names = set()
        for c in self.checks:
            if not isinstance(c, Check):
                raise ValueError(f"suite {self.name}: checks must be Check(...) objects, got {type(c).__name__}")
            if c.name in names:
                raise ValueError(f"suite {self.name}: two checks are named {c.name!r}; names must be unique")
            names.add(c.name)
            if c.function not in self.functions:
                raise ValueError(f"suite {self.name}: check {c.name!r} grades unknown function {c.function!r}")
        from autograder.sandbox import runner_needs
        needed = runner_needs(self.runtime_without())
        if needed:
            raise ValueError(f"suite {self.name}: the grader cannot run notebooks without {', '.join(needed)}; "
                             f"forbid {'it' if len(needed) == 1 else 'them'} per function, not suite-wide")
        total = sum(float(c.points) for c in self.checks)
        if abs(total - TOTAL_POINTS) > 1e-9:
            raise ValueError(f"suite {self.name}: check points sum to {total:g}, they must sum to 100")
        return self

    # ------------------------------------------------------------------ helpers used by the grader
    def checks_for(self, visibility: str | None = None) -> list:
        """The checks of one visibility (all when None), in suite order."""
        return [c for c in self.checks if visibility is None or c.visibility == visibility]

    def visibilities(self, public_only: bool = False) -> tuple[str, ...]:
        """The visibilities to generate cases for: ("visible",) for `course check`, both for grading."""
        return ("visible",) if public_only else VISIBILITIES

    def forbidden_for(self, function: str) -> tuple[str, ...]:
        """Every import name forbidden for a function (suite-wide + the function's own)."""
        return tuple(dict.fromkeys(self.forbidden + self.functions[function].forbidden))

    def runtime_without(self) -> tuple[str, ...]:
        """The packages the grader's sandbox leaves out when it runs this suite's notebooks: the suite-wide
        forbidden names that are whole installed packages (``torch`` for the NumPy assignments; not modules of
        the standard library), so that no route past the static check (a computed import) reaches them."""
        return tuple(n for n in self.forbidden if "." not in n and n not in sys.stdlib_module_names)

    def allowed_text(self) -> str:
        """``allowed`` as one phrase: "NumPy", "NumPy and PyTorch (...)", "A, B and C"."""
        a = [str(x) for x in self.allowed] or ["NumPy"]
        return a[0] if len(a) == 1 else f"{', '.join(a[:-1])} and {a[-1]}"

    def rules_markdown(self) -> str:
        """What a student may use and what costs a function its points, as the student notebook states it
        (written there by `course release`, so it always says what this suite enforces)."""
        from autograder.sandbox import STUDENT_UNAVAILABLE

        code = lambda names: ", ".join(f"`{n}`" for n in names)   # noqa: E731
        groups: dict = {}
        for fname in self.functions:
            own = tuple(n for n in self.forbidden_for(fname) if n not in self.forbidden)
            if own:
                groups.setdefault(own, []).append(fname)
        absent = dict(STUDENT_UNAVAILABLE)
        for name in self.runtime_without():
            absent.setdefault(name, _SPOKEN_NAMES.get(name, name))
        unavailable = ", ".join(absent.values())
        lines = [
            f"**What you may use.** Write the graded functions with {self.allowed_text()}; the course's data "
            f"loaders and seeding (`course_lib.data`, `course_lib.seed_everything`) are there for the set-up "
            f"cells. When the grader runs your notebook, {unavailable} and course_lib's estimators cannot be "
            f"imported. A function gets no points when the notebook uses a name forbidden for it:",
            "",
        ]
        if len(groups) == 1 and len(next(iter(groups.values()))) == len(self.functions):
            lines.append(f"* every function: {code(self.forbidden + next(iter(groups)))};")
        else:
            lines.append(f"* every function: {code(self.forbidden)};")
            lines += [f"* {code(fnames)}: {code(names)};" for names, fnames in groups.items()]
        lines[-1] = lines[-1][:-1] + "."
        lines += ["", "A name the grader cannot read because it is built at run time (`getattr` with a computed "
                      "name, `exec`, a computed import) counts as every name it could reach."]
        return "\n".join(lines)

    def generate_cases(self, rng: np.random.Generator, visibility: str) -> dict:
        """Call ``make_cases`` and check what it returns; only functions with checks of this visibility."""
        wanted = {c.function for c in self.checks_for(visibility)}
        raw = self.make_cases(rng, visibility) or {}
        if not isinstance(raw, Mapping):
            raise ValueError(f"suite {self.name}: make_cases must return a dict {{function: [case, ...]}}")
        cases = {}
        for fname, lst in raw.items():
            if fname not in self.functions:
                raise ValueError(f"suite {self.name}: make_cases returned cases for unknown function {fname!r}")
            if fname not in wanted:
                continue
            if isinstance(lst, Mapping):
                lst = [lst]
            cases[fname] = [dict(c) for c in lst]
        missing = wanted - set(cases)
        if missing:
            raise ValueError(f"suite {self.name}: make_cases({visibility!r}) gave no cases for {sorted(missing)}")
        return cases

    @property
    def max_score(self) -> float:
        return TOTAL_POINTS


def case_arguments(case: Mapping[str, Any]) -> dict:
    """The keyword arguments the student's function is called with (keys not starting with ``_`` or
    ``probe_``: the first are the judge's, the second go to the function's probe)."""
    return {k: v for k, v in case.items() if not str(k).startswith(("_", "probe_"))}


def probe_arguments(case: Mapping[str, Any]) -> dict:
    """The keyword arguments of a function's probe (keys starting with ``probe_``, prefix removed)."""
    return {k[len("probe_"):]: v for k, v in case.items() if str(k).startswith("probe_")}


# ---------------------------------------------------------------------- ready-made judges
def reference_judge(reference: Callable[[Mapping[str, Any]], Any], rtol: float = 1e-7, atol: float = 1e-10,
                    mistakes: Mapping[str, Callable[[Mapping[str, Any]], Any]] | None = None,
                    output_index: int | None = None):
    """A judge comparing the output with ``reference(case)`` (expected vs got, known mistakes named).

    Parameters
    ----------
    reference : callable ``reference(case) -> expected``
        Usually course_lib's estimator on the case's inputs. Arrays, scalars, or tuples of those.
    rtol, atol : float
        Tolerances of ``numpy.allclose`` (state why in the suite: 1e-10 for float64 math, 1e-4 for float32).
    mistakes : dict name -> callable ``alt(case) -> alternative expected``
        Outputs a known mistake would produce (e.g. ``"biased_covariance"``); when the output matches one
        of them the feedback names it. Names in ``autograder.feedback.KNOWN_MISTAKES`` get a longer hint.
    output_index : int or None
        If the function returns a tuple, compare only this element.
    """
    def judge(case, output, ctx):
        from autograder.feedback import compare
        got = output
        if output_index is not None:
            if not isinstance(output, (tuple, list)) or len(output) <= output_index:
                return CheckResult(0.0, f"expected a tuple with at least {output_index + 1} elements, "
                                        f"got {type(output).__name__}")
            got = output[output_index]
        expected = reference(case)
        alts = {name: alt(case) for name, alt in (mistakes or {}).items()}
        return compare(got, expected, rtol=rtol, atol=atol, mistakes=alts)
    return judge


def invariant_judge(predicate: Callable[[Mapping[str, Any], Any], bool], message: str,
                    mistake: str | None = None, reference: Callable[[Mapping[str, Any]], Any] | None = None,
                    rtol: float = 1e-7, atol: float = 1e-10):
    """A judge passing when ``predicate(case, output)`` is true (and the output is the reference's, if given).

    Parameters
    ----------
    predicate : callable ``predicate(case, output) -> bool``
        The invariant (a sign, a bound, rows summing to 1, ...).
    message : str
        Shown when the predicate is false.
    mistake : str or None
        The known mistake a false predicate stands for.
    reference : callable ``reference(case) -> expected``, optional
        Wherever a reference exists, pass it: an invariant alone is satisfied by degenerate outputs (zeros
        satisfy KL >= 0, -1e300 satisfies every upper bound), so the check is then credited only when the
        output also matches the reference within ``rtol``/``atol``.
    """
    def judge(case, output, ctx):
        if not bool(predicate(case, output)):
            return CheckResult(0.0, message, mistake)
        if reference is not None:
            from autograder.feedback import compare
            res = compare(output, reference(case), rtol=rtol, atol=atol)
            if not res.passed:
                return CheckResult(0.0, "the property holds, but only the right value earns it:\n" + res.message)
        return CheckResult(1.0)
    return judge


def replace(suite: Suite, **changes) -> Suite:
    """A copy of ``suite`` with some fields changed (validated again)."""
    return dataclasses.replace(suite, **changes)
