"""Many clients at once on POST /api/ask, with a light client, every answer checked (issue 26).

    python -m bench.http_load --index DIR                     # 1, 20 and 50 clients, quiet and busy
    python -m bench.http_load --index DIR --clients 20 --busy off --repeat 2
    python -m bench.http_load --index DIR --chat               # also: where one /chat answer's time goes
    python -m bench.http_load --quick                          # smoke: a fresh index, 2 clients, 12 questions

DIR is a built index folder (`python -m qa build --index DIR`: its tuned model is then in DIR/tuned);
without --index (or with --quick) the app builds a fresh one first (minutes, not timed). Every run
starts its own `python app.py --index DIR` on a free 127.0.0.1 port (QA_ENGINE_WORKERS passes through
to it), so the engine has seen none of the questions: it keeps the vectors of the questions it has
answered, and a question asked twice would cost less than a new one.

The questions are every distinct text the repository holds, in a fixed shuffled order: the labelled
sets of eval/sets/ (with their follow-ups' histories), the example questions of corpus/questions/,
the training lines of eval/training/ and the background questions of qa/background_questions.txt.

1. Reference: on a fresh app, each question alone, one at a time; its response body is kept.
2. Each load run, on a fresh app (after 20 warm-up questions that are not in the list): C clients
   (asyncio coroutines, one keep-alive HTTP/1.1 connection each, the bytes written and read by hand:
   `--client httpx` uses httpx.AsyncClient, which costs the client 2-5x the CPU) take the next
   question from the shared list until it is
   empty (the 1-client runs ask the first --single of them). Every response must be 200 with a body
   equal, byte for byte, to the reference's; anything else is an error or a mismatch.
   Measured over the load: answers/s, latency p50/p95/max, the server's CPU per answer (the app's
   process and its children, utime + stime from /proc) and the client's own CPU per answer
   (getrusage of this process). "busy" runs the load beside another CPU-bound process (common.busy).
   The load average is printed at the start and end of every run.
3. --chat: one question at a time, each path on its own distinct questions: the engine in this
   process (Engine.ask), the same through the engine's process (EngineProcess.ask: + the socket),
   the page's reply rendering alone (app.format_reply on those results), POST /api/ask, /chat over
   gradio's HTTP protocol by hand (POST /gradio_api/call/chat, then its event stream), and /chat
   through gradio_client; then /chat through gradio_client with 20 sessions is bench/concurrency.py.

Exits 1 on any error or mismatch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import httpx  # noqa: E402

from bench import common  # noqa: E402

Key = tuple[tuple[str, ...], str]  # (earlier questions, question)
TICKS = os.sysconf("SC_CLK_TCK")
WARM_UP = [f"warm-up question number {n}: what does naloxone do" for n in range(20)]


# --------------------------------------------------------------------------- questions


def question_keys(seed: int = 26) -> list[Key]:
    """Every distinct question text of the repository (with its history, for a labelled follow-up),
    in a fixed shuffled order."""
    keys: dict[Key, None] = {}
    for path in sorted((ROOT / "eval" / "sets").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                keys[(tuple(row.get("history") or ()), row["question"])] = None
    for folder in (ROOT / "corpus" / "questions", ROOT / "eval" / "training"):
        for path in sorted(folder.glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    keys[((), json.loads(line)["question"])] = None
    for line in (ROOT / "qa" / "background_questions.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            keys[((), line.strip())] = None
    ordered = [k for k in keys if k[1].strip()]
    random.Random(seed).shuffle(ordered)
    return ordered


def body(key: Key) -> bytes:
    return json.dumps({"question": key[1], "history": list(key[0])}).encode()


# --------------------------------------------------------------------------- the server's CPU


def tree_cpu_seconds(pid: int, own: bool = False) -> float:
    """utime + stime of `pid` and every process below it (all their threads), in seconds; `own`: of `pid` alone."""
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = int(fields[11]) + int(fields[12])  # utime, stime
    tree, frontier = {pid}, [] if own else [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(times.get(p, 0) for p in tree) / TICKS


def client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_line() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --------------------------------------------------------------------------- load


async def drive(url: str, keys: Sequence[Key], clients: int, timeout: float, client: str = "raw") -> dict:
    """`clients` coroutines share the list of keys; each posts the next one when its answer is in.

    client "raw": each coroutine keeps one HTTP/1.1 keep-alive connection of asyncio streams and writes
    and reads the bytes itself (the lightest client Python has); "httpx": an httpx.AsyncClient."""
    latencies: list[float] = []
    replies: dict[Key, tuple[int, bytes]] = {}
    errors: list[str] = []
    todo = iter(keys)
    post = _raw_poster(url, timeout) if client == "raw" else _httpx_poster(url, timeout, clients)

    async def one_client() -> None:
        async with post() as send:
            for key in todo:
                began = time.perf_counter()
                try:
                    status, content = await send(body(key))
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    errors.append(f"{key!r}: {exc!r}")
                    continue
                latencies.append(time.perf_counter() - began)
                replies[key] = (status, content)

    cpu0, began = client_cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    wall = time.perf_counter() - began
    return {"latencies": latencies, "replies": replies, "errors": errors, "wall": wall,
            "client_cpu": client_cpu_seconds() - cpu0}


def _raw_poster(url: str, timeout: float):
    """A factory of connections, each an async context giving send(body) -> (status, content)."""
    target = httpx.URL(url)
    host, port = target.host, target.port or 80
    head = (f"POST /api/ask HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            "Content-Length: ").encode()

    @contextlib.asynccontextmanager
    async def connection():
        streams: list = []

        async def send(payload: bytes) -> tuple[int, bytes]:
            if not streams:
                streams.extend(await asyncio.wait_for(asyncio.open_connection(host, port), timeout))
            reader, writer = streams
            try:
                writer.write(head + str(len(payload)).encode() + b"\r\n\r\n" + payload)
                status, content, close = await asyncio.wait_for(_response(reader), timeout)
            except BaseException:
                writer.close()
                streams.clear()
                raise
            if close:
                writer.close()
                streams.clear()
            return status, content

        try:
            yield send
        finally:
            if streams:
                streams[1].close()

    return connection


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the server closes the connection) of one HTTP/1.1 response with a Content-Length."""
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    headers = {name.strip().lower(): value.strip().lower() for name, value in headers.items()}
    if "content-length" not in headers:
        raise ValueError(f"a response without Content-Length: {lines[:6]}")
    content = await reader.readexactly(int(headers["content-length"]))
    return status, content, headers.get("connection") == "close"


