"""The in-class polls: ask a question from the poll bank, let the student answer and check, reveal the answer.

The polls live in one bank, ``lectures/polls.json`` (``$COURSE_POLLS_FILE`` overrides the path). A lecture asks
one with ``ask("em_elbo")``. In JupyterLab that shows, for every question of the poll, the options as radio
buttons (one correct option) or check boxes (select all that apply), a *Check* button and a *Reveal answer*
button. Where widgets cannot be shown (no ipywidgets, a plain Python console, a notebook executed by papermill
and read as text) the same poll appears as plain text, and ``answer(poll_id)`` prints the answer key.

Set ``COURSE_POLLS=text`` to force the plain-text form.
"""
from __future__ import annotations

import json
import os
import textwrap
from functools import lru_cache
from pathlib import Path

__all__ = ["bank_path", "load_polls", "get_poll", "validate_poll", "check", "poll_text", "answer_text",
           "ask", "answer", "Poll"]

_KINDS = ("single", "multiple")


def bank_path() -> Path:
    """The poll bank: ``$COURSE_POLLS_FILE`` if set, else ``lectures/polls.json`` of the course folder."""
    from course_lib.paths import course_root
    env = os.environ.get("COURSE_POLLS_FILE")
    if env:
        return Path(env)
    return course_root() / "lectures" / "polls.json"


def validate_poll(poll: dict) -> None:
    """Raise ``ValueError`` (one line) when a poll lacks an id, a question, options or a consistent answer key."""
    pid = poll.get("id") if isinstance(poll, dict) else None
    if not isinstance(pid, str) or not pid:
        raise ValueError("every poll needs a non-empty string 'id'")
    for key in ("title", "lecture"):
        if not isinstance(poll.get(key), str) or not poll[key]:
            raise ValueError(f"poll {pid!r}: give it a non-empty string {key!r}")
    questions = poll.get("questions")
    if not isinstance(questions, list) or not questions:
        raise ValueError(f"poll {pid!r}: 'questions' must be a non-empty list")
    for i, q in enumerate(questions):
        where = f"poll {pid!r}, question {i}"
        if not isinstance(q.get("prompt"), str) or not q["prompt"].strip():
            raise ValueError(f"{where}: 'prompt' must be a non-empty string")
        if q.get("kind") not in _KINDS:
            raise ValueError(f"{where}: 'kind' must be one of {_KINDS}, got {q.get('kind')!r}")
        options = q.get("options")
        if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) and o for o in options):
            raise ValueError(f"{where}: 'options' must list at least two non-empty strings")
        if len(set(options)) != len(options):
            raise ValueError(f"{where}: two options have the same text; make every option distinct")
        ans = q.get("answer")
        if (not isinstance(ans, list) or not ans or not all(isinstance(a, int) and not isinstance(a, bool) for a in ans)
                or len(set(ans)) != len(ans) or any(a < 0 or a >= len(options) for a in ans)):
            raise ValueError(f"{where}: 'answer' must list distinct option indices between 0 and {len(options) - 1}")
        if q["kind"] == "single" and len(ans) != 1:
            raise ValueError(f"{where}: a 'single' question has exactly one correct option; use kind 'multiple'")
        if not isinstance(q.get("explanation", ""), str):
            raise ValueError(f"{where}: 'explanation' must be a string")


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"poll bank {path} not found; set COURSE_POLLS_FILE to the bank's path") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"poll bank {path} is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    polls = data.get("polls") if isinstance(data, dict) else None
    if not isinstance(polls, list):
        raise ValueError(f"poll bank {path} must be an object with a list 'polls'")
    out = {}
    for poll in polls:
        validate_poll(poll)
        if poll["id"] in out:
            raise ValueError(f"poll bank {path}: the id {poll['id']!r} is used twice")
        out[poll["id"]] = poll
    return out


def load_polls(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """Every poll of the bank, validated, as ``{poll_id: poll}`` in the bank's order."""
    p = Path(path) if path is not None else bank_path()
    mtime = p.stat().st_mtime if p.exists() else 0.0
    return dict(_load(str(p), mtime))


def get_poll(poll_id: str, path: str | os.PathLike | None = None) -> dict:
    polls = load_polls(path)
    if poll_id not in polls:
        raise ValueError(f"no poll {poll_id!r} in the bank; known polls: {', '.join(polls)}")
    return polls[poll_id]


def check(poll_id: str, question: int, selected) -> bool:
    """Whether ``selected`` (an option index or a collection of indices) is exactly the right answer."""
    poll = get_poll(poll_id)
    if not 0 <= question < len(poll["questions"]):
        raise ValueError(f"poll {poll_id!r} has questions 0..{len(poll['questions']) - 1}, not {question}")
    if selected is None:
        chosen = set()
    elif isinstance(selected, int):
        chosen = {selected}
    else:
        chosen = set(selected)
    return chosen == set(poll["questions"][question]["answer"])


def _wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent + "   ")


