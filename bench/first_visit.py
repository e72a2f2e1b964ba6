"""What a first-time visitor sees in the first minutes of a fresh start, measured in a real browser.

    python -m bench.first_visit                 # fresh index and fresh tuned-model folder: a first start
    python -m bench.first_visit --warm          # an index already built: an ordinary restart
    python -m bench.first_visit --shots DIR     # also save a screenshot at each moment

Starts `python app.py` on a free port with an empty index folder (and, unless
--warm, an empty QA_TUNED_DIR, so the build fine-tunes the model as on a new
machine), opens the page in Debian's Chromium as soon as the server answers,
clicks the first example question, and prints a timeline: when the page
answered, when the question box, the start-up status and the articles panel
showed, when the first reply (the status, while nothing answers) and the
answer came, when answers stopped saying they will improve, each in seconds
from the start of `app.py`, with what the status panel, the chat and
`GET /ready` said at a few moments in between. Figures go to stdout,
progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.common import app_command, child_env, free_port, note, print_footer, print_header, say  # noqa: E402
from qa.serving.page import page_text  # noqa: E402
from qa.settings import Settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MOMENTS = (15, 30, 60, 90, 120)  # seconds after the start at which the page is read
DEADLINE = 400  # s: give up on the answer after this


def readiness(url: str) -> str:
    """GET /ready, as "HTTP code: stage, progress, seconds left"."""
    try:
        with urllib.request.urlopen(url + "ready", timeout=10) as response:
            code, body = response.status, json.load(response)
    except urllib.error.HTTPError as error:
        code, body = error.code, json.load(error)
    except OSError as exc:
        return f"unreachable ({exc})"
    progress = f"{body['progress']:.0%}" if body["progress"] is not None else "-"
    left = f"{body['seconds_left']:.0f} s" if body["seconds_left"] else "-"
    return f"{code} ready={body['ready']} stage={body['stage']} progress={progress} left={left}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", action="store_true", help="build the index first: measure a restart")
    parser.add_argument("--shots", help="folder for a screenshot at each moment")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="qa-first-visit-"))
    env = child_env()
    env["QA_TUNED_DIR"] = str(work / "tuned") if not args.warm else env.get("QA_TUNED_DIR", str(work / "tuned"))
    if args.warm:
        note("building the index first (--warm) ...")
        subprocess.run([sys.executable, "-m", "qa", "build", "--index", str(work / "index")], cwd=ROOT, env=env,
                       check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log_path = work / "app.log"
    print_header("first_visit.py", [f"start: {'restart, index built' if args.warm else 'fresh: no index, no tuned model'}"])
    timeline: list[tuple[float, str]] = []
    started = time.monotonic()
    at = lambda: time.monotonic() - started  # noqa: E731
    with open(log_path, "wb") as log:
        process = subprocess.Popen(app_command(port, work / "index", feedback_db=work / "feedback.sqlite3"),
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if process.poll() is not None or at() > DEADLINE:
                    sys.exit(f"app.py did not serve:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
        timeline.append((at(), "the server answers"))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.locator("#question textarea").wait_for(timeout=60_000)
            timeline.append((at(), "the page shows: title, note, question box, example buttons"))
            asked = page_text(Settings()).examples[0]  # the app's first example, as qa/serving/page.py chooses it
            page.get_by_role("button", name=asked).click()
            timeline.append((at(), f"clicked the first example: “{asked}”"))
            status_seen = panel_seen = reply_seen = answer_seen = final_seen = False
            moments = list(MOMENTS)
            text = lambda selector: " ".join(page.locator(selector).first.inner_text().split())  # noqa: E731
            while at() < DEADLINE and not (panel_seen and answer_seen and final_seen and not moments):
                if not status_seen and page.locator("#engine-status .qa-status").count():
                    status_seen = True
                    timeline.append((at(), f"the status panel shows: “{text('#engine-status')[:110]}”"))
                if not panel_seen and page.locator("#articles-panel table").count():
                    panel_seen = True
                    timeline.append((at(), "the articles panel lists the articles"))
                if not reply_seen and page.locator('#chat [data-testid="bot"] .qa-reply').count():
                    reply_seen = True
                    timeline.append((at(), f"the first reply shows: “{text('#chat [data-testid=bot] .qa-reply')[:110]}…”"))
                if not answer_seen and page.locator('#chat [data-testid="bot"] .qa-answer').count():
                    answer_seen = True
                    timeline.append((at(), f"the answer shows: “{text('#chat [data-testid=bot] .qa-reply')[:150]}…”"))
                if not final_seen and page.locator('#engine-status .qa-status[data-stage="ready"]').count():
                    final_seen = True
                    timeline.append((at(), f"the status panel says: “{text('#engine-status')[:110]}”"))
                if moments and at() >= moments[0]:
                    moment = moments.pop(0)
                    status = text("#engine-status") or "(empty)"
                    chat = " ".join(page.locator("#chat").inner_text().split())
                    panel = text("#articles-panel") or "(empty)"
                    timeline.append((at(), f"at {moment} s the status reads “{status[:150]}”; the chat "
                                           f"“{chat[-90:]}”; the panel “{panel[:50]}”; GET /ready: {readiness(url)}"))
                    if args.shots:
                        Path(args.shots).mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=str(Path(args.shots) / f"first-visit-{moment:03d}s.png"))
                page.wait_for_timeout(250)
            browser.close()
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("Ready:"):
                timeline.append((float("nan"), f"log: {line}"))
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    for seconds, what in sorted(timeline, key=lambda row: (row[0] != row[0], row[0])):
        say(f"{seconds:7.1f} s  {what}" if seconds == seconds else f"          {what}")
    say("\nserver log:")
    for line in log_path.read_text(errors="replace").splitlines():
        say(f"  | {line}")
    print_footer()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
