"""Cold start: `python -m qa ask` and `python app.py` to the first answer, with the index already built.

    nice -n 19 python bench/cold_start.py [--runs 5] [--size CHUNKS] [--no-app] [--quick]

The index is built once first (not timed) in a temporary folder. Then, each
in a fresh child process ("cold" = new process; the OS file cache is warm,
as it is on a server that restarts):

1. stages: a child times, in order, the imports (torch, sentence_transformers,
   faiss + bm25s, the rest of qa), the model load (Embedder), the index load
   (qa.index.load with checksums), and the first and second Engine.ask;
2. `python -m qa ask QUESTION --index I --corpus C`: wall time to exit;
3. `python app.py --port P --host 127.0.0.1 --index-dir I --corpus-dir C`:
   from Popen to the first reply of gradio_client
   Client(url).predict(question, api_name="/chat"), polling every 0.1 s, plus
   when the port first accepted a connection; then the app is stopped.
   Target: first answer within 10 s of start.
4. `python -X importtime -c "import qa.engine, gradio"`: the slowest imports.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent

from bench import common  # noqa: E402

QUESTION = "does naloxone reverse ketamine"

STAGE_SCRIPT = r"""
import json, os, sys, time
t0 = time.perf_counter(); marks = {}
def mark(name):
    global t0
    now = time.perf_counter(); marks[name] = now - t0; t0 = now
import torch; mark("import torch")
import sentence_transformers; mark("import sentence_transformers (+transformers)")
import faiss, bm25s; mark("import faiss + bm25s")
from qa.engine import Engine; from qa.settings import Settings; from qa.embedding import Embedder
from qa import index as index_store; mark("import qa (rest)")
if APP:
    import gradio; mark("import gradio")
    import app; mark("import app (rest)")
settings = Settings.from_env(corpus_dir=sys.argv[1], index_dir=sys.argv[2])
index = index_store.load(settings); mark("index load (with checksums)")
# The model that embeds questions: the one tuned on the question bank when the index names one.
embedder = Embedder(index_store.query_model(index.manifest, settings), settings.batch_size, settings.threads,
                    load=True); mark("model load (Embedder)")
