"""The page's replies without the page: qa/serving/chat.py's Chat and qa/serving/render.py's HTML, on a real engine over the
three tiny articles with the fake embedder (tests/fakes.py), so they run in the fast tier.

What the replies say does not depend on what the vectors mean: the questions below are worded so the
fake embedder's bag of words finds their sentences. tests/test_app.py drives the served page with the real
model; tests/test_serving.py the page under load.
"""

from __future__ import annotations

import dataclasses
import html
import re
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from app_server import NOT_FOUND, cited_source_title, reply_text
from conftest import write_tiny_corpus
from fakes import FakeEmbedder
from qa.models import export
from qa.indexing.build import build as build_index
from qa.serving.chat import FAILURE, Chat, earlier_questions, feedback_message, reply_id_in
from qa.answering.context import answer_context
from qa.serving.engine import Engine
from qa.feedback.store import UNAVAILABLE, FeedbackStore
from qa.serving.render import LIST_ITEMS_SHOWN, escape_text, format_reply, format_time, text_html
from qa.serving.interface import AnswersQuestions
from qa.serving.service import EngineProcess
from qa.settings import Settings
from qa.serving.status import READY, TUNING, StartupStatus

IMG = "<img src=x onerror=\"document.title='pwned'\">"
SCRIPT = "<script>document.title='pwned'</script>"
ANSWER = "Naloxone reverses opioid overdose within minutes."
ALPHA = "Alpha Article About Naloxone"
ASKED = "does narcan reverse opioid overdose within minutes"  # answered, through the synonym narcan -> naloxone
UNANSWERED = "what is the capital of France"
EMERGENCY = "This sounds like an emergency: call your local emergency number now"


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory):
    """An engine over the three tiny articles, embedded with the fake embedder (no ONNX export to make)."""
    folder = tmp_path_factory.mktemp("chat")
    settings = Settings(corpus_dir=write_tiny_corpus(folder / "corpus"), index_dir=folder / "index")
    embedder = FakeEmbedder()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(export, "ensure", lambda settings, embedder, say, key=None: None)
        build_index(settings, embedder)
    return Engine.open(settings, build="never", embedder=embedder)


@pytest.fixture
def chat(tiny_engine) -> Chat:
    return Chat(tiny_engine)


@pytest.fixture
def feedback_chat(tiny_engine, tmp_path) -> Chat:
    """A chat whose votes and refusals go to a database of this test's own."""
    return Chat(tiny_engine, FeedbackStore(tmp_path / "feedback.sqlite3"))


# ------------------------------------------------------------------ one interface, two engines

def test_the_engine_and_the_engine_process_answer_the_same_questions(tiny_engine):
    assert isinstance(tiny_engine, AnswersQuestions)
    wanted = [name for name in AnswersQuestions.__dict__ if not name.startswith("_")
              and callable(getattr(AnswersQuestions, name))]
    assert set(wanted) == {"ask", "articles", "built_at", "generation", "status", "wait_ready"}
    for name in wanted:  # the process has every method, taking the same arguments
        import inspect
        assert list(inspect.signature(getattr(EngineProcess, name)).parameters) == \
            list(inspect.signature(getattr(Engine, name)).parameters), name


# ------------------------------------------------------------------ the reply to an answer

def test_format_reply_starts_with_answer_and_citation(tiny_engine):
    result = tiny_engine.ask(ASKED, [])
    reply = format_reply(result)
    assert reply_text(reply).startswith(ANSWER + " [1]")
    assert cited_source_title(reply) == ALPHA
    for number, passage in enumerate(result.passages, 1):
        # Each source: title, section and a plain label; the numbers sit behind their own toggle.
        assert f"<b>[{number}]</b> {text_html(passage.title)}" in reply
        assert text_html(passage.section) in reply
        assert f'<span class="qa-match qa-match-{passage.match.split()[0]}">{passage.match}</span>' in reply
        assert f'<li class="qa-score">[{number}] score {passage.score:.4f}' in reply
    assert reply.count("<details>") == 1 and reply.count('<details class="qa-numbers">') == 1 and "<mark>" in reply
    assert reply.index("qa-numbers") > reply.rindex("qa-passage")  # after the passages, for the curious
    assert result.answer_source.match in reply_text(reply).split("Sources")[0]  # beside the answer's source too


