"""The chat page in a real browser: Debian's Chromium driven by Playwright.

Playwright cannot download its own browser here, so it launches
/usr/bin/chromium. Every wait is for an element or text, never for network idle
(Gradio keeps a connection open).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.browser
from playwright.sync_api import Page, expect, sync_playwright

from app_server import NALOXONE_ANSWER, NALOXONE_TITLE, app_server, start_app  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TEST_COMMAND = "bash scripts/test.sh"  # the README's test command: installs Chromium, then runs pytest
ANSWER_TIMEOUT = 60_000  # ms; an answer takes about a second, the first one a little more

IMG = "<img src=x onerror=\"document.title='pwned'\">"
SCRIPT_QUESTION = "does ketamine <script>document.title='pwned'</script> help?"


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: these tests drive Debian's Chromium, and Playwright cannot "
                    f"download a browser here. Run the README's test command, which installs it: "
                    f"{TEST_COMMAND}", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def context(browser):
    """One browser profile for the module, so the page's scripts load from cache after the first test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


@pytest.fixture
def page(context, app_server) -> Page:  # noqa: F811
    """A fresh page, hence a fresh conversation, for each test."""
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(app_server.url)
    page.locator("#question textarea").wait_for()
    yield page
    page.close()


def ask(page: Page, question: str):
    """Type a question, press Enter, and return the locator of its (finished) reply."""
    replies = page.locator('#chat [data-testid="bot"] .qa-reply')
    before = replies.count()
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    expect(replies).to_have_count(before + 1, timeout=ANSWER_TIMEOUT)
    return replies.nth(before)


def test_question_answered_with_source_and_screenshot(page, tmp_path):
    # The page says which model answers (the shared app has made its tuned index live).
    expect(page.locator('#engine-status .qa-status[data-stage="ready"]')).to_contain_text(
        "Answering with the model tuned on the example questions.")
    reply = ask(page, "does naloxone reverse ketamine")
    expect(reply.locator(".qa-answer")).to_contain_text(NALOXONE_ANSWER)
    expect(reply.locator(".qa-origin")).to_contain_text(NALOXONE_TITLE)
    # Sources start folded; opening them shows the passage with the answer marked.
    mark = reply.locator(".qa-source mark").first
    expect(mark).to_be_hidden()
    reply.locator("summary", has_text="Sources").click()
    expect(mark).to_be_visible()
    expect(mark).to_have_text(NALOXONE_ANSWER)
    expect(reply.locator(".qa-source-head").first).to_contain_text(NALOXONE_TITLE)
    # Follow-up in the same conversation.
    follow_up = ask(page, "why not?")
    expect(follow_up.locator(".qa-origin")).to_contain_text(NALOXONE_TITLE)
    shot = tmp_path / "chat.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000


def test_page_shows_note_and_articles_panel(page):
    expect(page.get_by_role("note")).to_contain_text("not medical advice")
    expect(page.get_by_role("note")).to_contain_text("emergency")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ask the articles")
    expect(page).to_have_title("Ask the articles")
    expect(page.get_by_text("Conversation", exact=True)).to_be_hidden()  # no label floating over the chat
    panel = page.locator("#articles-panel")
    expect(panel).to_contain_text(NALOXONE_TITLE)
    expect(panel).to_contain_text("Index built")
    expect(panel.locator("tbody tr")).to_have_count(5)


def test_clicking_an_example_asks_it(page):
    page.get_by_role("button", name="does naloxone reverse ketamine").click()
    reply = page.locator('#chat [data-testid="bot"] .qa-reply').first
    expect(reply.locator(".qa-answer")).to_contain_text(NALOXONE_ANSWER, timeout=ANSWER_TIMEOUT)
    expect(page.locator('#chat [data-testid="user"]').first).to_have_text("does naloxone reverse ketamine")


