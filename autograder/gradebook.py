"""`course gradebook HW RESULTS_DIR`: ``course grade``'s results in nbgrader's gradebook, so formgrader shows them.

``course grade`` is the course's only autograder; nbgrader is where many courses keep their grades (formgrader,
``nbgrader export``, feedback). This module writes the results of one assignment into an nbgrader gradebook
through nbgrader's own API (``nbgrader.api.Gradebook`` and its database), so that every score there is the
score ``course grade`` gave:

* the assignment ``HW`` and its notebook (the suite's notebook name, e.g. ``hw2_em``);
* one grade cell ``test_<function>`` per graded function, worth that function's points in the suite (the
  points its test cell has in the solution notebook), and one solution cell ``<function>`` (formgrader keeps
  its comments there);
* one student per result: ``extra_data["student"]`` when the grader knew who it was (``autograder.students``
  reads it from an nbgrader exchange, Classroom or LMS layout), else the submission's name;
* one submission per student, its grade in each grade cell the sum of the suite's checks of that function
  (as ``auto_score``: a score a grader types into formgrader, ``manual_score``, overrides it and survives a
  re-import). A roster's student without a submission ("no submission") gets a student entry and no
  submission, as nbgrader shows one who never submitted.

Left out, each with one line (and exit status 1): a student with two results, a result graded with another
version of the suite, a ``course check`` result (public checks only), and a result the grader failed on.

Importing the same results again changes nothing. With ``--course-dir`` (an nbgrader course folder in nbgrader's
default layout, ``<step>/<student>/<assignment>``), a student whose notebook is in ``submitted/<student>/HW/``
and is byte for byte the notebook ``course grade`` graded (``extra_data["submission_sha256"]``) also gets it
copied to ``autograded/<student>/HW/`` with its ``timestamp.txt``, and the submission's timestamp from it:
formgrader lists a submission as graded only then. The copy lacks any mark of a grade, solution or task cell
that the gradebook does not have (formgrader's notebook view would fail on it), and shows nothing active:
formgrader renders it on the Jupyter server's own origin (:func:`formgrader_copy`). A submitted notebook that
differs (handed in again after grading) is not copied, and the command says so.

Usage::

    course grade course/submitted --assignment hw2_em --out grades/hw2_em
    course gradebook hw2_em grades/hw2_em --course-dir course      # course/gradebook.db, formgrader's
    course gradebook hw2_em grades/hw2_em --db sqlite:///gradebook.db
"""
from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["GRADE_CELL_PREFIX", "function_points", "grade_cell_name", "student_id", "function_scores",
           "read_results", "database_url", "ImportSummary", "import_results", "gradebook_command",
           "gradebook_cells", "formgrader_copy"]

#: A graded function's grade cell in the gradebook is ``test_<function>``, the grade_id of its test cell.
GRADE_CELL_PREFIX = "test_"
#: The most a submitted ``timestamp.txt`` may hold (nbgrader writes one line).
_MAX_TIMESTAMP_BYTES = 256


def grade_cell_name(function: str) -> str:
    return f"{GRADE_CELL_PREFIX}{function}"


def function_points(suite) -> dict:
    """``{function: points}``: the points of each graded function's checks (visible and hidden) together,
    in the suite's order; functions without checks are left out."""
    points = {}
    for check in suite.checks:
        points[check.function] = points.get(check.function, 0.0) + float(check.points)
    return {f: points[f] for f in suite.functions if f in points}


def student_id(results: dict, folder: str) -> str:
    """The gradebook's student id of a result: ``extra_data["student"]``, else the submission's name, else the
    name of the folder the result is in."""
    ed = results.get("extra_data") or {}
    for value in (ed.get("student"), ed.get("submission"), folder):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return folder


def function_scores(suite, results: dict) -> dict:
    """``{function: score}`` of one result: the sum of the scores of the function's checks, rounded as the
    report rounds (4 decimals). A result without tests (the notebook could not be graded) scores 0 everywhere.

    Raises ValueError (one line) when a test is not one of the suite's checks or has other points: the result
    was graded with another version of the suite.
    """
    checks = {c.name: c for c in suite.checks}
    scores = {f: 0.0 for f in function_points(suite)}
    for test in results.get("tests") or []:
        check = checks.get(test.get("name"))
        if check is None or abs(float(test.get("max_score", -1)) - float(check.points)) > 1e-9:
            raise ValueError(f"graded with another version of the {suite.name} suite (check "
                             f"{str(test.get('name'))[:60]!r} differs): grade it again before importing")
        scores[check.function] += float(test.get("score", 0.0))
    return {f: round(s, 4) for f, s in scores.items()}