def test_a_list_answer_shows_its_lead_in_and_every_item_with_the_answer_marked(tiny_engine):
    result = tiny_engine.ask("what forms does naloxone come in", [])
    listed = result.context.list
    assert listed is not None and len(listed.items) == 2
    item = listed.items[1]
    answered = dataclasses.replace(result, answer=item)  # the answer an item of the list
    answer_block = format_reply(answered).split('<p class="qa-origin">')[0]
    assert f'<p class="qa-lead">{text_html(listed.lead)}</p>' in answer_block
    assert answer_block.count("<li>") == len(listed.items)
    assert f"<mark>{text_html(item)}</mark>" in answer_block
    # A long list shows its first items, and the rest behind "N more items".
    items = tuple(f"Item number {n}." for n in range(LIST_ITEMS_SHOWN + 3))
    long = dataclasses.replace(answered, answer=items[0],
                               context=dataclasses.replace(result.context, list=dataclasses.replace(listed, items=items)))
    assert "<summary>3 more items</summary>" in format_reply(long)


def test_an_answer_that_points_back_shows_the_sentence_before_it(tiny_engine):
    before, answer = ANSWER, "It binds to opioid receptors in the brain."
    chunks = tiny_engine.current_index().chunks
    context = answer_context(chunks, next(i for i, c in enumerate(chunks) if answer in c.sentences), answer)
    result = dataclasses.replace(tiny_engine.ask(ASKED, []), answer=answer, context=context)
    assert f'<p class="qa-answer"><span class="qa-before">{text_html(before)}</span> ' \
           f"<mark>{text_html(answer)}</mark>" in format_reply(result)


def test_reply_says_which_articles_words_were_searched_for_and_how_a_follow_up_was_read(chat, tiny_engine):
    reply = chat.respond(ASKED, [])
    assert cited_source_title(reply) == ALPHA
    assert "Also searched with the articles’ words: narcan → naloxone" in reply_text(reply)
    assert "Also searched" not in chat.respond("does naloxone reverse opioid overdose within minutes", [])
    followed = dataclasses.replace(tiny_engine.ask(ASKED, []), query="does naloxone work fast")
    assert "Read as a follow-up: “does naloxone work fast”" in reply_text(format_reply(followed))


# ------------------------------------------------------------------ the chat function

def test_an_emergency_reply_opens_with_the_emergency_line(chat):
    reply = chat.respond("he overdosed, does naloxone reverse opioid overdose within minutes", [])
    assert reply_text(reply).startswith(EMERGENCY)
    assert reply.index('role="alert"') < reply.index("qa-answer")
    refused = chat.respond("my friend is having a seizure, what is the capital of France", [])
    # an emergency is never answered with a bare refusal: the closest passage, or a line to get help
    assert reply_text(refused).startswith(EMERGENCY) and NOT_FOUND not in reply_text(refused)


def test_small_talk_and_other_languages_get_their_own_short_replies(chat):
    assert reply_text(chat.respond("ok thanks", [])) == "You're welcome! Ask another question whenever you like."
    german = reply_text(chat.respond("hilft Naloxon bei Ketamin?", []))
    assert german.startswith(NOT_FOUND + " The articles are in English") and "auf Englisch" in german
    assert "The articles cover" not in german