engine = Engine(settings, embedder, index)
reason = index_store.stale_reason(index.manifest, settings); mark("stale check (corpus hashes)")
engine.ask(sys.argv[3]); mark("first ask")
engine.ask(sys.argv[3]); mark("second ask")
print(json.dumps(marks))
"""


def app_first_answer(corpus: Path, index: Path, timeout: float = 180) -> dict:
    from gradio_client import Client

    port = common.free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(index.parent / f"app-{port}.log", "w")
    started = time.perf_counter()
    proc = subprocess.Popen(common.app_command(port, index, corpus, index.parent / "feedback.sqlite3"), cwd=common.ROOT, env=common.child_env(),
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    port_open = None
    try:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise SystemExit(f"app.py exited with {proc.returncode}; see {log.name}")
            if port_open is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    port_open = time.perf_counter() - started
                except OSError:
                    time.sleep(0.1)
                    continue
            try:
                reply = Client(url, verbose=False).predict(QUESTION, api_name="/chat")
            except Exception:
                time.sleep(0.1)
                continue
            answered = time.perf_counter() - started
            if not reply:
                raise SystemExit("app replied with nothing")
            return {"port_open": port_open, "first_answer": answered}
        raise SystemExit(f"app did not answer within {timeout} s; see {log.name}")
    finally:
        proc.terminate()  # only the child we started
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def importtime_rows(app: bool, top: int = 12) -> list[list[object]]:
    code = "import qa.engine, torch, sentence_transformers, faiss, bm25s" + (", gradio" if app else "")
    run = common.check(common.run_child([sys.executable, "-X", "importtime", "-c", code]), "python -X importtime")
    rows = []
    for line in run["stderr"].splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or "cumulative" in line:
            continue
        name = parts[2]
        if name.startswith(" ") and not name.startswith("  "):  # top level: one space, nested: more
            rows.append([name.strip(), int(parts[1]) / 1e6])
    rows.sort(key=lambda r: -r[1])
    return rows[:top]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cold start of python -m qa ask and python app.py.")
    parser.add_argument("--size", type=int, help="synthetic corpus of about this many chunks (default: corpus/)")
    parser.add_argument("--runs", type=int, default=5, help="cold starts of each kind (default 5)")
    parser.add_argument("--no-app", action="store_true", help="skip python app.py")
    parser.add_argument("--workdir", help="folder for the corpus and index (default: a new temp folder)")
    parser.add_argument("--quick", action="store_true", help="1 run each")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    with common.scratch(args.workdir) as work:
        return _run(args, runs, work)


def _run(args, runs: int, work: Path) -> int:
    corpus, index = work / "corpus", work / "index"
    info = common.prepare_corpus(corpus, args.size)
    common.note("building the index (not timed)")
    # In a child: a build that fine-tunes peaks near 1.9 GB, and children forked from a process that
    # large report its peak as theirs (ru_maxrss is inherited across fork).
    common.check(common.run_child([sys.executable, "-m", "qa", "build", "--corpus", str(corpus),
                                   "--index", str(index)]), "python -m qa build")
    app = not args.no_app
    common.print_header("cold_start.py", [f"corpus: {info['kind']}; index built beforehand; {runs} run(s) each; "
                                          "new process each run, OS file cache warm"])

    stages: dict[str, list[float]] = {}
    script = STAGE_SCRIPT.replace("if APP:", f"if {app}:")
    for r in range(runs):
        common.note(f"stages {r + 1}/{runs}")
        run = common.check(common.run_child([sys.executable, "-c", script, str(corpus), str(index), QUESTION]),
                           "stage child")
        marks = json.loads(run["stdout"].strip().splitlines()[-1])
        for name, seconds in marks.items():
            stages.setdefault(name, []).append(seconds)
        stages.setdefault("total in-process (sum of the above)", []).append(sum(marks.values()))
        stages.setdefault("process wall (incl. interpreter start)", []).append(run["seconds"])
    common.say(common.table("where the time goes, one process (ms)", ["stage", "median", "p95", "min", "max"],
                            [[k, 1000 * common.pct(v, 50), 1000 * common.pct(v, 95), 1000 * min(v), 1000 * max(v)]
                             for k, v in stages.items()], digits=1))

    rows = []
    asks = []
    for r in range(runs):
        common.note(f"python -m qa ask {r + 1}/{runs}")
        run = common.check(common.run_child([sys.executable, "-m", "qa", "ask", QUESTION, "--index", str(index),
                                             "--corpus", str(corpus)]), "python -m qa ask")
        asks.append(run)
    rows.append(["python -m qa ask (to exit)", common.pct([a["seconds"] for a in asks], 50),
                 common.pct([a["seconds"] for a in asks], 95), min(a["seconds"] for a in asks),
                 common.pct([a["max_rss_mb"] for a in asks], 50), "-"])
    if app:
        starts = []
        for r in range(runs):
            common.note(f"python app.py {r + 1}/{runs}")
            starts.append(app_first_answer(corpus, index))
        for key, label in (("port_open", "python app.py: port open"),
                           ("first_answer", "python app.py: first answer (/chat)")):
            values = [s[key] for s in starts]
            rows.append([label, common.pct(values, 50), common.pct(values, 95), min(values), "", "<= 10 s"
                         if key == "first_answer" else ""])
    common.say(common.table("cold start, wall seconds from process start", ["command", "median", "p95", "min",
                                                                            "peak MB", "target"], rows))
    common.say(common.table("slowest top-level imports (python -X importtime, one run, s cumulative)",
                            ["module", "seconds"], importtime_rows(app)))
    common.print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