def read_results(results_dir, suite) -> tuple:
    """``([(folder, results), ...], skipped)``: the complete results of ``suite`` in ``RESULTS_DIR/*/results.json``
    (sorted by folder), and how many results.json files were incomplete or of another assignment.

    Raises ValueError (one line) when the folder does not exist.
    """
    from autograder import report

    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ValueError(f"{results_dir}: no such folder; give the --out folder of `course grade`")
    found, skipped = [], 0
    for path in sorted(results_dir.glob(f"*/{report.RESULTS_FILE}")):
        res = report.read_complete(path, assignment=suite.name)
        if res is None:
            skipped += 1
        else:
            found.append((path.parent.name, res))
    return found, skipped


def database_url(db: str | None, course_dir=None) -> str:
    """The gradebook's SQLAlchemy URL: ``db`` as given (a plain file name means an SQLite file), else
    ``COURSE_DIR/gradebook.db`` (nbgrader's own default there), else ``gradebook.db`` here."""
    if db:
        return db if "://" in db else f"sqlite:///{Path(db).resolve()}"
    if course_dir is not None:
        return f"sqlite:///{Path(course_dir).resolve() / 'gradebook.db'}"
    return "sqlite:///gradebook.db"


def _shown_url(url: str) -> str:
    """The URL without its password (for messages)."""
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1] if "@" in url else url


@dataclass
class ImportSummary:
    """What an import did: submissions ``created``, ``updated`` (some grade or timestamp changed) and
    ``unchanged``; ``no_submission`` (students with none), ``copied`` (notebooks written to ``autograded/``),
    and ``problems`` (one line each: results left out or notebooks not copied)."""

    assignment: str
    url: str
    created: list = field(default_factory=list)
    updated: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)
    no_submission: list = field(default_factory=list)
    copied: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    def line(self) -> str:
        n = len(self.created) + len(self.updated) + len(self.unchanged)
        parts = [f"{len(self.created)} new", f"{len(self.updated)} updated", f"{len(self.unchanged)} unchanged"]
        extra = f"; {len(self.no_submission)} without a submission" if self.no_submission else ""
        copied = f"; {len(self.copied)} notebook(s) copied to autograded/" if self.copied else ""
        return (f"{self.assignment}: {n} submission(s) in {_shown_url(self.url)} ({', '.join(parts)}){extra}"
                f"{copied}")


# ------------------------------------------------------------------------------ the nbgrader course folder
def _safe_component(name: str) -> bool:
    """True when ``name`` is one plain path component (a student id used as a folder name)."""
    return (bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name
            and os.sep not in name)


def _no_links(path: Path, base: Path) -> bool:
    """True when neither ``path`` nor any folder between ``base`` and it is a symbolic link."""
    rel = path.relative_to(base)
    cur = base
    for part in rel.parts:
        cur = cur / part
        try:
            if stat.S_ISLNK(os.lstat(cur).st_mode):
                return False
        except FileNotFoundError:
            return True
    return True


