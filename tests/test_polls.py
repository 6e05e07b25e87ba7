"""The poll bank and the in-notebook poll: every poll complete and asked once, checking and revealing work."""
import json
import re
from pathlib import Path

import pytest

from course_lib import polls

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ROOT / "lectures"

# the answer keys of the four polls of the course (seed 001): indices of the correct options
EXPECTED = {"mle": [[0], [0]], "em_elbo": [[0, 1], [0, 1]], "data_completion": [[0, 1, 2]], "pca": [[0, 1, 3, 4]]}


def test_every_poll_has_question_options_and_answer_key():
    bank = polls.load_polls()
    assert list(bank) == list(EXPECTED)
    for pid, poll in bank.items():
        polls.validate_poll(poll)
        assert poll["questions"], pid
        for q in poll["questions"]:
            assert q["prompt"].strip() and len(q["options"]) >= 2 and q["answer"], pid
            assert q["explanation"].strip(), f"{pid}: give every question an explanation for 'Reveal answer'"


def test_answer_keys_are_those_of_the_course():
    bank = polls.load_polls()
    assert {pid: [q["answer"] for q in p["questions"]] for pid, p in bank.items()} == EXPECTED


def test_each_poll_is_asked_once_in_its_own_lecture():
    asked = {}
    for nb_path in sorted(LECTURES.glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                for pid in re.findall(r"""\bask\(\s*["']([a-z0-9_]+)["']""", "".join(cell["source"])):
                    asked.setdefault(pid, []).append(nb_path.stem)
    bank = polls.load_polls()
    assert set(asked) == set(bank), "every poll of the bank is asked, and only polls of the bank"
    for pid, where in asked.items():
        assert where == [bank[pid]["lecture"]], f"poll {pid} asked in {where}, belongs to {bank[pid]['lecture']}"


@pytest.mark.parametrize("poll", [
    {"title": "t", "lecture": "01_x", "questions": []},
    {"id": "p", "title": "t", "lecture": "01_x", "questions": []},
    {"id": "p", "title": "t", "lecture": "01_x",
     "questions": [{"prompt": "q", "kind": "single", "options": ["a", "b"], "answer": [2]}]},
    {"id": "p", "title": "t", "lecture": "01_x",
     "questions": [{"prompt": "q", "kind": "single", "options": ["a", "b"], "answer": [0, 1]}]},
    {"id": "p", "title": "t", "lecture": "01_x",
     "questions": [{"prompt": "q", "kind": "multiple", "options": ["a"], "answer": [0]}]},
    {"id": "p", "title": "t", "lecture": "01_x",
     "questions": [{"prompt": "", "kind": "multiple", "options": ["a", "b"], "answer": [0]}]},
    {"id": "p", "title": "t", "lecture": "01_x",
     "questions": [{"prompt": "q", "kind": "multiple", "options": ["a", "b"], "answer": []}]},
], ids=["no-id", "no-questions", "answer-out-of-range", "single-with-two", "one-option", "empty-prompt", "no-answer"])
def test_incomplete_polls_are_rejected_in_one_line(poll):
    with pytest.raises(ValueError) as err:
        polls.validate_poll(poll)
    assert "\n" not in str(err.value)


def test_bank_with_a_duplicate_id_is_rejected(tmp_path, monkeypatch):
    poll = polls.get_poll("pca")
    (tmp_path / "polls.json").write_text(json.dumps({"polls": [poll, poll]}))
    monkeypatch.setenv("COURSE_POLLS_FILE", str(tmp_path / "polls.json"))
    with pytest.raises(ValueError, match="used twice"):
        polls.load_polls()


def test_check_accepts_exactly_the_answer_key():
    assert polls.check("pca", 0, [4, 3, 1, 0])
    assert not polls.check("pca", 0, [0, 1, 3])          # one correct option missing
    assert not polls.check("pca", 0, [0, 1, 2, 3, 4])    # a wrong option added
    assert polls.check("mle", 1, 0) and not polls.check("mle", 1, 1)
    assert not polls.check("mle", 0, None)
    with pytest.raises(ValueError):
        polls.check("nope", 0, [0])


def test_text_form_shows_options_but_not_the_answer():
    text = polls.poll_text("data_completion")
    poll = polls.get_poll("data_completion")
    assert poll["title"] in text and "(d)" in text and "select all that apply" in text
    assert poll["questions"][0]["explanation"][:40] not in text
    key = polls.answer_text("data_completion")
    assert "a, b, c" in key and "d" not in key.split(":")[2][:8]


def test_plain_text_when_widgets_are_off(monkeypatch):
    monkeypatch.setenv("COURSE_POLLS", "text")
    p = polls.ask("em_elbo")
    assert not p.use_widgets
    assert p._repr_mimebundle_() == {"text/plain": polls.poll_text("em_elbo")}
    assert repr(p) == polls.poll_text("em_elbo")


def test_widget_poll_checks_and_reveals():
    pytest.importorskip("ipywidgets")
    p = polls.Poll("mle", widgets=True)
    bundle = p._repr_mimebundle_()
    assert bundle["text/plain"] == polls.poll_text("mle")           # what papermill and nbconvert show
    assert "application/vnd.jupyter.widget-view+json" in bundle
    question = p._box.children[1]                                   # [title, question 1, question 2]
    radio, buttons, feedback = question.children[1], question.children[2], question.children[3]
    check_btn, reveal_btn = buttons.children
    check_btn.click()
    assert "Pick an option" in feedback.value
    radio.value = radio.options[1]                                  # "False": wrong
    check_btn.click()
    assert "Not quite" in feedback.value
    radio.value = radio.options[0]
    check_btn.click()
    assert "Correct" in feedback.value
    reveal_btn.click()
    assert "Answer: (a)" in feedback.value


def test_widget_multiple_choice_uses_checkboxes():
    pytest.importorskip("ipywidgets")
    p = polls.Poll("pca", widgets=True)
    q = p._box.children[1]
    boxes = q.children[1:-2]
    assert len(boxes) == 6
    for k in (0, 1, 3, 4):
        boxes[k].value = True
    check_btn = q.children[-2].children[0]
    check_btn.click()
    assert "Correct" in q.children[-1].value
    boxes[5].value = True
    check_btn.click()
    assert "Not quite" in q.children[-1].value


def test_pca_poll_keeps_the_seed_key_and_explains_the_free_rotation():
    """Option (e) stays in the key (the slides mark it), and the explanation says what it does not fix."""
    q = polls.get_poll("pca")["questions"][0]
    assert 4 in q["answer"] and "standard Gaussian" in q["options"][4]
    assert "rotation" in q["explanation"] and "W R" in q["explanation"]
    assert "rotation" not in polls.poll_text("pca")       # the explanation shows only after the answer
