"""The running app, shared by tests/test_app.py and tests/test_browser.py.

`python app.py` is started ONCE per test session in a subprocess, on a free
port, with a fresh index folder (so the first start builds the index from
a copy of the tests' seed corpus, tests/fixtures/seeds), and stopped when
the session ends. Import the fixture into a test module with
`from app_server import app_server`.

Also the small helpers both test files use to read a reply.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "seeds"  # conftest.CORPUS

# child_env and start_app are used from here by tests/test_serving.py.
from bench.common import (APP_START_TIMEOUT, AppProcess, child_env, start_app,  # noqa: E402, F401
                          wait_for_tuned_index)

START_TIMEOUT = APP_START_TIMEOUT
# A wait for readiness, not a timing: after a first start the background fine-tuning and re-embedding
# outlast APP_START_TIMEOUT when other jobs hold the machine's cores, and every test of the page then errored.
TUNED_TIMEOUT = 900

NALOXONE_TITLE = "Unveiling the Mystery: Does Naloxone Reverse Ketamine Effects?"
NALOXONE_ANSWER = "The short answer is no; Naloxone does not reverse the effects of Ketamine."
NOT_FOUND = "I couldn't find that in the articles."


# Starting and stopping the app is shared with bench/concurrency.py.
AppServer = AppProcess


_server: AppServer | None = None  # one app per test session, whichever module asks first


@pytest.fixture(scope="session")
def app_server(tmp_path_factory) -> AppServer:
    global _server
    if _server is None:
        work = tmp_path_factory.mktemp("app")
        shutil.copytree(CORPUS, work / "corpus")  # the tests' own seed articles, not corpus/ as it is today
        _server = start_app(work, corpus_dir=work / "corpus")
        try:
            # A fresh app answers with the model as it ships first; the tests expect the tuned model's answers.
            wait_for_tuned_index(_server, TUNED_TIMEOUT)
        except RuntimeError as exc:
            _server.stop()
            pytest.fail(str(exc))
    elif _server.process.poll() is not None:
        pytest.fail(f"the app server died during the tests:\n{_server.log_tail()}")
    yield _server
    _server.stop()


# ------------------------------------------------------------ reading replies

def reply_text(reply: str) -> str:
    """A reply's visible text: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", reply)).split())


def cited_source_title(reply: str) -> str | None:
    """The title of the source the answer cites ([n] after the answer)."""
    cited = re.search(r'class="qa-answer[^"]*">.*?<sup>\[(\d+)\]</sup>', reply)
    if not cited:
        return None
    head = re.search(rf'<div class="qa-source-head"><b>\[{cited.group(1)}\]</b> (.*?) <span', reply)
    return html.unescape(head.group(1)) if head else None