def _read_small(path: Path, limit: int) -> bytes | None:
    """The first ``limit + 1`` bytes (at most) of a regular file, never through a link; None when it is not one
    (more than ``limit`` bytes back means the file is larger than ``limit``)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = bytearray()
        while len(data) <= limit:
            chunk = os.read(fd, limit + 1 - len(data))
            if not chunk:
                break
            data += chunk
        return bytes(data)
    finally:
        os.close(fd)


#: The marks of a cell that formgrader's notebook view looks up in the gradebook by the cell's grade_id.
_LOOKED_UP = ("grade", "solution", "task")


def gradebook_cells(gb, notebook: str, assignment: str) -> dict:
    """The cells the gradebook has for ``notebook``, by kind.

    Returns
    -------
    dict
        ``{"grade": names, "solution": names, "task": names}``: what formgrader's notebook view looks up by a
        cell's grade_id.
    """
    nb = gb.find_notebook(notebook, assignment)
    return {"grade": {c.name for c in nb.grade_cells}, "solution": {c.name for c in nb.solution_cells},
            "task": {c.name for c in nb.task_cells}}


#: What formgrader may show as it is: HTML (a Markdown cell or output as nbconvert renders it, an HTML output, a
#: raw cell) made only of these tags and attributes, written as nbconvert's Markdown renderer writes them
#: (lower case, values in double quotes), with links and images to these URL schemes (or none: relative to the
#: page; data: only for an image). Anything else, or anything in another spelling, is not shown as HTML: a
#: browser's parser and this check could disagree about it.
_TAGS = frozenset("a abbr b blockquote br caption center cite code col colgroup dd del details div dl dt em h1 h2 "
                  "h3 h4 h5 h6 hr i img input kbd li mark ol p pre q s small span strong sub summary sup table "
                  "tbody td tfoot th thead tr u ul".split())
_ATTRIBUTES = frozenset("href src alt title class id align colspan rowspan start width height border type "
                        "disabled checked style".split())
_SAFE_SCHEMES = frozenset({"http", "https", "mailto", "attachment"})
_TAG = re.compile(r'<(/?)([a-z][a-z0-9]*)((?:\s+[a-z-]+(?:="[^"<>]*")?)*)\s*/?>')
_ATTRIBUTE = re.compile(r'([a-z-]+)(?:="([^"<>]*)")?')
_TEXT_ALIGN = re.compile(r"text-align:\s*(?:left|right|center);?")
#: Classes the renderers write (heading anchors, task lists, code highlighting: Pygments' short token classes,
#: pandas' tables); the page's own stylesheet (Bootstrap) has classes that lay an invisible element over the
#: whole window (``modal-backdrop fade``), so no other class is shown.
_CLASS = re.compile(r"anchor-link|task-list-item|task-list-item-checkbox|highlight|dataframe|[a-z]{1,3}[0-9]?")
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
#: Output types formgrader may show (others, JavaScript and SVG among them, are dropped), and the metadata its
#: templates read with the type each value must have: ``width`` and ``height`` are written unquoted, so
#: ``"1 onerror=..."`` became an attribute of its own.
_OUTPUT_TYPES = frozenset({"text/plain", "text/html", "text/markdown", "text/latex", "image/png", "image/jpeg"})
_OUTPUT_METADATA = {"width": int, "height": int, "alt": str, "unconfined": bool}
#: Cell metadata the templates read, and the type each value must have (an int ``raw_mimetype`` or
#: ``magics_language`` made formgrader's page fail).
_CELL_METADATA = {"raw_mimetype": str, "magics_language": str, "alt": str, "transient": dict}
#: Text rendered or checked per text, per notebook in all, and the sum of the squares of the texts' lengths per
#: notebook: nbconvert's Markdown math takes quadratic time (64 KiB of ``\begin{a}``: 3.9 s, again at each view
#: of the page); past them a text is not shown as HTML. Outputs shown per notebook (250,000 empty ones took 40 s
#: and 2 GB to copy).
_CHECK_TEXT_CHARS = 64 * 1024
_CHECK_NOTEBOOK_CHARS = 1 << 20
_CHECK_NOTEBOOK_SQUARES = (64 * 1024) ** 2
_MAX_OUTPUTS = 10_000


def _active(html_text: str) -> bool:
    """Whether HTML holds anything but the plain markup above, as it is or as formgrader's template serves it
    (its ``strip_files_prefix`` turns ``href="files/javascript:..."`` into a javascript: link)."""
    from nbconvert.filters.strings import strip_files_prefix
    return _markup_active(html_text) or _markup_active(strip_files_prefix(html_text))


def _markup_active(html_text: str) -> bool:
    """Every ``<`` must open or close an allowed tag, with allowed attributes only, ``style`` only for text
    alignment, ``class`` only the renderers' classes, and ``href``/``src`` of a safe scheme as a browser reads
    them (entities decoded, whitespace and control characters removed)."""
    for lt in re.finditer("<", html_text):
        tag = _TAG.match(html_text, lt.start())
        if tag is None or tag.group(2) not in _TAGS:
            return True
        for name, value in _ATTRIBUTE.findall(tag.group(3)):
            if name not in _ATTRIBUTES or name == "style" and not _TEXT_ALIGN.fullmatch(value) \
                    or name == "class" and not all(_CLASS.fullmatch(c) for c in value.split()):
                return True
            url = re.sub(r"[\x00-\x20\x7f]", "", html.unescape(value)).lower()
            scheme = _SCHEME.match(url) if name in ("href", "src") else None
            if scheme and scheme.group(1) not in _SAFE_SCHEMES and not (name == "src" and url.startswith("data:image/")):
                return True
    return False


class _Shown:
    """Decides what of one notebook formgrader may show as HTML, within the budgets above."""

    def __init__(self):
        self.left, self.squares = _CHECK_NOTEBOOK_CHARS, _CHECK_NOTEBOOK_SQUARES

    def _affordable(self, text: str) -> bool:
        if len(text) > min(_CHECK_TEXT_CHARS, self.left) or len(text) ** 2 > self.squares:
            return False
        self.left -= len(text)
        self.squares -= len(text) ** 2
        return True

    def html(self, text: str) -> bool:
        return self._affordable(text) and not _active(text)

    def markdown(self, text: str, attachments=None) -> bool:
        from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
        if not self._affordable(text):
            return False
        try:   # as nbconvert's HTMLExporter renders Markdown for formgrader
            rendered = MarkdownWithMath(renderer=IPythonRenderer(escape=False, attachments=attachments)).render(text)
        except Exception:   # noqa: BLE001 - e.g. a missing attachment: formgrader could not render it either
            return False
        return not _active(rendered)


def _make_inert(nb) -> bool:
    """Make a notebook (an nbformat node) show nothing active in formgrader; whether anything changed. A Markdown
    cell that would render otherwise shows its source in a code block (:func:`autograder.report.escape_markdown`),
    a raw cell its source escaped; an HTML or Markdown output that would is dropped (its text/plain stays), as
    is every output type not in ``_OUTPUT_TYPES``, and an output left with none; cell and output metadata that
    the templates read keep only values of the types they expect."""
    from autograder.report import escape_markdown

    shown, changed = _Shown(), False
    for cell in nb.cells:
        if cell.cell_type == "markdown" and not shown.markdown(cell.source, cell.get("attachments")):
            cell.source, changed = escape_markdown(cell.source, block=True), True
        elif cell.cell_type == "raw" and not shown.html(cell.source):
            cell.source, changed = html.escape(cell.source, quote=False), True
        wrong = [k for k, t in _CELL_METADATA.items() if k in cell.metadata and not isinstance(cell.metadata[k], t)]
        for key in wrong:
            del cell.metadata[key]
        changed |= bool(wrong)
        outputs = []
        for output in cell.get("outputs", []):
            plain = _plain_metadata(output.get("metadata"))
            if "metadata" in output and output.metadata != plain:
                output.metadata, changed = plain, True
            data = output.get("data")
            for mime in list(data or ()):
                if mime not in _OUTPUT_TYPES or mime == "text/html" and not shown.html(data[mime]) \
                        or mime == "text/markdown" and not shown.markdown(data[mime]):
                    del data[mime]
                    changed = True
            if data is None or data:                                  # an output left with nothing is dropped
                outputs.append(output)
        if len(outputs) != len(cell.get("outputs", [])):
            cell.outputs, changed = outputs, True
    return changed


def _plain_metadata(meta) -> dict:
    """An output's metadata reduced to what nbconvert's templates read, each value of the type they expect."""
    out = {}
    for mime, values in (meta or {}).items():
        if isinstance(values, dict):
            kept = {k: v for k, v in values.items() if k in _OUTPUT_METADATA and type(v) is _OUTPUT_METADATA[k]}
            if kept:
                out[mime] = kept
    return out


def formgrader_copy(data: bytes, cells: dict) -> bytes:
    """The submitted notebook as ``autograded/`` holds it for formgrader.

    formgrader's notebook view looks up every cell marked as a grade, solution or task cell by its grade_id,
    and fails on one the gradebook lacks (or on a mark that is not a dict): a notebook with made-up marks could
    not be opened there, nor a grade be changed by hand. Such marks are dropped. When several cells carry the
    same mark, the last keeps it, as nbgrader's own ``DeduplicateIds`` does.

    formgrader shows the notebook as HTML in the grader's browser, on the Jupyter server's own origin, and passes
    a Markdown cell's HTML, a ``[link](javascript:...)``, a JavaScript output and an image's size metadata
    through: a student's script would run with the grader's session (their gradebook, the hidden tests, a
    terminal). :func:`_make_inert` keeps as HTML only what renders to plain markup and shows the rest as text.
    (nbconvert's ``SanitizeHTML`` is not used: it escapes the ``&`` of every LaTeX matrix in Markdown, and
    Markdown links and output metadata are not HTML to it.) An honest notebook comes out byte for byte; one that
    nbformat does not accept (formgrader could not show it) is not copied.

    Parameters
    ----------
    data : bytes
        The submitted notebook (JSON that ``autograder.grading.read_submission`` accepted).
    cells : dict
        The gradebook's cells, from :func:`gradebook_cells`.

    Returns
    -------
    bytes
        ``data`` itself when nothing is dropped or made inert, else the notebook so changed.

    Raises
    ------
    ValueError
        When the notebook's cells cannot be read as nbformat's (it is then not copied).
    """
    nb = json.loads(data)
    seen, changed = set(), False
    for cell in reversed(nb.get("cells") or []):
        meta = cell.get("metadata") if isinstance(cell, dict) else None
        if not isinstance(meta, dict) or "nbgrader" not in meta:
            continue
        mark = meta["nbgrader"]
        if isinstance(mark, dict):
            roles = [role for role in _LOOKED_UP if mark.get(role)]
            if not roles:
                continue                                  # a mark formgrader does not look up
            grade_id = mark.get("grade_id")
            if isinstance(grade_id, str) and grade_id not in seen and all(grade_id in cells[r] for r in roles):
                seen.add(grade_id)
                continue
        del meta["nbgrader"]
        changed = True
    shown = 0
    for cell in nb.get("cells") or []:
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        if isinstance(outputs, list):
            if len(outputs) > _MAX_OUTPUTS - shown:
                cell["outputs"], changed = outputs[:_MAX_OUTPUTS - shown], True
            shown += len(cell["outputs"])
    import nbformat
    try:
        node = nbformat.reads(json.dumps(nb), as_version=4)
        changed |= _make_inert(node)
        nbformat.validate(node)
    except Exception as exc:   # noqa: BLE001 - a cell or output of a shape nbformat does not have
        raise ValueError(f"formgrader could not show it: it is not a valid notebook ({type(exc).__name__})") \
            from None
    return (nbformat.writes(node) + "\n").encode("utf-8") if changed else data


def _sync_course_dir(course_dir: Path, suite, notebook: str, student: str, results: dict, cells: dict):
    """Copy the graded notebook of ``student`` from ``submitted/`` to ``autograded/`` in an nbgrader course folder
    (its nbgrader metadata made the gradebook's ``cells``: :func:`formgrader_copy`).

    Returns ``(timestamp, copied, problem)``: the UTC timestamp of the submitted ``timestamp.txt`` (None without
    one), whether a file in ``autograded/`` was written (not when it already held the same bytes), and one line
    when the notebook was not copied (None when it was, or when the student has no submitted folder).
    """
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import parse_utc

    from autograder import report
    from autograder.grading import notebook_limit, read_submission

    if not _safe_component(student):
        return None, False, f"{student!r} cannot be a folder name in {course_dir}: its notebook was not copied"
    cd = CourseDirectory(root=str(course_dir))
    submitted = Path(cd.format_path(cd.submitted_directory, student, suite.name))
    autograded = Path(cd.format_path(cd.autograded_directory, student, suite.name))
    if not submitted.is_dir():
        return None, False, None
    where = submitted.relative_to(course_dir)
    if not (_no_links(submitted, course_dir) and _no_links(autograded, course_dir)):
        return None, False, f"{where} or its autograded/ folder is a link: {student}'s notebook was not copied"
    sub = read_submission(submitted / f"{notebook}.ipynb", notebook_limit(suite))
    graded = (results.get("extra_data") or {}).get("submission_sha256")
    if sub.problem or sub.sha256 != graded:
        why = sub.problem or "it differs from the notebook `course grade` graded"
        return None, False, (f"{where}/{notebook}.ipynb: {why}; grade it again, then import "
                            f"(formgrader lists {student} as not autograded until then)")
    stamp_bytes = _read_small(submitted / "timestamp.txt", _MAX_TIMESTAMP_BYTES)
    timestamp = None
    if stamp_bytes is not None:
        try:
            if len(stamp_bytes) <= _MAX_TIMESTAMP_BYTES:
                timestamp = parse_utc(stamp_bytes.decode("utf-8").strip())
        except (ValueError, OverflowError, UnicodeDecodeError):
            timestamp = None
        if timestamp is None:
            return None, False, f"{where}/timestamp.txt is not a timestamp: {student}'s notebook was not copied"
    copied = False
    try:
        shown = formgrader_copy(sub.data, cells)
    except ValueError as exc:
        return None, False, f"{where}/{notebook}.ipynb: {exc}; {student}'s notebook was not copied"
    for target, data in ((autograded / f"{notebook}.ipynb", shown), (autograded / "timestamp.txt", stamp_bytes)):
        if data is not None and _read_small(target, len(data)) != data:
            report.write_atomic(target, data)
            copied = True
    return timestamp, copied, None


# ------------------------------------------------------------------------------ the gradebook
@contextlib.contextmanager
def _alembic_on_path():
    """nbgrader stamps a new database by running the ``alembic`` command found on PATH; when this Python's
    environment is not activated, its own ``alembic`` (next to the interpreter) is put first on PATH for as
    long as the gradebook is being opened, then PATH is restored."""
    own = Path(sys.executable).parent / "alembic"
    if shutil.which("alembic") or not own.is_file():
        yield
        return
    before = os.environ.get("PATH")
    os.environ["PATH"] = os.pathsep.join(p for p in (str(own.parent), before) if p)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = before


def _ensure_structure(gb, suite, notebook: str) -> list:
    """The assignment, its notebook, one grade cell per graded function and one solution cell per function;
    every existing submission of the notebook gets the grade and comment rows nbgrader keeps for them.
    Returns the names of the notebook's other grade cells (not course grade's), sorted."""
    from nbgrader.api import Comment, Grade, MissingEntry

    gb.update_or_create_assignment(suite.name)
    gb.update_or_create_notebook(notebook, suite.name)
    for function, points in function_points(suite).items():
        try:
            cell = gb.find_grade_cell(grade_cell_name(function), notebook, suite.name)
        except MissingEntry:
            cell = None
        if cell is None or cell.max_score != points or cell.cell_type != "code":
            gb.update_or_create_grade_cell(grade_cell_name(function), notebook, suite.name,
                                           max_score=points, cell_type="code")
        try:
            gb.find_solution_cell(function, notebook, suite.name)
        except MissingEntry:
            gb.update_or_create_solution_cell(function, notebook, suite.name)
    nb = gb.find_notebook(notebook, suite.name)
    ours = {grade_cell_name(f) for f in function_points(suite)}
    others = sorted(c.name for c in nb.grade_cells if c.name not in ours)
    added = False
    for submitted in gb.notebook_submissions(notebook, suite.name):   # rows nbgrader's add_submission makes
        graded = {g.cell_id for g in submitted.grades}
        commented = {c.cell_id for c in submitted.comments}
        for cell in nb.grade_cells:
            if cell.id not in graded:
                gb.db.add(Grade(cell_id=cell.id, notebook=submitted))
                added = True
        for cell in nb.solution_cells:
            if cell.id not in commented:
                gb.db.add(Comment(cell_id=cell.id, notebook=submitted))
                added = True
    if added:
        gb.db.commit()
    return others


def _record(gb, suite, notebook: str, student: str, scores: dict, timestamp) -> str:
    """Write one submission's grades; return "created", "updated" or "unchanged"."""
    from nbgrader.api import MissingEntry

    gb.update_or_create_student(student)
    try:
        submission = gb.find_submission(suite.name, student)
        outcome = "unchanged"
    except MissingEntry:
        kwargs = {"timestamp": timestamp} if timestamp is not None else {}
        with gb.db.no_autoflush:      # nbgrader builds the submission's rows before adding it to the session
            submission = gb.add_submission(suite.name, student, **kwargs)
        outcome = "created"
    if timestamp is not None and submission.timestamp != timestamp:
        submission.timestamp = timestamp
        outcome = outcome if outcome == "created" else "updated"
    for function, score in scores.items():
        grade = gb.find_grade(grade_cell_name(function), notebook, suite.name, student)
        if grade.auto_score is None or abs(grade.auto_score - score) > 1e-12 or grade.needs_manual_grade:
            grade.auto_score = score
            grade.needs_manual_grade = False
            outcome = outcome if outcome == "created" else "updated"
    gb.db.commit()
    return outcome


