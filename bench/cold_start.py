"""Cold start: `python -m qa ask` and `python app.py` to the first answer, with the index already built.

    nice -n 19 python -m bench.cold_start [--runs 5] [--size CHUNKS] [--no-app] [--quick]

The index is built once first (not timed) in a temporary folder. The children
run as on a user's install, where Python's bytecode is written once and then
read: PYTHONDONTWRITEBYTECODE (set in some shells, which would recompile qa/
in every child) is cleared for them, their bytecode is kept under the scratch
folder (PYTHONPYCACHEPREFIX; the checkouts are not written to), and one
untimed run of each command warms it. Then, each in a fresh child process
("cold" = new process; the OS file cache is warm, as it is on a server that
restarts):

1. stages: a child times, in order, the imports (onnxruntime + tokenizers,
   faiss, the rest of qa), the index load (qa.indexing.index.load with checksums), the
   question model's load (its ONNX export: checksum, session, sample check),
   and the first and second Engine.ask, one after the other; and says whether
   torch, bm25s or scipy was imported (none may be). `qa ask` itself loads the
   question model in a thread beside its imports (qa/cli.py), so its wall
   time is less than these stages' sum;
2. `python -m qa ask QUESTION --index I --corpus C`: wall time to exit;
3. `python app.py --port P --host 127.0.0.1 --index I --corpus C`:
   from Popen to the first reply of gradio_client
   Client(url).predict(question, api_name="/chat"), polling every 0.1 s, plus
   when the port first accepted a connection; then the app is stopped.
   Targets (issue 23, quiet machine): `ask` at most 0.6 s; the page's first answer at most 3 s.
4. `python -X importtime -c "import qa.cli, qa.serving.engine, gradio"`: the slowest imports.

With --reference DIR (another checkout, e.g. the code before ONNX), its
`python -m qa ask` and `python app.py` run too, on an index it built, each
run right after this code's: the same load for both.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
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
import onnxruntime, tokenizers; mark("import onnxruntime + tokenizers")
import faiss; mark("import faiss")
from qa.serving.engine import Engine; from qa.settings import Settings; from qa.models.embedding import Embedder
from qa.indexing import index as index_store, question_model; mark("import qa (rest)")
if APP:
    import app; mark("import app (gradio and the page)")
settings = Settings.from_env(corpus_dir=sys.argv[1], index_dir=sys.argv[2])
index = question_model.load(settings); mark("index load (with checksums)")
# The model that embeds questions: the export of the one tuned on the question bank when the index names one.
embedder = Embedder(question_model.query_model(index.manifest, settings), settings.batch_size, settings.query_threads,
                    load=True, export=question_model.query_export(index.manifest, settings))
mark("question model load (ONNX export, checked)")
engine = Engine(settings, embedder, index)
reason = index_store.stale_reason(index.manifest, settings); mark("stale check (corpus hashes)")
engine.ask(sys.argv[3]); mark("first ask")
engine.ask(sys.argv[3]); mark("second ask")
heavy = [m for m in ("torch", "sentence_transformers", "transformers", "bm25s", "scipy") if m in sys.modules]
print(json.dumps({"marks": marks, "heavy": heavy}))
"""


def app_first_answer(corpus: Path, index: Path, timeout: float = 180, code: Path | None = None) -> dict:
    from gradio_client import Client

    port = common.free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(index.parent / f"app-{port}.log", "w")
    env = {**common.child_env(), **({"PYTHONPATH": str(code)} if code else {})}
    command = common.app_command(port, index, corpus, index.parent / "feedback.sqlite3")
    if code:
        command[1] = str(code / "app.py")
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=code or common.ROOT, env=env,
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
    code = "import qa.cli, qa.serving.engine, qa.serving.startup" + (", gradio" if app else "")
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
    parser.add_argument("--reference", help="another checkout whose ask and app run beside this code's")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    with common.scratch(args.workdir) as work, installed_bytecode(work / "pycache"):
        return _run(args, runs, work)


