"""Concurrent users: N chat sessions at once against the real app, every reply checked.

    nice -n 10 python -m bench.concurrency [--sessions 20] [--questions 25] [--time-limit 1200]
    python -m bench.concurrency --quick                  # 3 sessions x 4 questions (smoke test)
    python -m bench.concurrency --url http://127.0.0.1:7860/ [...]   # an app that is already running

Without --url it starts the real app, `python app.py --host 127.0.0.1 --port
<free port> --index <temp dir>` (default corpus; the first start builds
the index there), and stops it at the end. All traffic goes to that one
127.0.0.1 address; every loop is bounded in count and by --time-limit.

The questions are those of eval/sets/dev.jsonl (qa.evaluation.evaluate.load_questions),
as conversations:
- a standalone question is a conversation of one turn;
- a labelled follow-up ("why not?" after "is naloxone any use for ...") is a
  conversation of two or more turns, plus a few extra pairs that reuse the
  same follow-up after different questions (e.g. "why not?" after "does
  naloxone reverse ketamine"), so a reply depends on WHICH history it got;
- each follow-up text is also asked alone, with no history (a session that
  received another session's history would answer it instead of refusing).
Standalones and follow-up conversations are interleaved (two to one), and
session s starts at its own offset into that list (a different rotation
per session), taking conversations until it has asked M questions.

1. Reference: every conversation that any session will ask is asked once,
   alone (one Client; reset_session() before each conversation), and each
   reply is kept under its key (earlier questions of the conversation,
   question).
2. Load: N threads, one gradio_client Client each (its own server session,
   so its own chat history), released together; before each conversation
   the thread calls reset_session(), then asks the conversation's turns in
   order through /chat. Every reply must equal the reference for the same
   key, byte for byte; a reply that is the app's generic failure message,
   an exception, a time-out or a question left unasked at the time limit is
   an error.

Prints sessions, questions, errors, mismatches, latency p50/p95/max,
throughput (answers/s) and wall time of the load phase; exits 1 if there was
any error or mismatch (2 if the app could not be started or reached).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent

# No telemetry from gradio_client (it reads this variable even when analytics_enabled=False is passed).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

from bench import common  # noqa: E402

Key = tuple[tuple[str, ...], str]  # (earlier questions of the conversation, question)
Conversation = tuple[str, ...]  # its questions, in order

# Follow-ups reused after other questions, so that the reply shows which history the server used.
EXTRA_FOLLOW_UPS: tuple[Conversation, ...] = (
    ("does naloxone reverse ketamine", "why not?"),
    ("can naloxone reverse the effects of ketamine?", "why not?"),
    ("how does naloxone work", "how long does it last?"),
    ("what is a k-hole", "does it last?"),
    ("what are the side effects of ketamine", "and what if it makes me nauseous?"),
)
FAILURE_MARK = "something went wrong on our side"  # app.FAILURE: the app caught an exception
START_TIMEOUT = 300.0  # s: model load + first index build on a busy 2-core machine


# --------------------------------------------------------------------------- questions and plans


def conversations(path: Path | None = None) -> list[Conversation]:
    """The eval questions as conversations, standalones and follow-ups interleaved two to one."""
    from qa.evaluation.evaluate import DEFAULT_QUESTIONS, load_questions
    questions = load_questions(path or DEFAULT_QUESTIONS)
    standalone: list[Conversation] = []
    follow_ups: list[Conversation] = []
    for q in questions:
        conv = (*q.history, q.question)
        target = follow_ups if q.history else standalone
        if conv not in target:
            target.append(conv)
    for conv in EXTRA_FOLLOW_UPS:
        if conv not in follow_ups:
            follow_ups.append(conv)
    for conv in list(follow_ups):  # each follow-up also alone: with no history it has no topic
        if (conv[-1],) not in standalone:
            standalone.append((conv[-1],))
    ordered: list[Conversation] = []
    for i, conv in enumerate(standalone):
        ordered.append(conv)
        if i % 2 == 1:
            ordered.append(follow_ups[(i // 2) % len(follow_ups)])
    for conv in follow_ups:  # any not placed yet (a question file with few standalones)
        if conv not in ordered:
            ordered.append(conv)
    return ordered


def plan(convs: Sequence[Conversation], sessions: int, per_session: int) -> list[list[Conversation]]:
    """Session s: conversations from offset s*len/sessions onwards (cyclic) until `per_session`
    questions; the last one is cut short when it would go over."""
    plans = []
    for s in range(sessions):
        at, asked, mine = (s * len(convs)) // sessions, 0, []
        while asked < per_session:
            conv = convs[at % len(convs)][:per_session - asked]
            mine.append(conv)
            asked += len(conv)
            at += 1
        plans.append(mine)
    return plans


def keys(conv: Conversation) -> list[Key]:
    return [(conv[:i], conv[i]) for i in range(len(conv))]


# --------------------------------------------------------------------------- the app


def start_app(timeout: float = START_TIMEOUT) -> common.AppProcess:
    """`python app.py` on a free 127.0.0.1 port with a fresh index folder, removed again by stop()."""
    work = Path(tempfile.mkdtemp(prefix="qa-bench-conc-"))
    try:
        app = common.start_app(work, timeout=timeout)
        app.owned_dir = work
        common.wait_for_tuned_index(app, timeout)  # answers compared before and after a swap would differ
    except BaseException:
        if "app" in locals():
            app.stop()
        common.shutil.rmtree(work, ignore_errors=True)
        raise
    app.owned_dir = work
    return app


def new_client(url: str, timeout: float):
    from gradio_client import Client
    return Client(url, verbose=False, analytics_enabled=False, httpx_kwargs={"timeout": timeout})


def ask(client, question: str, timeout: float) -> str:
    """One /chat call, bounded by `timeout` seconds (the job is cancelled when it runs over).

    The reply comes back without its vote id (random for every reply, app.py), so two replies
    to the same question compare equal."""
    job = client.submit(question, api_name="/chat")
    try:
        reply = job.result(timeout=max(timeout, 0.1))
    except TimeoutError:
        job.cancel()
        raise
    return REPLY_ID.sub("", reply) if isinstance(reply, str) else reply


REPLY_ID = re.compile(r' data-reply="r[0-9a-f]{16}"')


# --------------------------------------------------------------------------- the run


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    answers: int = 0
    errors: Counter = field(default_factory=Counter)  # kind -> count
    mismatches: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)  # first few error messages
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, kind: str, detail: str, count: int = 1) -> None:
        with self.lock:
            self.errors[kind] += count
            if len(self.examples) < 5:
                self.examples.append(f"{kind}: {detail}"[:300])


def reference_replies(url: str, convs: Sequence[Conversation], timeout: float, deadline: float,
                      tally: Tally) -> dict[Key, str]:
    """Each conversation alone, on a fresh session: the expected reply for each key."""
    refs: dict[Key, str] = {}
    client = new_client(url, timeout)
    try:
        for n, conv in enumerate(convs):
            if n % 20 == 0:
                common.note(f"reference replies: {n}/{len(convs)} conversations")
            client.reset_session()
            for key in keys(conv):
                if time.monotonic() > deadline:
                    raise TimeoutError("time limit reached while taking the reference replies")
                reply = ask(client, key[1], min(timeout, deadline - time.monotonic()))
                if not isinstance(reply, str) or not reply or FAILURE_MARK in reply:
                    tally.error("reference reply is a failure", f"{key!r}: {str(reply)[:150]!r}")
                if key in refs and refs[key] != reply:  # the same key asked twice gave two replies
                    tally.mismatches.append(f"reference not reproducible for {key!r}")
                refs.setdefault(key, reply)
    finally:
        client.close()
    return refs


def session_worker(url: str, mine: list[Conversation], refs: dict[Key, str], timeout: float,
                   deadline: float, start: threading.Barrier, tally: Tally, ends: list[float]) -> None:
    try:
        client = new_client(url, timeout)
    except Exception as exc:  # noqa: BLE001 - counted and reported
        tally.error("client could not connect", repr(exc), sum(len(c) for c in mine))
        start.abort()
        return
    try:
        try:
            start.wait(timeout=max(1.0, deadline - time.monotonic()))
        except threading.BrokenBarrierError:
            tally.error("start barrier broken", "another session failed to connect", sum(len(c) for c in mine))
            return
        for c, conv in enumerate(mine):
            if c:
                client.reset_session()  # a new conversation: a new server session, empty history
            for t, key in enumerate(keys(conv)):
                left = deadline - time.monotonic()
                if left <= 0:
                    tally.error("not asked (time limit)", f"{key!r}",
                                len(conv) - t + sum(len(rest) for rest in mine[c + 1:]))
                    return
                began = time.perf_counter()
                try:
                    reply = ask(client, key[1], min(timeout, left))
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    tally.error(type(exc).__name__, f"{key!r}: {exc!r}")
                    # The history of this conversation is now unknown: skip its remaining turns.
                    tally.error("skipped after an error", f"{key!r}", len(conv) - t - 1)
                    break
                elapsed = time.perf_counter() - began
                with tally.lock:
                    tally.latencies.append(elapsed)
                if not isinstance(reply, str) or FAILURE_MARK in reply:
                    tally.error("failure reply", f"{key!r}: {str(reply)[:150]!r}")
                    continue
                with tally.lock:
                    tally.answers += 1
                    if reply != refs.get(key):
                        tally.mismatches.append(f"{key!r}: got {reply[:120]!r}")
    finally:
        ends.append(time.perf_counter())
        client.close()


def run(url: str, sessions: int, per_session: int, timeout: float, time_limit: float) -> int:
    started = time.monotonic()
    deadline = started + time_limit
    convs = conversations()
    plans = plan(convs, sessions, per_session)
    needed = list(dict.fromkeys(conv for mine in plans for conv in mine))  # incl. any cut-short ones
    # Each follow-up alone too (reference only): shows whether its reply depends on the history.
    needed += [alone for alone in dict.fromkeys((conv[-1],) for conv in needed if len(conv) > 1)
               if alone not in needed]
    turns = sum(len(conv) for mine in plans for conv in mine)
    follow_up_turns = sum(1 for mine in plans for conv in mine for key in keys(conv) if key[0])
    common.print_header("concurrency.py", [
        f"app: {url}",
        f"{sessions} sessions x {per_session} questions = {turns} questions "
        f"({follow_up_turns} of them follow-ups asked on their own session's history); "
        f"{len(needed)} distinct conversations; request time-out {timeout:.0f} s, time limit {time_limit:.0f} s"])

    tally = Tally()
    t0 = time.perf_counter()
    try:
        refs = reference_replies(url, needed, timeout, deadline, tally)
    except Exception as exc:  # noqa: BLE001 - the app is unreachable or too slow: say so
        common.say(f"# reference phase failed: {exc!r}")
        return 1
    ref_seconds = time.perf_counter() - t0
    follow_ups = {k: v for k, v in refs.items() if k[0]}
    history_matters = sum(1 for (h, q), v in follow_ups.items() if refs.get(((), q), v) != v)
    common.note(f"reference replies: {len(refs)} in {ref_seconds:.1f} s; load phase starting")

    start = threading.Barrier(sessions + 1)
    ends: list[float] = []
    threads = [threading.Thread(target=session_worker, name=f"session-{s}", daemon=True,
                                args=(url, plans[s], refs, timeout, deadline, start, tally, ends))
               for s in range(sessions)]
    for thread in threads:
        thread.start()
    try:
        start.wait(timeout=max(1.0, deadline - time.monotonic()))
    except threading.BrokenBarrierError:
        pass
    load_began = time.perf_counter()
    join_by = deadline + 2 * timeout  # every ask is bounded by the deadline, so threads end before this
    for thread in threads:
        thread.join(timeout=max(0.0, join_by - time.monotonic()))
    hung = sum(thread.is_alive() for thread in threads)
    if hung:
        tally.error("session thread still running after the time limit", f"{hung} thread(s)", hung)
    wall = (max(ends) if ends else time.perf_counter()) - load_began

    errors = sum(tally.errors.values())
    lat = tally.latencies
    rows = [
        ("sessions (concurrent clients)", sessions),
        ("questions planned", turns),
        ("  of which follow-ups", follow_up_turns),
        ("answers received", tally.answers),
        ("errors", errors),
        ("mismatches vs reference", len(tally.mismatches)),
        ("latency p50 (s)", common.pct(lat, 50)),
        ("latency p95 (s)", common.pct(lat, 95)),
        ("latency max (s)", max(lat) if lat else float("nan")),
        ("throughput (answers/s)", tally.answers / wall if wall > 0 else float("nan")),
        ("wall time of the load (s)", wall),
    ]
    common.say(common.table("concurrent sessions through /chat", ["measure", "value"], rows))
    common.say(f"# reference phase: {len(refs)} replies, one at a time, in {ref_seconds:.1f} s "
               f"({len(refs) / ref_seconds:.2f} answers/s); {history_matters} of {len(follow_ups)} "
               f"follow-ups get a different reply than the same question asked with no history "
               f"(so a session answered on another session's history would show as a mismatch)")
    for kind, count in sorted(tally.errors.items()):
        common.say(f"# error: {kind}: {count}")
    for line in tally.examples:
        common.say(f"#   e.g. {line}")
    for line in tally.mismatches[:10]:
        common.say(f"# mismatch: {line}")
    common.print_footer()
    return 1 if errors or tally.mismatches else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="N concurrent chat sessions against the app; every reply checked.")
    parser.add_argument("--url", help="a running app (default: start python app.py on a free port)")
    parser.add_argument("--sessions", type=int, default=20, help="concurrent sessions (default 20)")
    parser.add_argument("--questions", type=int, default=25, help="questions per session (default 25)")
    parser.add_argument("--quick", action="store_true", help="3 sessions x 4 questions (smoke test)")
    parser.add_argument("--time-limit", type=float, default=1200.0,
                        help="seconds for the whole run, reference replies included (default 1200)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for one reply (default 120)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sessions, args.questions = 3, 4
        args.time_limit = min(args.time_limit, 300.0)
    if args.sessions < 1 or args.questions < 1:
        parser.error("--sessions and --questions must be at least 1")
    try:
        app = common.AppProcess(args.url) if args.url else start_app()
    except RuntimeError as exc:
        print(f"Cannot start the app: {exc}", file=sys.stderr)
        return 2
    try:
        return run(app.url, args.sessions, args.questions, args.timeout, args.time_limit)
    finally:
        app.stop()


if __name__ == "__main__":
    sys.exit(main())
