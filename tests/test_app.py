"""The chat page's behaviour: the real app over HTTP, and its formatting with the real engine.

No mocks: the app runs as `python app.py` in a subprocess (tests/app_server.py),
and the formatting tests load the real engine on the index that app built.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import subprocess
import sys

import pytest
from gradio_client import Client

from app_server import (NALOXONE_ANSWER, NALOXONE_TITLE, NOT_FOUND, ROOT, app_server,  # noqa: F401
                        child_env, cited_source_title, reply_text)

import app  # noqa: E402  (installed by `pip install -e .`, like qa)
from qa.context import answer_context  # noqa: E402
from qa.feedback import UNAVAILABLE, FeedbackStore  # noqa: E402
from qa.settings import Settings  # noqa: E402

IMG = "<img src=x onerror=\"document.title='pwned'\">"
SCRIPT = "<script>document.title='pwned'</script>"


@pytest.fixture(scope="module")
def app_engine(app_server, embedder):  # noqa: F811
    """The real engine behind app.respond(), on the index the app built (so nothing is built twice),
    with the session's model from tests/conftest.py (so nothing is loaded twice)."""
    engine = app.open_engine(Settings.from_env(index_dir=app_server.index_dir), say=lambda text: None,
                             embedder=embedder)
    yield engine
    app.ENGINE = None


@pytest.fixture(scope="module")
def client(app_server):  # noqa: F811
    return Client(app_server.url, verbose=False)


# ------------------------------------------------------------------ over HTTP

def test_chat_endpoint_answers_with_the_naloxone_article(client):
    reply = client.predict("does naloxone reverse ketamine", api_name="/chat")
    assert reply_text(reply).startswith(NALOXONE_ANSWER + " [1]")
    assert cited_source_title(reply) == NALOXONE_TITLE
    assert "<details>" in reply and "<summary>" in reply
    assert f"<mark>{app.text_html(NALOXONE_ANSWER)}</mark>" in reply


def test_follow_up_uses_the_session_history(app_server):  # noqa: F811
    # /chat takes only the message: the conversation lives in the client's
    # session on the server (ChatInterface's state), so a follow-up is simply
    # the next call on the same Client.
    conversation = Client(app_server.url, verbose=False)
    conversation.predict("does naloxone reverse ketamine", api_name="/chat")
    reply = conversation.predict("why not?", api_name="/chat")
    assert cited_source_title(reply) == NALOXONE_TITLE
    assert "Read as a follow-up: “does naloxone reverse ketamine" in reply_text(reply)  # topic restored

    # The same question with no conversation behind it has no topic to restore.
    alone = Client(app_server.url, verbose=False).predict("why not?", api_name="/chat")
    assert reply_text(alone).startswith(NOT_FOUND)
    # ... and a reset session forgets the conversation.
    conversation.reset_session()
    assert reply_text(conversation.predict("why not?", api_name="/chat")).startswith(NOT_FOUND)


def test_bad_input_over_http_gets_a_message(client):
    assert "Please type a question" in reply_text(client.predict("", api_name="/chat"))
    refusal = reply_text(client.predict("x" * 2001, api_name="/chat"))
    assert "2,001 characters" in refusal and "2,000" in refusal
    reply = client.predict(IMG, api_name="/chat")
    assert "<img" not in reply and "Traceback" not in reply


def test_page_has_note_and_examples(app_server):  # noqa: F811
    import urllib.request
    with urllib.request.urlopen(app_server.url, timeout=10) as response:
        page = response.read().decode()
    assert "not medical advice" in page and "emergency" in page
    assert "does naloxone reverse ketamine" in page  # an example, from the question bank
    assert "Ask the articles" in page and "ketamine &amp; naloxone" not in page and "ketamine & naloxone" not in page


def test_a_page_over_other_articles_never_names_ketamine(tmp_path):
    (tmp_path / "fentanyl.txt").write_text("Fentanyl Facts\n\nWhat Is Fentanyl?\n\nFentanyl is a synthetic opioid."
                                           "\n", encoding="utf-8")
    page = app.build_page(Settings(corpus_dir=tmp_path))
    words = json.dumps(page.config, default=str).lower()
    assert "what is fentanyl?" in words and "ask the articles" in words  # its own example, a neutral title
    assert "ketamine" not in words and "naloxone" not in words
    titled = app.build_page(Settings(corpus_dir=tmp_path, page_title="Fentanyl: ask the leaflets",
                                     page_intro="Quotes from our leaflets.", page_examples=("is fentanyl strong",)))
    config = json.dumps(titled.config, default=str)
    assert all(text in config for text in ("Fentanyl: ask the leaflets", "Quotes from our leaflets.",
                                           "is fentanyl strong"))
    app.build_page(Settings())  # the module's page words back to this app's own corpus