@contextlib.contextmanager
def installed_bytecode(folder: Path):
    """Children that write their bytecode once and read it after, as on a user's install, kept in `folder`.
    The children's environment is a copy of ours (common.child_env); ours is restored after."""
    saved = dict(os.environ)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(folder)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run(args, runs: int, work: Path) -> int:
    corpus, index = work / "corpus", work / "index"
    info = common.prepare_corpus(corpus, args.size)
    common.note("building the index (not timed)")
    # In a child: a build that fine-tunes peaks far above a serving process (docs/BENCHMARKS.md, build),
    # and children forked from a process that large report its peak as theirs (ru_maxrss is inherited
    # across fork).
    common.check(common.run_child([sys.executable, "-m", "qa", "build", "--corpus", str(corpus),
                                   "--index", str(index)]), "python -m qa build")
    app = not args.no_app
    reference = Path(args.reference).resolve() if args.reference else None
    if reference:
        common.note("building the reference's index (not timed)")
        common.check(common.run_child([sys.executable, "-m", "qa", "build", "--corpus", str(corpus),
                                       "--index", str(work / "reference-index")], code=reference), "reference build")
    script = STAGE_SCRIPT.replace("if APP:", f"if {app}:")
    versions = [("", None, index)] + ([(" [reference]", reference, work / "reference-index")] if reference else [])
    common.note("warming the bytecode: one untimed run of each command")
    common.check(common.run_child([sys.executable, "-c", script, str(corpus), str(index), QUESTION]), "stage child")
    for label, code, where in versions:
        common.check(common.run_child([sys.executable, "-m", "qa", "ask", QUESTION, "--index", str(where),
                                       "--corpus", str(corpus)], code=code), "python -m qa ask")
        if app:
            app_first_answer(corpus, where, code=code)
    common.print_header("cold_start.py", [f"corpus: {info['kind']}; index built beforehand; {runs} run(s) each; "
                                          "new process each run, OS file cache warm",
                                          "bytecode as on a user's install: written once (PYTHONDONTWRITEBYTECODE "
                                          "cleared, kept under the scratch folder), warmed by one untimed run "
                                          "of each command"])

    stages: dict[str, list[float]] = {}
    for r in range(runs):
        common.note(f"stages {r + 1}/{runs}")
        run = common.check(common.run_child([sys.executable, "-c", script, str(corpus), str(index), QUESTION]),
                           "stage child")
        reported = json.loads(run["stdout"].strip().splitlines()[-1])
        marks = reported["marks"]
        if reported["heavy"]:
            raise SystemExit(f"answering imported {reported['heavy']}")
        for name, seconds in marks.items():
            stages.setdefault(name, []).append(seconds)
        stages.setdefault("total in-process (sum of the above)", []).append(sum(marks.values()))
        stages.setdefault("process wall (incl. interpreter start)", []).append(run["seconds"])
    common.say(common.table("where the time goes, one process (ms)", ["stage", "median", "p95", "min", "max"],
                            [[k, 1000 * common.pct(v, 50), 1000 * common.pct(v, 95), 1000 * min(v), 1000 * max(v)]
                             for k, v in stages.items()], digits=1))

    rows = []
    asks = {label: [] for label, _, _ in versions}
    for r in range(runs):
        for label, code, where in versions:
            common.note(f"python -m qa ask{label} {r + 1}/{runs}")
            asks[label].append(common.check(common.run_child(
                [sys.executable, "-m", "qa", "ask", QUESTION, "--index", str(where), "--corpus", str(corpus)],
                code=code), "python -m qa ask"))
    for label, _, _ in versions:
        seconds = [a["seconds"] for a in asks[label]]
        rows.append([f"python -m qa ask (to exit){label}", common.pct(seconds, 50), common.pct(seconds, 95),
                     min(seconds), common.pct([a["max_rss_mb"] for a in asks[label]], 50),
                     "" if label else "<= 0.6 s"])
    if app:
        starts = {label: [] for label, _, _ in versions}
        for r in range(runs):
            for label, code, where in versions:
                common.note(f"python app.py{label} {r + 1}/{runs}")
                starts[label].append(app_first_answer(corpus, where, code=code))
        for label, _, _ in versions:
            for key, name in (("port_open", "python app.py: port open"),
                              ("first_answer", "python app.py: first answer (/chat)")):
                values = [s[key] for s in starts[label]]
                rows.append([name + label, common.pct(values, 50), common.pct(values, 95), min(values), "",
                             "<= 3 s" if key == "first_answer" and not label else ""])
    common.say(common.table("cold start, wall seconds from process start", ["command", "median", "p95", "min",
                                                                            "peak MB", "target"], rows))
    common.say(common.table("slowest top-level imports (python -X importtime, one run, s cumulative)",
                            ["module", "seconds"], importtime_rows(app)))
    common.print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
