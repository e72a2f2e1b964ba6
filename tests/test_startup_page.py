"""What the page says while the engine starts (qa/serving/render.py and qa/serving/chat.py over qa/serving/status.py's StartupStatus).

The formatting is tested on statuses as qa/serving/startup.py makes them; the chat function while the engine
starts with a real engine process (qa/serving/service.py) building a tiny corpus's first index.
"""

from __future__ import annotations

import pytest

from app_server import reply_text
from conftest import write_tiny_corpus
from qa.serving.chat import Chat
from qa.serving.render import format_status, text_html, with_note
from qa.serving.service import EngineProcess
from qa.settings import Settings
from qa.serving.status import BUILDING, FAILED, READY, STARTING, TUNING, UPDATING, StartupStatus, improving_note

BUILDING_HALF = StartupStatus(BUILDING, None, 0.5, 130.4, message="Building the index (embedding, about 130 s left); "
                                                                   "questions wait for it.")
TUNING_EARLY = StartupStatus(TUNING, "base", None, None, message="Answering with the model as it ships, without the "
                                                                  "example questions yet; the model tuned on them is "
                                                                  "being prepared (preparing).")


def test_the_status_says_the_stage_in_words_with_a_progress_bar_and_the_time_left():
    shown = format_status(BUILDING_HALF)
    assert 'data-stage="building"' in shown and 'role="status"' in shown
    assert '<progress max="1" value="0.500"' in shown
    assert reply_text(shown) == ("Building the index Building the index (embedding, about 130 s left); questions "
                                 "wait for it. 50% done · about 2 min 10 s left")


def test_a_stage_whose_progress_is_not_known_yet_shows_a_busy_bar_and_no_numbers():
    shown = format_status(TUNING_EARLY)
    assert "<progress max=\"1\" aria-label" in shown and "value=" not in shown
    assert reply_text(shown).startswith("Preparing a better model Answering with the model as it ships")
    assert reply_text(shown).endswith("working…") and "%" not in shown


@pytest.mark.parametrize("stage", [READY, FAILED])
def test_nothing_running_shows_no_bar(stage):
    assert "<progress" not in format_status(StartupStatus(stage, "tuned", message="Answering."))


def test_an_answer_given_while_a_better_model_is_prepared_says_answers_will_improve():
    tuning = StartupStatus(TUNING, "base", 0.4, 95.0, message="…")
    note = improving_note(tuning)
    assert note.startswith("Answers will improve shortly") and "about 95 s left" in note
    assert "answers will include them shortly" in improving_note(StartupStatus(UPDATING, "tuned", message="…"))
    assert improving_note(StartupStatus(READY, "tuned", message="…")) is None
    reply = with_note('<div class="qa-reply"><p>An answer.</p></div>', note)
    assert reply.endswith(f'<p class="qa-improving">{text_html(note)}</p></div>')
    assert reply_text(reply).startswith("An answer. Answers will improve shortly")


def test_the_readiness_body_says_whether_questions_are_answered():
    assert BUILDING_HALF.readiness() == {"ready": False, "stage": "building", "model": None, "progress": 0.5,
                                         "seconds_left": 130.4, "message": BUILDING_HALF.message, "error": None}
    assert TUNING_EARLY.readiness()["ready"] is True  # answering, with the model as it ships
    assert StartupStatus(READY, "tuned").readiness()["ready"] is True
    assert StartupStatus(FAILED, None, error="disk full").readiness()["ready"] is False


@pytest.fixture
def starting_engine(tmp_path):
    """A real engine process that has just started on a tiny corpus with no index: nothing answers yet."""
    settings = Settings(corpus_dir=write_tiny_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    process = EngineProcess(settings)
    yield process
    process.close()


@pytest.mark.slow  # a real engine process that builds
def test_a_question_asked_while_the_engine_starts_gets_the_status_then_the_answer(starting_engine):
    chat = Chat(starting_engine)
    asked = chat.respond_when_ready("does naloxone reverse overdose", [])
    emergency = chat.respond_when_ready("he won't wake up after taking opioids, will naloxone help?", [])
    first, first_emergency = next(asked), next(emergency)  # at once: the engine has not loaded anything yet
    assert starting_engine.status().stage in (STARTING, BUILDING)
    assert 'class="qa-reply qa-waiting"' in first
    assert reply_text(first).endswith("Your question will be answered here as soon as the index is ready.")
    assert reply_text(first).startswith(("Starting up", "Building the index"))
    # An emergency is told to call for help first, even before anything can be answered.
    assert reply_text(first_emergency).startswith("This sounds like an emergency: call your local emergency number")
    rest = list(asked)
    assert all("qa-waiting" in reply for reply in rest[:-1])
    assert reply_text(rest[-1]).startswith("Naloxone reverses opioid overdose within minutes.")
    assert "qa-waiting" not in rest[-1] and "qa-improving" not in rest[-1]  # nothing better is coming
    final = list(emergency)[-1]
    assert reply_text(final).startswith("This sounds like an emergency") and "qa-waiting" not in final