def test_the_server_log_is_quiet(app_server):  # noqa: F811
    log = app_server.log_tail(1_000_000)
    for stage in ("Loading the model and the index", "Serving the page on", "Ready: 5 articles"):
        assert stage in log
    assert not re.search(r"\d+%\|", log), "a progress bar in the log"
    assert "deprecat" not in log.lower() and "share=True" not in log and "Warning" not in log


# ------------------------------------------------------------------ /ready, for scripts and load balancers

def test_the_readiness_endpoint_says_the_app_answers_with_its_tuned_model(app_server):  # noqa: F811
    import urllib.request
    with urllib.request.urlopen(app_server.url + "ready", timeout=30) as response:
        assert response.status == 200 and response.headers["content-type"] == "application/json"
        body = json.load(response)
    assert body == {"ready": True, "stage": "ready", "model": "tuned", "progress": None, "seconds_left": None,
                    "message": "Answering with the model tuned on the example questions.", "error": None}
    assert "GET /ready" in (ROOT / "README.md").read_text(encoding="utf-8")  # scripts find it there


# ------------------------------------------------------------------ /ask, the API for scripts

ASKED = [("what are the symptoms of opioid withdrawal", []),
         ("my friend took special k and now he won't wake up, will narcan help??", []),
         ("why not?", ["does naloxone reverse ketamine"]), ("ok thanks", []), ("hilft Naloxon bei Ketamin?", []),
         ("what is the capital of France", [])]


def cli_answers(app_server, *args, stdin=None):  # noqa: F811
    done = subprocess.run([sys.executable, "-m", "qa", "ask", "--index", str(app_server.index_dir), *args],
                          input=stdin, capture_output=True, text=True, timeout=600, cwd=ROOT, env=child_env())
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_ask_endpoint_returns_what_the_cli_prints(app_server, client):  # noqa: F811
    question, history = ASKED[0]
    api = client.predict(question, history, api_name="/ask")
    assert cli_answers(app_server, "--json", question) == [api]
    assert api["kind"] == "answer" and len(api["context"]["list"]["items"]) == 10
    assert set(api["passages"][0]) >= {"source", "title", "section", "text", "score", "match"}
    # The rest in one batch: --jsonl writes the same objects, one per line.
    lines = "".join(json.dumps({"question": q, "history": h}) + "\n" for q, h in ASKED[1:])
    assert cli_answers(app_server, "--jsonl", stdin=lines) == [client.predict(q, h, api_name="/ask")
                                                                for q, h in ASKED[1:]]


def test_ask_endpoint_refuses_bad_input_with_the_reason(client):
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError, match="Please type a question"):
        client.predict("   ", api_name="/ask")
    with pytest.raises(AppError, match="2,001 characters"):
        client.predict("x" * 2001, api_name="/ask")
    assert client.predict("does naloxone reverse ketamine", api_name="/ask")["answer"] == NALOXONE_ANSWER