def test_respond_reads_gradio_history_as_the_earlier_questions(tiny_engine):
    # Both shapes Gradio 6 hands the chat function: content as a string (the API path) and as a list of
    # typed parts (the browser path); questions are stored escaped and come back as typed.
    asked = []

    class Recording:
        settings = tiny_engine.settings

        def ask(self, question, history=()):
            asked.append(list(history))
            return tiny_engine.ask(question, history)

        def __getattr__(self, name):
            return getattr(tiny_engine, name)

    chat = Chat(Recording())
    for content in ("does naloxone & <b>reverse</b> it",
                    [{"type": "text", "text": escape_text("does naloxone & <b>reverse</b> it")}]):
        history = [{"role": "user", "content": content},
                   {"role": "assistant", "content": [{"type": "text", "text": "<div>earlier reply</div>"}]}]
        assert earlier_questions(history) == ["does naloxone & <b>reverse</b> it"]
        chat.respond("why not?", history)
    assert asked == [["does naloxone & <b>reverse</b> it"]] * 2


def test_not_found_lists_the_articles(chat, tiny_engine):
    reply = chat.respond(UNANSWERED, [])
    text = reply_text(reply)
    assert text.startswith(NOT_FOUND)
    for article in tiny_engine.articles():
        assert article.title in text
    assert "<details>" not in reply  # no passages offered as if they answered


def test_empty_message_prompts_for_a_question(chat):
    for empty in ("", "   ", "\n\t", None):
        assert reply_text(chat.respond(empty, [])) == "Please type a question."
    chat.page = dataclasses.replace(chat.page, examples=("what is naloxone",))
    assert chat.empty_prompt() == "Please type a question, for example: “what is naloxone”."


def test_too_long_message_is_refused_with_the_library_message(chat):
    refusal = reply_text(chat.respond("a" * 2001, []))
    assert refusal == "That question is 2,001 characters long; please keep it to at most 2,000 characters."
    at_limit = reply_text(chat.respond("does naloxone reverse opioid overdose " + "a" * 1962, []))
    assert "characters long" not in at_limit  # 2,000 exactly is still a question


def test_no_engine_yet_and_a_failing_engine_get_a_message(tiny_engine):
    assert reply_text(Chat().respond("hello", [])) == "The app is still starting; please try again in a moment."

    class Broken:
        settings = tiny_engine.settings

        def ask(self, question, history=()):
            raise RuntimeError("boom")

    assert reply_text(Chat(Broken()).respond("what is naloxone", [])) == FAILURE


def test_an_answer_given_while_a_better_model_is_prepared_says_so(tiny_engine, monkeypatch):
    chat = Chat(tiny_engine)
    monkeypatch.setattr(tiny_engine, "status", lambda: StartupStatus(TUNING, "base", 0.4, 95.0, message="…"))
    assert "Answers will improve shortly" in reply_text(chat.respond(ASKED, []))
    assert "improve" not in reply_text(chat.respond("ok thanks", []))  # small talk gets no note
    monkeypatch.setattr(tiny_engine, "status", lambda: StartupStatus(READY, "tuned", message="…"))
    assert "improve" not in reply_text(chat.respond(ASKED, []))


def test_the_script_api_returns_what_the_cli_prints(chat, tiny_engine):
    assert chat.ask(ASKED, []) == tiny_engine.ask(ASKED, []).to_dict()
    assert chat.ask("why not?", "what is naloxone") == tiny_engine.ask("why not?", ["what is naloxone"]).to_dict()
    from qa.errors import QAError
    for bad in [(3, []), (ASKED, [3]), (ASKED, 5)]:
        with pytest.raises(QAError, match="must be text"):
            chat.ask(*bad)
    with pytest.raises(QAError, match="still starting"):
        Chat().ask(ASKED)


# ------------------------------------------------------------------ markup stays text

@pytest.mark.parametrize("markup", [IMG, SCRIPT, f"does naloxone reverse opioid overdose {SCRIPT}"])
def test_markup_in_a_question_never_reaches_the_reply_as_html(chat, markup):
    reply = chat.respond(markup, [])
    assert "<img" not in reply and "<script" not in reply and "onerror=" not in reply