def poll_text(poll_id: str) -> str:
    """The poll as plain text: title, every question with lettered options, no answers."""
    poll = get_poll(poll_id)
    lines = [poll["title"]]
    for i, q in enumerate(poll["questions"]):
        hint = "(one answer)" if q["kind"] == "single" else "(select all that apply)"
        lines.append("")
        lines.append(_wrap(f"Q{i + 1}. {q['prompt']} {hint}"))
        for k, opt in enumerate(q["options"]):
            lines.append(_wrap(f"({chr(97 + k)}) {opt}", "   "))
    lines.append("")
    lines.append(f"[answer key: course_lib.polls.answer({poll_id!r})]")
    return "\n".join(lines)


def answer_text(poll_id: str) -> str:
    """The answer key of a poll as plain text, with the explanations."""
    poll = get_poll(poll_id)
    lines = [f"{poll['title']}: answers"]
    for i, q in enumerate(poll["questions"]):
        letters = ", ".join(chr(97 + a) for a in sorted(q["answer"]))
        lines.append(_wrap(f"Q{i + 1}: {letters}. {q.get('explanation', '')}".rstrip()))
    return "\n".join(lines)


def answer(poll_id: str) -> None:
    """Print the answer key of a poll."""
    print(answer_text(poll_id))


def _widgets_wanted() -> bool:
    if os.environ.get("COURSE_POLLS", "").lower() == "text":
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Poll:
    """One poll, displayed as widgets in JupyterLab and as plain text everywhere else.

    The text form is also the ``text/plain`` part of the widget's display, so a notebook executed without a
    browser (papermill, nbconvert) still reads as a question with options.
    """

    def __init__(self, poll_id: str, widgets: bool | None = None):
        self.poll = get_poll(poll_id)
        self.poll_id = poll_id
        self.use_widgets = _widgets_wanted() if widgets is None else bool(widgets)
        self._box = self._build() if self.use_widgets else None

    # -- plain text ------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return poll_text(self.poll_id)

    def _repr_mimebundle_(self, include=None, exclude=None):
        if self._box is None:
            return {"text/plain": poll_text(self.poll_id)}
        bundle = self._box._repr_mimebundle_(include=include, exclude=exclude) or {}
        if isinstance(bundle, tuple):  # (data, metadata)
            data, meta = bundle
            data = dict(data, **{"text/plain": poll_text(self.poll_id)})
            return data, meta
        return dict(bundle, **{"text/plain": poll_text(self.poll_id)})

    # -- widgets ---------------------------------------------------------------------------------------------
    def _build(self):
        import ipywidgets as w

        rows = [w.HTML(f"<h4 style='margin:4px 0'>{_esc(self.poll['title'])}</h4>")]
        for i, q in enumerate(self.poll["questions"]):
            rows.append(self._question(w, i, q))
        return w.VBox(rows, layout=w.Layout(border="1px solid #bbb", padding="6px 10px", margin="6px 0"))

    def _question(self, w, i, q):
        labels = [f"({chr(97 + k)}) {opt}" for k, opt in enumerate(q["options"])]
        wide = w.Layout(width="auto")
        if q["kind"] == "single":
            hint = "one answer"
            chooser = w.RadioButtons(options=labels, value=None, layout=wide)
            choices = [chooser]

            def selected():
                return [] if chooser.value is None else [labels.index(chooser.value)]
        else:
            hint = "select all that apply"
            choices = [w.Checkbox(value=False, description=lab, indent=False, layout=wide) for lab in labels]

            def selected():
                return [k for k, c in enumerate(choices) if c.value]

        feedback = w.HTML("")
        check_btn = w.Button(description="Check", button_style="primary")
        reveal_btn = w.Button(description="Reveal answer")
        correct = sorted(q["answer"])

        def on_check(_):
            chosen = selected()
            if not chosen:
                feedback.value = "<i>Pick an option first.</i>"
            elif check(self.poll_id, i, chosen):
                feedback.value = "<b style='color:#1a7f37'>Correct.</b>"
            else:
                feedback.value = "<b style='color:#b3261e'>Not quite: look again, or reveal the answer.</b>"

        def on_reveal(_):
            letters = ", ".join(f"({chr(97 + a)})" for a in correct)
            feedback.value = (f"<b>Answer: {letters}</b><br>{_esc(q.get('explanation', ''))}")

        check_btn.on_click(on_check)
        reveal_btn.on_click(on_reveal)
        prompt = w.HTML(f"<p style='margin:6px 0'><b>Q{i + 1}.</b> {_esc(q['prompt'])} <i>({hint})</i></p>",
                        layout=w.Layout(width="auto"))
        return w.VBox([prompt, *choices, w.HBox([check_btn, reveal_btn]), feedback])


def _esc(text: str) -> str:
    import html
    return html.escape(text)


def ask(poll_id: str, widgets: bool | None = None) -> Poll:
    """Show a poll of the bank (the value of the cell); ``widgets=False`` forces the plain-text form."""
    return Poll(poll_id, widgets=widgets)