def _httpx_poster(url: str, timeout: float, clients: int):
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    shared = httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout, limits=limits)
    users = [0]

    @contextlib.asynccontextmanager
    async def connection():
        users[0] += 1

        async def send(payload: bytes) -> tuple[int, bytes]:
            response = await shared.post("/api/ask", content=payload, headers={"Content-Type": "application/json"})
            return response.status_code, response.content
        try:
            yield send
        finally:
            users[0] -= 1
            if not users[0]:
                await shared.aclose()

    return connection


def fresh_app(index: Path, work: Path) -> common.AppProcess:
    app = common.start_app(Path(tempfile.mkdtemp(prefix="app-", dir=work)), index_dir=index)
    deadline = time.monotonic() + common.APP_START_TIMEOUT
    while time.monotonic() < deadline:  # /api/ask answers 503 until the engine has loaded
        response = httpx.post(app.url + "api/ask", json={"question": WARM_UP[0]}, timeout=60)
        if response.status_code == 200:
            break
        time.sleep(0.2)
    for question in WARM_UP:
        httpx.post(app.url + "api/ask", json={"question": question}, timeout=60).raise_for_status()
    return app


def run_load(index: Path, work: Path, keys: Sequence[Key], clients: int, busy: bool,
             refs: dict[Key, tuple[int, bytes]] | None, timeout: float, client: str = "raw") -> dict:
    app = fresh_app(index, work)
    try:
        pid = app.process.pid
        with common.busy(busy):
            load_before = load_line()
            server0, page0 = tree_cpu_seconds(pid), tree_cpu_seconds(pid, own=True)
            out = asyncio.run(drive(app.url, keys, clients, timeout, client))
            server, page = tree_cpu_seconds(pid) - server0, tree_cpu_seconds(pid, own=True) - page0
            load_after = load_line()
        if "Traceback" in app.log_tail(200_000):
            out["errors"].append("a traceback in the server's log")
    finally:
        app.stop()
    answers = sum(1 for status, _ in out["replies"].values() if status == 200)
    bad_status = [f"{k!r}: HTTP {s}: {b[:120]!r}" for k, (s, b) in out["replies"].items() if s != 200]
    mismatches = [] if refs is None else [
        f"{k!r}" for k, (s, b) in out["replies"].items() if s == 200 and refs.get(k, (None, b""))[1] != b]
    lat = out["latencies"]
    return {"clients": clients, "busy": busy, "asked": len(keys), "answers": answers,
            "errors": len(out["errors"]) + len(bad_status), "mismatches": len(mismatches),
            "rate": answers / out["wall"] if out["wall"] > 0 else float("nan"),
            "p50": common.pct(lat, 50) * 1000, "p95": common.pct(lat, 95) * 1000,
            "max": max(lat) * 1000 if lat else float("nan"),
            "server_ms": server * 1000 / max(answers, 1), "page_ms": page * 1000 / max(answers, 1),
            "client_ms": out["client_cpu"] * 1000 / max(answers, 1),
            "load": f"{load_before} -> {load_after}", "wall": out["wall"], "replies": out["replies"],
            "examples": (out["errors"] + bad_status + mismatches)[:5]}