def test_markup_from_articles_and_questions_is_escaped(tiny_engine):
    # A real result, with markup planted where article text and the question go.
    result = tiny_engine.ask(ASKED, [])
    planted = tuple(dataclasses.replace(p, title=IMG, section=SCRIPT, text=p.text + " " + IMG)
                    for p in result.passages)
    source = next(p for p, original in zip(planted, result.passages) if original == result.answer_source)
    evil = dataclasses.replace(result, query=f"{SCRIPT} why not?", answer=f"{IMG} **bold** [x](javascript:alert(1))",
                               answer_source=source, passages=planted)
    reply = format_reply(evil)
    assert "<img" not in reply and "<script" not in reply and "onerror=" not in reply
    assert "**" not in reply and "](" not in reply  # Markdown syntax is inert too
    text = reply_text(reply)
    assert IMG in text and SCRIPT in text  # shown as text, exactly as it came


def test_escaped_questions_round_trip_and_are_inert():
    for typed in (IMG, SCRIPT, "a & b < c", "**bold** _it_ `code` $$x$$", "&lt; literally"):
        stored = escape_text(typed)
        assert "<" not in stored and ">" not in stored
        assert html.unescape(stored) == typed


HOSTILE = st.sampled_from([
    "<script>alert(1)</script>", "<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "<scr<script>ipt>", "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>", "\"><script>", "' onerror='x", "onerror=", "[x](javascript:alert(1))", "**bold**",
    "<iframe srcdoc=x>", "</div></details>", "&lt;script&gt;", "&#60;script", "<!--", "$$x$$", "```", "|a|b|",
    "\x00", "\x1b[31m", "\r\n", "\u202e", "\ufeff", "\u2028", "\ud800", "naloxone", "opioid overdose", "why not?",
])
ANY_CHAR = st.characters(exclude_categories=())  # every code point, surrogates and controls included
TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=200),
    st.text(st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"]), max_size=50),
    st.lists(st.one_of(HOSTILE, st.text(ANY_CHAR, max_size=15)), max_size=10).map("".join),
    st.builds(lambda piece, n: (piece * (5000 // max(len(piece), 1) + 1))[:n],  # long: up to 5,000
              st.lists(st.one_of(HOSTILE, st.text(ANY_CHAR, min_size=1, max_size=10)), min_size=1, max_size=4)
              .map("".join), st.integers(1000, 5000)),
)
CONTENT = st.one_of(TEXT, st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}), max_size=2),
                    st.none(), st.integers())
HISTORY = st.one_of(st.none(), st.lists(st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": CONTENT}),
    st.text(max_size=10), st.none()), max_size=4))
TAGS = {"div", "p", "b", "i", "span", "sup", "details", "summary", "mark", "ul", "li", "br"}  # the page's own


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                  HealthCheck.function_scoped_fixture])
@given(message=TEXT, history=HISTORY)
def test_respond_never_raises_and_never_echoes_markup(chat, message, history):
    reply = chat.respond(message, history)
    assert isinstance(reply, str) and reply.startswith('<div class="qa-reply">')
    assert FAILURE not in reply  # no unexpected exception was swallowed on the way
    assert set(t.lower() for t in re.findall(r"<\s*/?\s*([A-Za-z][\w-]*)", reply)) <= TAGS, reply[:500]
    if "<script" in message.lower():
        assert "<script" not in reply.lower()
    assert "onerror=" not in reply.lower()


# ------------------------------------------------------------------ the articles panel

def test_articles_panel_lists_titles_passages_and_build_time(chat, tiny_engine):
    panel = chat.articles_panel()
    for article in tiny_engine.articles():
        assert text_html(article.title) in panel
        assert f"<td class='qa-num'>{article.passages}</td>" in panel
    assert "Index built " + format_time(tiny_engine.built_at()) in reply_text(panel)
    assert format_time("2026-11-22T02:49:44+00:00") == "2026-11-22 02:49 UTC" and format_time("") == \
        "at an unknown time"


# ------------------------------------------------------------------ feedback, real database

def feedback_rows(path, what="kind, question, history, refused, answer, source, section, generation, comment"):
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT {what} FROM feedback ORDER BY id").fetchall()