def readme_script(name: str) -> str:
    """The README's Python example that calls `name`."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.DOTALL)
    return next(block for block in blocks if f'api_name="{name}"' in block)


def test_the_readmes_script_example_prints_a_readable_answer(app_server):  # noqa: F811
    script = readme_script("/ask").replace("http://127.0.0.1:7860/", app_server.url)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=child_env())
    assert done.returncode == 0, done.stderr
    assert "<" not in done.stdout and "&#" not in done.stdout  # text, not the page's markup
    assert "Common symptoms include:" in done.stdout and "Drug Cravings" in done.stdout
    assert "Ketamine For Opioid Withdrawal" in done.stdout


# ------------------------------------------------------------------ formatting, real engine

def test_format_reply_starts_with_answer_and_citation(app_engine):
    result = app_engine.ask("does naloxone reverse ketamine", [])
    reply = app.format_reply(result)
    assert reply_text(reply).startswith(NALOXONE_ANSWER + " [1]")
    assert cited_source_title(reply) == NALOXONE_TITLE
    for number, passage in enumerate(result.passages, 1):
        # Each source: title, section and a plain label; the numbers sit behind their own toggle.
        assert f"<b>[{number}]</b> {app.text_html(passage.title)}" in reply
        assert app.text_html(passage.section) in reply
        assert f'<span class="qa-match qa-match-{passage.match.split()[0]}">{passage.match}</span>' in reply
        assert f'<li class="qa-score">[{number}] score {passage.score:.4f}' in reply
    assert reply.count("<details>") == 1 and reply.count('<details class="qa-numbers">') == 1 and "<mark>" in reply
    assert reply.index("qa-numbers") > reply.rindex("qa-passage")  # after the passages, for the curious
    assert "strong match" in reply_text(reply).split("Sources")[0]  # beside the answer's source too


def test_a_list_answer_shows_its_lead_in_and_every_item_with_the_answer_marked(app_engine):
    result = app_engine.ask("what are the symptoms of opioid withdrawal", [])
    reply = app.format_reply(result)
    listed = result.context.list
    answer_block = reply.split('<p class="qa-origin">')[0]
    assert f'<p class="qa-lead">{app.text_html(listed.lead)}</p>' in answer_block
    assert answer_block.count("<li>") == len(listed.items) == 10
    assert f"<mark>{app.text_html(result.answer)}</mark>" in answer_block
    assert cited_source_title(reply) == result.answer_source.title


def test_an_answer_that_points_back_shows_the_sentence_before_it(app_engine):
    before = "Recreational use, on the other hand, often involves higher doses and lacks medical oversight."
    answer = "This increases the risk of addiction and adverse effects like memory loss and bladder issues."
    chunks = app_engine.current_index().chunks
    context = answer_context(chunks, next(i for i, c in enumerate(chunks) if answer in c.sentences), answer)
    result = dataclasses.replace(app_engine.ask("is recreational ketamine use risky", []), answer=answer,
                                 context=context)
    reply = app.format_reply(result)
    assert f'<p class="qa-answer"><span class="qa-before">{app.text_html(before)}</span> ' \
           f"<mark>{app.text_html(answer)}</mark>" in reply


def test_an_emergency_reply_opens_with_the_emergency_line(app_engine):
    reply = app.respond("my friend took special k and now he won't wake up, will narcan help??", [])
    assert reply_text(reply).startswith("This sounds like an emergency: call your local emergency number now")
    assert reply.index('role="alert"') < reply.index("qa-answer")
    refused = app.respond("my friend is having a seizure, what is the capital of France", [])
    # an emergency is never answered with a bare refusal: the closest passage, or a line to get help
    assert reply_text(refused).startswith("This sounds like an emergency") and NOT_FOUND not in reply_text(refused)


def test_small_talk_and_other_languages_get_their_own_short_replies(app_engine):
    assert reply_text(app.respond("ok thanks", [])) == "You're welcome! Ask another question whenever you like."
    german = reply_text(app.respond("hilft Naloxon bei Ketamin?", []))
    assert german.startswith(NOT_FOUND + " The articles are in English") and "auf Englisch" in german
    assert "The articles cover" not in german


def test_reply_says_which_articles_words_were_searched_for(app_engine):
    reply = app.respond("does narcan work on ketamine", [])
    assert cited_source_title(reply) == NALOXONE_TITLE
    assert "Also searched with the articles’ words: narcan → naloxone" in reply_text(reply)
    assert "Also searched" not in app.respond("does naloxone reverse ketamine", [])


def test_respond_follow_up_reads_gradio_history(app_engine):
    # Both shapes Gradio 6 hands the chat function: content as a string (the
    # API path) and as a list of typed parts (the browser path); questions are
    # stored escaped (app.escape_text) and come back as typed.
    for content in ("does naloxone reverse ketamine",
                    [{"type": "text", "text": app.escape_text("does naloxone reverse ketamine")}]):
        history = [{"role": "user", "content": content},
                   {"role": "assistant", "content": [{"type": "text", "text": "<div>earlier reply</div>"}]}]
        assert app.earlier_questions(history) == ["does naloxone reverse ketamine"]
        assert cited_source_title(app.respond("why not?", history)) == NALOXONE_TITLE
    assert reply_text(app.respond("why not?", [])).startswith(NOT_FOUND)


def test_not_found_lists_the_articles(app_engine):
    reply = app.respond("what is the capital of France", [])
    text = reply_text(reply)
    assert text.startswith(NOT_FOUND)
    for article in app_engine.articles():
        assert article.title in text
    assert "<details>" not in reply  # no passages offered as if they answered


def test_empty_message_prompts_for_a_question(app_engine):
    for empty in ("", "   ", "\n\t"):
        assert reply_text(app.respond(empty, [])).startswith("Please type a question")
    # On the page an empty message is not even sent (no blank bubble): the validator says the same.
    assert app.validate_message("  ")["is_valid"] is False and app.validate_message("hi")["is_valid"] is True
    assert app.validate_message(None)["message"] == app.empty_prompt()


def test_too_long_message_is_refused_with_the_library_message(app_engine):
    refusal = reply_text(app.respond("a" * 2001, []))
    assert refusal == ("That question is 2,001 characters long; please keep it to at most 2,000 characters.")
    at_limit = reply_text(app.respond("does naloxone reverse ketamine " + "a" * 1969, []))
    assert "characters long" not in at_limit  # 2,000 exactly is still a question


@pytest.mark.parametrize("markup", [IMG, SCRIPT, f"does naloxone reverse ketamine {SCRIPT}"])
def test_markup_in_a_question_never_reaches_the_reply_as_html(app_engine, markup):
    reply = app.respond(markup, [])
    assert "<img" not in reply and "<script" not in reply and "onerror=" not in reply


def test_markup_from_articles_and_questions_is_escaped(app_engine):
    # A real result, with markup planted where article text and the question go.
    result = app_engine.ask("why not?", ["does naloxone reverse ketamine"])
    planted = tuple(dataclasses.replace(p, title=IMG, section=SCRIPT, text=p.text + " " + IMG)
                    for p in result.passages)
    source = next(p for p, original in zip(planted, result.passages) if original == result.answer_source)
    evil = dataclasses.replace(result, query=f"{SCRIPT} why not?", answer=f"{IMG} **bold** [x](javascript:alert(1))",
                               answer_source=source, passages=planted)
    reply = app.format_reply(evil)
    assert "<img" not in reply and "<script" not in reply and "onerror=" not in reply
    assert "**" not in reply and "](" not in reply  # Markdown syntax is inert too
    text = reply_text(reply)
    assert IMG in text and SCRIPT in text  # shown as text, exactly as it came


def test_escaped_questions_round_trip_and_are_inert():
    for typed in (IMG, SCRIPT, "a & b < c", "**bold** _it_ `code` $$x$$", "&lt; literally"):
        stored = app.escape_text(typed)
        assert "<" not in stored and ">" not in stored
        assert html.unescape(stored) == typed


def test_articles_panel_lists_titles_passages_and_build_time(app_engine):
    panel = app.articles_panel()
    for article in app_engine.articles():
        assert app.text_html(article.title) in panel
        assert f"<td class='qa-num'>{article.passages}</td>" in panel
    assert "Index built " + app.format_time(app_engine.built_at()) in reply_text(panel)



# ------------------------------------------------------------------ feedback, real engine and database

ANSWERED = "does narcan come as a shot or a spray"
UNANSWERED = "how much does narcan cost at the pharmacy"


def feedback_rows(path, what="kind, question, history, refused, answer, source, section, generation, comment"):
    import sqlite3
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT {what} FROM feedback ORDER BY id").fetchall()


@pytest.fixture
def feedback_store(app_engine, tmp_path, monkeypatch):
    """The page's feedback going to a database of this test's own."""
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    monkeypatch.setattr(app, "FEEDBACK", store)
    return store


def test_a_vote_records_the_reply_it_names(app_engine, feedback_store):
    history = [{"role": "user", "content": "what is naloxone"}, {"role": "assistant", "content": "<div>...</div>"}]
    reply = app.respond(ANSWERED, history)
    result = app_engine.ask(ANSWERED, ["what is naloxone"])
    reply_id = app.reply_id_in(reply)
    assert reply.startswith(f'<div class="qa-reply" data-reply="{reply_id}">')
    # Gradio hands the liked message back as a string or as lists of typed parts.
    assert app.reply_id_in([[{"type": "text", "text": reply}]]) == reply_id == app.reply_id_in([reply])
    assert app.cast_vote(reply_id, "up") == "Thanks! Your 👍 is saved."
    assert feedback_rows(feedback_store.path) == [
        ("like", ANSWERED, '["what is naloxone"]', 0, result.answer, result.answer_source.source,
         result.answer_source.section, app_engine.generation(), None)]


def test_a_refusal_is_logged_with_the_question_only_and_can_be_voted_on(app_engine, feedback_store):
    reply = app.respond(UNANSWERED, [{"role": "user", "content": "does naloxone reverse ketamine"}])
    assert reply_text(reply).startswith(NOT_FOUND)
    assert feedback_rows(feedback_store.path) == [
        ("refusal", UNANSWERED, "[]", 1, None, None, None, app_engine.generation(), None)]
    message, saved = app.feedback_message(lambda: app.cast_vote(app.reply_id_in(reply), "down", "<b>say so</b>"))
    assert saved and message == "Thanks, your comment is saved."
    assert feedback_rows(feedback_store.path, "kind, history, refused, comment")[1] == (
        "dislike", '["does naloxone reverse ketamine"]', 1, "<b>say so</b>")


def test_small_talk_and_other_languages_are_not_logged_as_unanswered(app_engine, feedback_store):
    for message in ("ok thanks", "hilft Naloxon bei Ketamin?"):
        assert app.reply_id_in(app.respond(message, []))  # still a reply that can be voted on
    assert feedback_store.entries() == []


def test_votes_that_cannot_be_taken_get_a_message(app_engine, feedback_store, monkeypatch):
    reply_id = app.reply_id_in(app.respond(ANSWERED, []))
    for reply, vote, comment, message in [
            ("r" + "0" * 16, "up", "", "can no longer be rated"),  # before a restart, or forgotten
            (None, "up", "", "no answer to rate"),  # a prompt or an error message, not an answer
            (reply_id, "sideways", "", 'must be "up", "down" or "none"'),
            (reply_id, "down", "x" * 501, "at most 500 characters; this one has 501")]:
        answer = app.feedback_api(reply, vote, comment)
        assert answer["saved"] is False and message in answer["message"], answer
    assert feedback_store.entries() == []
    # Turned off: replies carry no id and votes are refused.
    monkeypatch.setattr(app, "FEEDBACK", None)
    assert "data-reply" not in app.respond(ANSWERED, []) and "data-reply" not in app.respond(UNANSWERED, [])
    assert app.feedback_api(reply_id, "up") == {"saved": False, "message": "Feedback is turned off on this server."}


def test_a_corrupt_database_leaves_the_page_answering(app_engine, feedback_store, caplog):
    feedback_store.path.write_bytes(b"not a database\n" * 200)
    with caplog.at_level("WARNING", logger="app"):
        answered = app.respond(ANSWERED, [])
        refused = app.respond(UNANSWERED, [])
        vote = app.feedback_api(app.reply_id_in(answered), "up")
    assert cited_source_title(answered) and reply_text(refused).startswith(NOT_FOUND)
    assert vote == {"saved": False, "message": UNAVAILABLE}
    assert "unanswered question not logged" in caplog.text and "feedback not saved" in caplog.text
    assert "file is not a database" in caplog.text  # the server's log says why


# ------------------------------------------------------------------ feedback over HTTP

def test_scripts_vote_through_the_feedback_endpoint(app_server, client):  # noqa: F811
    reply = client.predict(ANSWERED, api_name="/chat")
    reply_id = app.reply_id_in(reply)
    assert client.predict(reply_id, "down", "<i>not</i> what I asked", api_name="/feedback") == {
        "saved": True, "message": "Thanks, your comment is saved."}
    assert client.predict(reply_id, "sideways", api_name="/feedback")["saved"] is False
    rows = feedback_rows(app_server.feedback_db, "kind, question, refused, comment, reply")
    assert ("dislike", ANSWERED, 0, "<i>not</i> what I asked", reply_id) in rows


def test_a_corrupt_database_file_leaves_the_served_page_answering(app_server, client):  # noqa: F811
    import shutil
    database = app_server.feedback_db
    parts = [database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm")]
    kept = database.parent / "kept"
    kept.mkdir()
    for part in parts:  # the app opens a connection per vote: nothing holds these open
        if part.exists():
            shutil.move(part, kept / part.name)
    try:
        database.write_bytes(b"garbage, not SQLite\n" * 500)
        answered = client.predict(ANSWERED, api_name="/chat")
        assert cited_source_title(answered)
        assert reply_text(client.predict(UNANSWERED, api_name="/chat")).startswith(NOT_FOUND)
        vote = client.predict(app.reply_id_in(answered), "up", api_name="/feedback")
        assert vote == {"saved": False, "message": UNAVAILABLE}
        log = app_server.log_tail(20_000)
        assert "feedback not saved" in log and "file is not a database" in log
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
        for saved in kept.iterdir():
            shutil.move(saved, database.parent / saved.name)
        kept.rmdir()
