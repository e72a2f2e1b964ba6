"""What a first-time visitor sees in the first minutes of a fresh start, measured in a real browser.

    python bench/first_visit.py                 # fresh index and fresh tuned-model folder: a first start
    python bench/first_visit.py --warm          # an index already built: an ordinary restart
    python bench/first_visit.py --shots DIR     # also save a screenshot at each moment

Starts `python app.py` on a free port with an empty index folder (and, unless
--warm, an empty QA_TUNED_DIR, so the build fine-tunes the model as on a new
machine), opens the page in Debian's Chromium as soon as the server answers,
clicks the first example question, and prints a timeline: when the page
answered, when the question box and the articles panel showed, and when the
answer came, each in seconds from the start of `app.py`, with what the chat
and the panel said at a few moments in between. Figures go to stdout,
progress to stderr.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.common import app_command, child_env, free_port, note, print_footer, print_header, say  # noqa: E402
from qa.page import page_text  # noqa: E402
from qa.settings import Settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MOMENTS = (15, 30, 60, 90, 120)  # seconds after the start at which the page is read
DEADLINE = 400  # s: give up on the answer after this


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
            asked = page_text(Settings()).examples[0]  # the app's first example, as qa/page.py chooses it
            page.get_by_role("button", name=asked).click()
            timeline.append((at(), f"clicked the first example: “{asked}”"))
            panel_seen = answer_seen = False
            moments = list(MOMENTS)
            while at() < DEADLINE and not (panel_seen and answer_seen and not moments):
                if not panel_seen and page.locator("#articles-panel table").count():
                    panel_seen = True
                    timeline.append((at(), "the articles panel lists the articles"))
                if not answer_seen and page.locator('#chat [data-testid="bot"] .qa-reply').count():
                    answer_seen = True
                    reply = page.locator('#chat [data-testid="bot"] .qa-reply').first.inner_text()
                    timeline.append((at(), f"the answer shows: “{' '.join(reply.split())[:90]}…”"))
                if moments and at() >= moments[0]:
                    moment = moments.pop(0)
                    chat = " ".join(page.locator("#chat").inner_text().split())
                    panel = " ".join(page.locator("#articles-panel").inner_text().split()) or "(empty)"
                    timeline.append((at(), f"at {moment} s the chat reads “{chat[-110:]}”; "
                                           f"the panel “{panel[:60]}”"))
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