def test_a_vote_records_the_reply_it_names(feedback_chat, tiny_engine):
    history = [{"role": "user", "content": "what is naloxone"}, {"role": "assistant", "content": "<div>...</div>"}]
    reply = feedback_chat.respond(ASKED, history)
    result = tiny_engine.ask(ASKED, ["what is naloxone"])
    reply_id = reply_id_in(reply)
    assert reply.startswith(f'<div class="qa-reply" data-reply="{reply_id}">')
    # Gradio hands the liked message back as a string or as lists of typed parts.
    assert reply_id_in([[{"type": "text", "text": reply}]]) == reply_id == reply_id_in([reply])
    assert feedback_chat.cast_vote(reply_id, "up") == "Thanks! Your 👍 is saved."
    assert feedback_rows(feedback_chat.feedback.path) == [
        ("like", ASKED, '["what is naloxone"]', 0, result.answer, result.answer_source.source,
         result.answer_source.section, tiny_engine.generation(), None)]
    assert feedback_chat.cast_vote(reply_id, "none") == "Your vote is withdrawn."


def test_a_refusal_is_logged_with_the_question_only_and_can_be_voted_on(feedback_chat, tiny_engine):
    reply = feedback_chat.respond(UNANSWERED, [{"role": "user", "content": "does naloxone reverse ketamine"}])
    assert reply_text(reply).startswith(NOT_FOUND)
    assert feedback_rows(feedback_chat.feedback.path) == [
        ("refusal", UNANSWERED, "[]", 1, None, None, None, tiny_engine.generation(), None)]
    message, saved = feedback_message(lambda: feedback_chat.cast_vote(reply_id_in(reply), "down", "<b>say so</b>"))
    assert saved and message == "Thanks, your comment is saved."
    assert feedback_rows(feedback_chat.feedback.path, "kind, history, refused, comment")[1] == (
        "dislike", '["does naloxone reverse ketamine"]', 1, "<b>say so</b>")


def test_small_talk_and_other_languages_are_not_logged_as_unanswered(feedback_chat):
    for message in ("ok thanks", "hilft Naloxon bei Ketamin?"):
        assert reply_id_in(feedback_chat.respond(message, []))  # still a reply that can be voted on
    assert feedback_chat.feedback.entries() == []


def test_votes_that_cannot_be_taken_get_a_message(feedback_chat):
    reply_id = reply_id_in(feedback_chat.respond(ASKED, []))
    for reply, vote, comment, message in [
            ("r" + "0" * 16, "up", "", "can no longer be rated"),  # before a restart, or forgotten
            (None, "up", "", "no answer to rate"),  # a prompt or an error message, not an answer
            (reply_id, "sideways", "", 'must be "up", "down" or "none"'),
            (reply_id, "down", "x" * 501, "at most 500 characters; this one has 501")]:
        answer = feedback_chat.feedback_api(reply, vote, comment)
        assert answer["saved"] is False and message in answer["message"], answer
    assert feedback_chat.feedback.entries() == []
    # Turned off: replies carry no id and votes are refused.
    feedback_chat.feedback = None
    assert "data-reply" not in feedback_chat.respond(ASKED, []) and "data-reply" not in feedback_chat.respond(
        UNANSWERED, [])
    assert feedback_chat.feedback_api(reply_id, "up") == {"saved": False,
                                                          "message": "Feedback is turned off on this server."}


def test_a_corrupt_database_leaves_the_page_answering(feedback_chat, caplog):
    feedback_chat.feedback.path.write_bytes(b"not a database\n" * 200)
    with caplog.at_level("WARNING", logger="app"):
        answered = feedback_chat.respond(ASKED, [])
        refused = feedback_chat.respond(UNANSWERED, [])
        vote = feedback_chat.feedback_api(reply_id_in(answered), "up")
    assert cited_source_title(answered) and reply_text(refused).startswith(NOT_FOUND)
    assert vote == {"saved": False, "message": UNAVAILABLE}
    assert "unanswered question not logged" in caplog.text and "feedback not saved" in caplog.text
    assert "file is not a database" in caplog.text  # the server's log says why
