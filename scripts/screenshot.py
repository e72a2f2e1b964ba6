"""Take the screenshots in docs/: the chat page as a visitor sees it.

- docs/screenshot.png: "does naloxone reverse ketamine" answered, its sources open (labels, highlight);
- docs/screenshot-list.png: a list answer: the lead-in and every item, the answer marked;
- docs/screenshot-emergency.png: an emergency question: the emergency line first, then the quote.

Each is taken once the start-up status says nothing is left to prepare. (docs/screenshot-startup.png,
a first start while the index is built, comes from `python -m bench.first_visit --shots DIR`.)

    python scripts/screenshot.py                      # starts app.py on a free port, stops it after
    python scripts/screenshot.py --url http://127.0.0.1:7860   # uses a running app

Drives Debian's Chromium (/usr/bin/chromium) through Playwright; Playwright's
own browser download is not needed.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# (file in docs/, the questions asked in one conversation, whether the last reply's sources are opened)
SHOTS = [
    ("screenshot.png", ["does naloxone reverse ketamine"], True),
    ("screenshot-list.png", ["what are the symptoms of opioid withdrawal"], False),
    ("screenshot-emergency.png", ["my friend took special k and now he won't wake up, will narcan help??"], False),
]
# Scroll the chat's own scroll box so the question sits just below its top edge.
SCROLL_TO_QUESTION = """el => {
  let box = el.parentElement;
  while (box && !(box.scrollHeight > box.clientHeight && /(auto|scroll)/.test(getComputedStyle(box).overflowY))) {
    box = box.parentElement;
  }
  if (box) box.scrollTop += el.getBoundingClientRect().top - box.getBoundingClientRect().top - 48;
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen | None, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            sys.exit(f"app.py exited with code {process.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"{url} did not answer within {timeout:.0f} s")


def shoot(url: str, out: Path, questions: list[str], open_sources: bool) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        page.goto(url)
        # The final model's answers, not the first start's stand-in (its replies say answers will improve).
        page.locator('#engine-status .qa-status[data-stage="ready"]').wait_for(timeout=900_000)
        box = page.locator("#question textarea")
        for number, question in enumerate(questions, 1):
            box.fill(question)
            box.press("Enter")
            page.locator('[data-testid="bot"] .qa-answer').nth(number - 1).wait_for(timeout=60_000)
        bot = page.locator('[data-testid="bot"]').last
        if open_sources:
            bot.locator("summary").first.click()
            bot.locator(".qa-source mark").first.wait_for()
        page.locator("#articles-panel table").wait_for()
        page.wait_for_timeout(500)  # the chat scrolls itself to the bottom; then show the first question at the top
        page.locator('[data-testid="user"]').first.evaluate(SCROLL_TO_QUESTION)
        page.wait_for_timeout(200)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running app; default: start app.py on a free port")
    parser.add_argument("--index", help="index folder for the app this script starts")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="the folder the screenshots go to")
    args = parser.parse_args()
    process = None
    url = args.url
    if not url:
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        command = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
        if args.index:
            command += ["--index", args.index]
        process = subprocess.Popen(command, cwd=ROOT)
    try:
        wait_for(url, process)
        for name, questions, open_sources in SHOTS:
            shoot(url, Path(args.out) / name, questions, open_sources)
            print(f"saved {Path(args.out) / name}")
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
