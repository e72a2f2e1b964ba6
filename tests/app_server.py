"""The running app, shared by tests/test_app.py and tests/test_browser.py.

`python app.py` is started ONCE per test session in a subprocess, on a free
port, with a fresh index folder (so the first start builds the index from
the default corpus/), and stopped when the session ends. Import the fixture
into a test module with `from app_server import app_server`.

Also the small helpers both test files use to read a reply.
"""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so tests can `import app`

START_TIMEOUT = 180  # s: loading the model and building the index, on 2 cores

NALOXONE_TITLE = "Unveiling the Mystery: Does Naloxone Reverse Ketamine Effects?"
NALOXONE_ANSWER = "The short answer is no; Naloxone does not reverse the effects of Ketamine."
NOT_FOUND = "I couldn't find that in the articles."


@dataclass
class AppServer:
    url: str
    index_dir: Path
    log_path: Path
    process: subprocess.Popen

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env() -> dict[str, str]:
    """The environment for an app child: the default corpus and model whatever the shell says
    (only the flags choose), unbuffered output, no telemetry."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("QA_HOST", "QA_PORT", "QA_MODEL", "QA_CORPUS_DIR", "QA_INDEX_DIR")}
    env.update(PYTHONUNBUFFERED="1", GRADIO_ANALYTICS_ENABLED="False", HF_HUB_DISABLE_TELEMETRY="1")
    return env


def start_app(workdir: Path, index_dir: Path | None = None, corpus_dir: Path | None = None) -> AppServer:
    """Start `python app.py` on a free loopback port and wait until it serves its page."""
    port = free_port()
    index_dir = index_dir or workdir / "index"
    log_path = workdir / "app.log"
    command = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--host", "127.0.0.1",
               "--index-dir", str(index_dir)]
    if corpus_dir is not None:
        command += ["--corpus-dir", str(corpus_dir)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=child_env(), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    server = AppServer(f"http://127.0.0.1:{port}/", index_dir, log_path, process)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with code {process.returncode} before serving:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url, timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"app.py did not serve {server.url} within {START_TIMEOUT} s:\n{server.log_tail()}")
        time.sleep(0.5)


_server: AppServer | None = None  # one app per test session, whichever module asks first


@pytest.fixture(scope="session")
def app_server(tmp_path_factory) -> AppServer:
    global _server
    if _server is None:
        _server = start_app(tmp_path_factory.mktemp("app"))
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
    cited = re.search(r'class="qa-answer">.*?<sup>\[(\d+)\]</sup>', reply)
    if not cited:
        return None
    head = re.search(rf'<div class="qa-source-head"><b>\[{cited.group(1)}\]</b> (.*?) <span', reply)
    return html.unescape(head.group(1)) if head else None