# --------------------------------------------------------------------------- where one /chat answer's time goes


def chat_breakdown(index: Path, work: Path, keys: Sequence[Key], per_path: int, timeout: float) -> list[tuple]:
    """p50 / p95 ms of one question at a time along each path, each path on questions of its own. The paths
    take turns, one question each, so a change in the machine's load falls on all of them alike."""
    from gradio_client import Client

    import app as page
    from qa.serving.engine import Engine
    from qa.serving.service import EngineProcess
    from qa.settings import Settings

    standalone = iter(k[1] for k in keys if not k[0])
    settings = Settings.from_env(index_dir=index)
    engine = Engine.open(settings, build="never")
    process = EngineProcess(settings)
    app = fresh_app(index, work)
    http = httpx.Client(base_url=app.url.rstrip("/"), timeout=timeout)
    client = Client(app.url, verbose=False, analytics_enabled=False, httpx_kwargs={"timeout": timeout})
    try:
        process.wait_ready(timeout=120)
        for question in WARM_UP:
            engine.ask(question)
            process.ask(question)
        results = []

        def by_hand(question: str) -> None:
            event = http.post("/gradio_api/call/chat", json={"data": [question]}).json()["event_id"]
            with http.stream("GET", f"/gradio_api/call/chat/{event}") as stream:
                for _ in stream.iter_bytes():
                    pass

        paths = {
            "engine, in this process (Engine.ask)": lambda q: results.append(engine.ask(q)),
            "page rendering alone (app.format_reply of those answers)": lambda q: page.format_reply(results[-1]),
            "engine + its process's socket (EngineProcess.ask)": process.ask,
            "  one status() round trip to the engine's process": lambda q: process.status(),
            "POST /api/ask": lambda q: http.post("/api/ask", content=body(((), q))).raise_for_status(),
            "/chat over gradio's HTTP protocol by hand (POST + event stream)": by_hand,
            "/chat through gradio_client (predict)": lambda q: client.predict(q, api_name="/chat"),
        }
        samples: dict[str, list[float]] = {name: [] for name in paths}
        loads = [load_line()]
        for _ in range(per_path):
            for name, call in paths.items():
                question = next(standalone)
                began = time.perf_counter()
                call(question)
                samples[name].append(time.perf_counter() - began)
        loads.append(load_line())
        idle0 = tree_cpu_seconds(app.process.pid)
        time.sleep(5.0)
        idle = (tree_cpu_seconds(app.process.pid) - idle0) / 5.0
    finally:
        client.close()
        http.close()
        app.stop()
        process.close()
    rows = [(name, *common.ms_summary(values)[:2], len(values)) for name, values in samples.items()]
    rows.append((f"(the idle app's CPU: {idle * 100:.1f}% of a core; load average {loads[0]} -> {loads[1]})",
                 float("nan"), float("nan"), 0))
    return rows


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Concurrent clients on POST /api/ask; every answer checked.")
    parser.add_argument("--index", help="a built index folder (default: build a fresh one first)")
    parser.add_argument("--clients", default="1,20,50", help="concurrent clients, comma-separated (default 1,20,50)")
    parser.add_argument("--busy", choices=("off", "on", "both"), default="both",
                        help="beside another CPU-bound process: off, on or both (default)")
    parser.add_argument("--questions", type=int, default=0, help="questions per load run (default: all of them)")
    parser.add_argument("--single", type=int, default=300, help="questions of a 1-client run (default 300)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each setting (default 1)")
    parser.add_argument("--chat", action="store_true", help="also: where one /chat answer's time goes")
    parser.add_argument("--chat-only", action="store_true", help="only that: no reference and no load runs")
    parser.add_argument("--per-path", type=int, default=100, help="with --chat: questions per path (default 100)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for one answer (default 60)")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="raw asyncio HTTP/1.1 connections (default), or httpx.AsyncClient")
    parser.add_argument("--quick", action="store_true", help="smoke: 2 clients, 12 questions, quiet, no --chat")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.busy, args.questions, args.single, args.repeat = "2", "off", 12, 6, 1
        args.per_path = min(args.per_path, 5)
    clients = [int(c) for c in args.clients.split(",") if c.strip()]
    busy = {"off": [False], "on": [True], "both": [False, True]}[args.busy]
    keys = question_keys()
    if args.questions:
        keys = keys[:args.questions]

    with common.scratch() as work:
        if args.index:
            index = Path(args.index).resolve()
        else:
            index = work / "index"
            common.note("building a fresh index through the app (not timed) ...")
            (work / "first").mkdir()
            first = common.start_app(work / "first", index_dir=index)
            try:
                common.wait_for_tuned_index(first, 1800)
            finally:
                first.stop()
        common.print_header("http_load.py", [
            f"index: {index}; engine workers: {os.environ.get('QA_ENGINE_WORKERS') or 'default (one per core)'}",
            f"{len(keys)} distinct questions ({sum(1 for k in keys if k[0])} with a history); "
            f"1-client runs ask the first {min(args.single, len(keys))}; client: "
            + ("asyncio streams, HTTP/1.1 by hand" if args.client == "raw" else f"asyncio + httpx {httpx.__version__}")])

        failed, rows, reference = 0, [], None
        if args.chat_only:
            busy = []
        else:
            common.note(f"reference: {len(keys)} questions alone, one at a time, on a fresh app ...")
            reference = run_load(index, work, keys, 1, False, None, args.timeout, args.client)
            refs = reference["replies"]
            failed = reference["errors"] + reference["mismatches"]
            rows = [reference]
        for flag in busy:
            for count in clients:
                for _ in range(args.repeat):
                    common.note(f"{count} client(s){', busy' if flag else ''} ...")
                    run = run_load(index, work, keys[:args.single] if count == 1 else keys, count, flag, refs,
                                   args.timeout, args.client)
                    rows.append(run)
                    failed += run["errors"] + run["mismatches"]
        headers = ["run", "clients", "answers", "errors", "mismatches", "answers/s", "p50 ms", "p95 ms", "max ms",
                   "server CPU ms/answer", "of it the page's", "client CPU ms/answer", "load avg (1/5/15) start -> end"]
        table = [("reference (alone)" if r is reference else ("busy" if r["busy"] else "quiet"), r["clients"],
                  r["answers"], r["errors"], r["mismatches"], r["rate"], r["p50"], r["p95"], r["max"], r["server_ms"],
                  r["page_ms"], r["client_ms"], r["load"]) for r in rows]
        if rows:
            common.say(common.table("POST /api/ask, distinct questions, each answer checked against the reference",
                                    headers, table, digits=1))
        for r in rows:
            for line in r["examples"]:
                common.say(f"# {r['clients']} clients{' busy' if r['busy'] else ''}: {line[:300]}")
        if args.chat or args.chat_only:
            used = set(keys)
            spare = [k for k in question_keys(seed=27) if k in used]  # another order: paths do not share texts
            common.say(common.table("one answer at a time, by path (distinct questions per path, paths in turn)",
                                    ["path", "p50 ms", "p95 ms", "n"],
                                    chat_breakdown(index, work, spare, args.per_path, args.timeout), digits=1))
        common.print_footer()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