def import_results(assignment, results_dir, db: str | None = None, course_dir=None,
                   course_id: str | None = None) -> ImportSummary:
    """Write the results of ``course grade`` for ``assignment`` (``RESULTS_DIR/*/results.json``) into an
    nbgrader gradebook; see the module's docstring for what goes where.

    Parameters
    ----------
    assignment : str
        The assignment (a suite name such as ``"hw2_em"``, or a suite file).
    results_dir : path
        The ``--out`` folder of ``course grade``.
    db : str or None
        The gradebook's SQLAlchemy URL or an SQLite file; default ``database_url(None, course_dir)``.
    course_dir : path or None
        An nbgrader course folder: graded notebooks are copied from its ``submitted/`` to ``autograded/``.
    course_id : str or None
        nbgrader's course id (default: nbgrader's, as ``nbgrader`` commands use it).

    Returns
    -------
    ImportSummary

    Raises
    ------
    ValueError
        One line: unknown assignment, no such folder, no complete result of the assignment in it, or a
        database that cannot be opened.
    """
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    from autograder.suites import load_suite

    suite = load_suite(assignment)
    notebook = Path(suite.notebook).stem
    course_dir = Path(course_dir).resolve() if course_dir is not None else None
    if course_dir is not None and not course_dir.is_dir():
        raise ValueError(f"--course-dir {course_dir}: no such folder; give the nbgrader course folder")
    found, skipped = read_results(results_dir, suite)
    if not found:
        raise ValueError(f"{results_dir} holds no complete result of {suite.name}: run `course grade ... "
                         f"--assignment {suite.name} --out {results_dir}` first")
    url = database_url(db, course_dir)
    summary = ImportSummary(suite.name, url)
    if skipped:
        summary.problems.append(f"{skipped} results.json in {results_dir} are incomplete or of another "
                                f"assignment: left out")

    by_student = {}
    for folder, res in found:
        by_student.setdefault(student_id(res, folder), []).append((folder, res))
    entries = []
    for student, items in by_student.items():
        if len(items) > 1:
            summary.problems.append(f"student {student} has {len(items)} results ("
                                    f"{', '.join(f for f, _ in items)}): keep one and import again")
            continue
        folder, res = items[0]
        ed = res.get("extra_data") or {}
        if ed.get("public_only"):
            summary.problems.append(f"{folder}: a `course check` result (public checks only): left out")
            continue
        if ed.get("no_submission"):
            entries.append((student, folder, res, None))
            continue
        if ed.get("error") and str(ed.get("reason", "")).startswith("grader error"):
            summary.problems.append(f"{folder}: the grader failed on it, its 0 is no grade: grade it again")
            continue
        try:
            entries.append((student, folder, res, function_scores(suite, res)))
        except ValueError as exc:
            summary.problems.append(f"{folder}: {exc}")

    if course_id is None:
        course_id = CourseDirectory().course_id
    try:
        with _alembic_on_path():
            gb = Gradebook(url, course_id=course_id)
    except Exception as exc:          # SQLAlchemy: a bad URL, a missing driver, a file that is no database
        raise ValueError(f"cannot open the gradebook {_shown_url(url)}: {str(exc).splitlines()[0][:200]}") from None
    with gb:
        others = _ensure_structure(gb, suite, notebook)
        cells = gradebook_cells(gb, notebook, suite.name)
        if others:
            summary.problems.append(f"the gradebook's notebook {notebook} also has grade cells {', '.join(others)}, "
                                    f"which course grade does not score: formgrader's totals include them")
        for student, folder, res, scores in entries:
            if scores is None:
                gb.update_or_create_student(student)
                summary.no_submission.append(student)
                continue
            timestamp = None
            if course_dir is not None:
                timestamp, copied, problem = _sync_course_dir(course_dir, suite, notebook, student, res, cells)
                if problem:
                    summary.problems.append(problem)
                if copied:
                    summary.copied.append(student)
            getattr(summary, _record(gb, suite, notebook, student, scores, timestamp)).append(student)
    return summary


def gradebook_command(args) -> int:
    """`course gradebook HW RESULTS_DIR [--db URL] [--course-dir DIR] [--course-id ID]`."""
    try:
        summary = import_results(args.assignment, args.results, db=getattr(args, "db", None),
                                 course_dir=getattr(args, "course_dir", None),
                                 course_id=getattr(args, "course_id", None))
    except ValueError as exc:
        print(f"course gradebook: {exc}", file=sys.stderr)
        return 2
    print(summary.line())
    for problem in summary.problems:
        print(f"course gradebook: {problem}", file=sys.stderr)
    return 1 if summary.problems else 0