def test_an_empty_message_leaves_no_blank_bubble(page):
    box = page.locator("#question textarea")
    for empty in ("", "   "):
        box.fill(empty)
        box.press("Enter")
        # The prompt is the server's validation reply: it waits on the server as an answer does (a loaded
        # machine fine-tuning in the background took over expect's 5 s default).
        expect(page.get_by_text("Please type a question, for example")).to_be_visible(timeout=ANSWER_TIMEOUT)
    page.wait_for_timeout(500)  # time for a (wrongly) sent message to show up
    expect(page.locator('#chat [data-testid="user"]')).to_have_count(0)
    expect(page.locator('#chat [data-testid="bot"]')).to_have_count(0)
    # The next real question goes through as usual.
    reply = ask(page, "does naloxone reverse ketamine")
    expect(reply.locator(".qa-answer")).to_contain_text(NALOXONE_ANSWER)
    expect(page.locator('#chat [data-testid="user"]')).to_have_count(1)


def test_an_emergency_questions_reply_starts_with_the_emergency_line(page):
    reply = ask(page, "my friend took special k and now he won't wake up, will narcan help??")
    line = reply.locator(".qa-emergency")
    expect(line).to_have_attribute("role", "alert")
    expect(line).to_contain_text("call your local emergency number")
    assert reply.inner_text().startswith("This sounds like an emergency")
    # Before any quote: above the answer on the screen too.
    assert line.bounding_box()["y"] < reply.locator(".qa-answer").bounding_box()["y"]


def test_on_a_phone_the_emergency_line_is_in_view_after_a_long_reply(browser, app_server):  # noqa: F811
    # The chat scrolls to the end of a new reply; the page brings the emergency line back into view.
    phone = {"width": 390, "height": 844}
    context = browser.new_context(viewport=phone, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(app_server.url)
        page.locator("#question textarea").wait_for()
        reply = ask(page, "he used heroin and his lips are turning blue what do i do")
        line = reply.locator(".qa-emergency")
        assert reply.bounding_box()["height"] > phone["height"] / 2, "the reply is too short to test scrolling"
        page.wait_for_function("""() => {
            const box = document.querySelector('#chat [data-testid="bot"] .qa-emergency').getBoundingClientRect();
            return box.top >= -2 && box.bottom <= window.innerHeight;
        }""", timeout=5_000)
        page.wait_for_timeout(1_500)  # and it stays there while the reply finishes rendering
        box = line.bounding_box()
        assert box["y"] >= -2 and box["y"] + box["height"] <= phone["height"]
    finally:
        context.close()


def test_a_list_answer_shows_every_item(page):
    reply = ask(page, "what are the symptoms of opioid withdrawal")
    answer = reply.locator(".qa-answer")
    expect(answer.locator(".qa-lead")).to_have_text("Common symptoms include:")
    items = answer.locator("li")
    expect(items).to_have_count(10)
    for number in range(10):
        expect(items.nth(number)).to_be_visible()
    expect(items.last).to_contain_text("Drug Cravings")
    expect(answer.locator("mark")).to_have_count(1)  # the sentence that answers, marked among them
    expect(reply.locator(".qa-origin .qa-match")).to_have_text("strong match")


@pytest.mark.parametrize("question", [IMG, SCRIPT_QUESTION], ids=["img-onerror", "script"])
def test_markup_in_a_question_is_shown_as_text_and_never_runs(page, question):
    title = page.title()
    ask(page, question)
    user_message = page.locator('#chat [data-testid="user"]').last
    expect(user_message).to_have_text(question)  # the literal text, as typed
    assert user_message.locator("img, script").count() == 0
    assert page.locator("#chat img[src='x'], #chat script").count() == 0
    page.wait_for_timeout(300)  # give a (wrongly) rendered onerror handler time to fire
    assert page.title() == title != "pwned"


def stored_votes(database) -> list[tuple]:
    import sqlite3
    if not database.exists():
        return []
    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT kind, question, history, refused, answer, source, section, generation, comment "
                            "FROM feedback WHERE kind != 'refusal' ORDER BY id").fetchall()


