"""CI's first stage: the product as a user installs it (requirements.txt alone) builds, exports and answers without torch.

    python scripts/check_install.py --corpus DIR --workdir DIR

Run with the Python of a fresh virtual environment made by the README's run
command's install step (scripts/install.sh, no test tools): .ci/run does
that. It imports only the standard library and bench/common.py (which the
app's own dependencies cover), so nothing here hides a missing dependency.
It fails (exit 1, saying which check) unless:

1. `python -m qa build` builds the corpus with no failed ONNX export: the
   build's JSON summary says the questions are embedded with "onnx";
2. `python -m qa ask` answers a question of the corpus without importing
   torch (checked in the asking process's own sys.modules);
3. `python app.py`, started on that index, reaches "ready" and its engine
   process answers `/ask` without torch: no torch library is mapped into the
   engine's process, nor into the page's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import start_app  # noqa: E402  (standard library and numpy, both in requirements.txt)
QUESTION = "does naloxone reverse ketamine"
READY_TIMEOUT = 300.0  # seconds for the page to load an existing index; a wait, not a timing
# Asks through the library's CLI in this process, then says whether torch was imported on the way.
ASK_WITHOUT_TORCH = """
import json, sys
from qa.cli import main
code = main(sys.argv[1:])
print(json.dumps({"torch_imported": "torch" in sys.modules}), file=sys.stderr)
sys.exit(code)
"""


def fail(message: str) -> None:
    print(f"check_install: FAILED: {message}", flush=True)
    sys.exit(1)


def ok(message: str) -> None:
    print(f"check_install: ok: {message}", flush=True)


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, **kwargs)


def check_build(corpus: Path, index: Path) -> None:
    started = time.monotonic()
    done = run(["-m", "qa", "build", "--json", "--corpus", str(corpus), "--index", str(index)])
    if done.returncode != 0:
        fail(f"qa build exited {done.returncode}:\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    if summary.get("encoder") != "onnx" or summary.get("export_failure"):
        fail(f"the model's ONNX export failed ({summary.get('export_failure')}); questions would go through torch."
             f"\n{done.stderr[-3000:]}")
    ok(f"qa build: {summary['articles']} articles, {summary['passages']} passages, questions embedded with onnx "
       f"({time.monotonic() - started:.0f} s)")


def check_ask(corpus: Path, index: Path) -> None:
    done = run(["-c", ASK_WITHOUT_TORCH, "ask", "--json", "--corpus", str(corpus), "--index", str(index), QUESTION])
    if done.returncode != 0:
        fail(f"qa ask exited {done.returncode}:\n{done.stderr[-3000:]}")
    reply = json.loads(done.stdout)
    imported = json.loads(done.stderr.strip().splitlines()[-1])["torch_imported"]
    if not reply.get("found"):
        fail(f"qa ask found no answer to {QUESTION!r}: {reply.get('answer')}")
    if imported:
        fail("qa ask imported torch to answer a question")
    ok(f"qa ask answered without torch: {reply['answer'][:80]!r}")


def get_json(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def ask_page(base: str) -> dict:
    """The page's /ask endpoint over plain HTTP (Gradio's call API: an event id, then its result stream)."""
    event = get_json(f"{base}/gradio_api/call/ask", {"data": [QUESTION, []]})["event_id"]
    with urllib.request.urlopen(f"{base}/gradio_api/call/ask/{event}", timeout=60) as response:
        stream = response.read().decode("utf-8")
    kind, data = None, None
    for line in stream.splitlines():
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and kind == "complete":
            data = json.loads(line.split(":", 1)[1])
    if data is None:
        fail(f"the page's /ask gave no answer:\n{stream[-2000:]}")
    return data[0]


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(p) for p in text]
    return found + [g for c in found for g in children(c)]


def maps_torch(pid: int) -> bool:
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
    return "libtorch" in maps or "/torch/lib/" in maps


def check_page(corpus: Path, index: Path, workdir: Path) -> None:
    try:
        page = start_app(workdir, index_dir=index, corpus_dir=corpus)  # the tests' and benches' one way
    except RuntimeError as exc:
        fail(str(exc))
    base = page.url.rstrip("/")
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        status: dict = {}
        while time.monotonic() < deadline:
            if page.process.poll() is not None:
                fail(f"app.py exited with {page.process.returncode}:\n{page.log_tail(3000)}")
            try:
                status = get_json(f"{base}/ready")
                if status.get("stage") == "ready":
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            fail(f"the page was not ready within {READY_TIMEOUT:.0f} s: {status}\n{page.log_tail(3000)}")
        if status.get("error"):
            fail(f"the page reports an error: {status['error']}")
        reply = ask_page(base)
        if not reply.get("found"):
            fail(f"the page's /ask found no answer to {QUESTION!r}: {reply.get('answer')}")
        pid = page.process.pid
        engines = children(pid)
        if not engines:
            fail("the page started no engine process")
        loaded = [p for p in [pid, *engines] if maps_torch(p)]
        if loaded:
            fail(f"torch is loaded in the page's processes {loaded} (page {pid}, engine {engines})")
        ok(f"the page answered /ask without torch in its {1 + len(engines)} processes: {reply['answer'][:80]!r}")
    finally:
        page.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    index = args.workdir / "index"
    check_build(args.corpus.resolve(), index)
    check_ask(args.corpus.resolve(), index)
    check_page(args.corpus.resolve(), index, args.workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