def test_thumbs_up_and_down_on_real_replies_are_stored(page, app_server):  # noqa: F811
    question = "does narcan come as a shot or a spray"
    reply = ask(page, question)
    marked = reply.locator(".qa-answer mark")  # the answer among the text shown around it, if any
    answer = (marked.first.inner_text() if marked.count() else
              reply.locator(".qa-answer").inner_text().rsplit("[", 1)[0]).strip()
    status = page.locator("#feedback-status")
    before = stored_votes(app_server.feedback_db)

    page.get_by_role("button", name="Like", exact=True).click()
    expect(status).to_contain_text("Your 👍 is saved")
    expect(page.locator("#feedback-comment")).to_be_hidden()  # a comment box only after a thumbs-down
    generation = (app_server.index_dir / "CURRENT").read_text().strip()
    liked = stored_votes(app_server.feedback_db)[len(before):]
    assert liked == [("like", question, "[]", 0, answer, "naloxone-and-ketamine.txt", "What is Naloxone?",
                      generation, None)]

    # A refused follow-up in the same conversation, disliked with a comment holding markup.
    refused = ask(page, "how much does narcan cost at the pharmacy")
    expect(refused).to_contain_text("couldn't find that")
    page.get_by_role("button", name="Dislike", exact=True).last.click()
    expect(status).to_contain_text("your 👎 is saved")
    comment = page.locator("#feedback-comment-text textarea")
    comment.fill("<b>tell me</b> where to get it")
    page.locator("#feedback-comment-send").click()
    expect(status).to_contain_text("your comment is saved")
    expect(page.locator("#feedback-comment")).to_be_hidden()
    assert page.locator("#feedback-status b").count() == 0  # the status line shows text, never markup
    votes = stored_votes(app_server.feedback_db)[len(before):]
    assert votes[1] == ("dislike", "how much does narcan cost at the pharmacy", f'["{question}"]', 1, None, None,
                        None, generation, "<b>tell me</b> where to get it")
    # Clicking the thumb again withdraws the vote.
    page.get_by_role("button", name="Disliked", exact=True).click()
    expect(status).to_contain_text("withdrawn")
    assert [v[0] for v in stored_votes(app_server.feedback_db)[len(before):]] == ["like"]


# ------------------------------------------------------------------ a first start, as on a new machine

def readiness(url: str) -> tuple[int, dict]:
    """GET /ready: the HTTP status and the JSON body."""
    try:
        with urllib.request.urlopen(url + "ready", timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_a_first_start_says_what_it_is_building_then_answers(browser, tmp_path, monkeypatch):
    # A fresh index folder and no tuned model: the first build, then the fine-tuning, as on a new machine.
    monkeypatch.setenv("QA_TUNED_DIR", str(tmp_path / "tuned"))
    server = start_app(tmp_path)
    try:
        code, body = readiness(server.url)
        assert body["stage"] in ("starting", "building", "tuning") and code == (200 if body["ready"] else 503)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(server.url)
        page.locator("#question textarea").wait_for(timeout=60_000)
        status = page.locator("#engine-status .qa-status")
        expect(status).to_have_attribute("data-stage", re.compile(r"^(starting|building|tuning)$"), timeout=30_000)
        stage = status.get_attribute("data-stage")
        # In words, with a live progress bar: the stage, then what is happening.
        expect(status).to_contain_text(re.compile(r"Starting up|Building the index|Preparing a better model"))
        expect(status.locator("progress")).to_be_visible()

        box = page.locator("#question textarea")
        box.fill("does naloxone reverse ketamine")
        box.press("Enter")
        reply = page.locator('#chat [data-testid="bot"] .qa-reply').first
        if stage != "tuning":  # nothing answers yet: the reply is the status, until the answer replaces it
            expect(page.locator("#articles-panel")).to_contain_text("Listed here once the index is built")
            expect(reply).to_contain_text("will be answered here as soon as the index is ready")
            expect(reply.locator("progress")).to_be_attached()
        expect(reply.locator(".qa-answer")).to_be_visible(timeout=240_000)
        expect(page.locator('#chat [data-testid="bot"]')).to_have_count(1)  # the status became the answer
        # Answered with the model as it ships while the tuned one is prepared (minutes of fine-tuning): said so.
        expect(reply.locator(".qa-improving")).to_contain_text("Answers will improve shortly")
        expect(status).to_have_attribute("data-stage", "tuning", timeout=30_000)
        expect(status).to_contain_text("Preparing a better model")
        expect(page.locator("#articles-panel tbody tr")).to_have_count(5, timeout=30_000)
        code, body = readiness(server.url)
        assert code == 200 and body["ready"] is True and body["stage"] == "tuning" and body["model"] == "base"
        assert body["progress"] is None or 0 <= body["progress"] <= 1
        context.close()
    finally:
        server.stop()
