"""`python -m qa ask --jsonl`: a stream of JSON question lines in, one JSON answer line per question out.

Owns the loop: reading lines, embedding the questions that have arrived
together (Engine.prepare: one batched forward pass instead of one per
question), answering them `workers` at a time, and writing each answer, in
the input's order, as soon as it and those before it are done. The next
chunk is embedded while the one before is answered: answering is mostly
Python, which holds one core at a time, and the forward passes use the
other.

Lines are taken in chunks of what has already arrived, at most CHUNK_LINES:
a pipe full of questions is embedded in batches, while a script that writes
a line and waits for its answer gets it at once (its chunk is that one line,
embedded alone as a single question is). A line that is not a question (not
JSON, not an object with a text "question", an empty or oversized question)
gets {"line": N, "error": "..."} in its place and the others go on; a blank
line gets no answer line.

Limits: the chunk a question arrives in decides whether its vector comes from
a batch or from a pass of its own, which can differ in the last bits
(Engine.prepare); answers are the same in practice (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import json
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterable, TextIO

from qa.errors import QAError
from qa.serving.interface import ask_request

# Questions embedded together at most: enough for full batches (Engine.prepare's PREPARE_BATCH on
# each core), few enough that the first answers of a long pipe are not held back for long.
CHUNK_LINES = 32


def answer_jsonl(engine, lines: Iterable[str], out: TextIO, workers: int = 1) -> int:
    """One JSON answer line per question line, in order; a bad line gets an error object and the batch goes on.

    `workers` questions are answered at once (Settings.ask_workers). An exception from writing (a closed
    pipe) stops the batch and is raised."""
    arrived: queue.Queue = queue.Queue(maxsize=2 * CHUNK_LINES)  # read ahead, not the whole input
    prepared: queue.Queue = queue.Queue(maxsize=1)  # the next chunk, embedded while the one before is answered
    in_order: queue.Queue = queue.Queue(maxsize=2 * workers)  # answers in the making, oldest first
    failure: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            for number, line in enumerate(lines, 1):
                if stop.is_set():
                    break
                if line.strip():
                    arrived.put((number, line))
        except BaseException as exc:  # noqa: BLE001 - the input failed (unreadable bytes): raised below
            failure.append(exc)
        finally:
            arrived.put(None)

    def prepare(embedding: ThreadPoolExecutor) -> None:
        # Its own threads for the forward passes: on the answering pool they would wait behind the answers
        # of the chunk before (Python holding one core), instead of using the other core meanwhile.
        try:
            while not failure and not stop.is_set() and (chunk := _next_chunk(arrived)):
                requests = [(number, _request(number, line)) for number, line in chunk]
                try:
                    engine.prepare([r for _, r in requests if isinstance(r, tuple)], run=embedding.map)
                except QAError:
                    pass  # e.g. the question model cannot load: each question's own answer says so
                hand_over(requests)
        except BaseException as exc:  # noqa: BLE001 - unexpected: raised below
            failure.append(exc)
        finally:
            hand_over(None)

    def hand_over(requests: list | None) -> None:
        """To the answering loop, waiting while it answers the chunk before; given up once it has stopped."""
        while not stop.is_set():
            try:
                prepared.put(requests, timeout=0.1)
                return
            except queue.Full:
                continue

    def write() -> None:
        while (item := in_order.get()) is not None:
            if failure:
                continue  # taken, so the answering loop is never stuck on a full queue; it stops at its next chunk
            try:
                out.write(json.dumps(item.result(), ensure_ascii=False) + "\n")
                out.flush()
            except BaseException as exc:  # noqa: BLE001 - unexpected (a closed pipe): raised below
                failure.append(exc)

    with (ThreadPoolExecutor(max_workers=workers, thread_name_prefix="jsonl-ask") as pool,
          ThreadPoolExecutor(max_workers=workers, thread_name_prefix="jsonl-embed") as embedding):
        reader = threading.Thread(target=read, name="jsonl-reader", daemon=True)
        preparer = threading.Thread(target=prepare, args=(embedding,), name="jsonl-preparer", daemon=True)
        writer = threading.Thread(target=write, name="jsonl-writer", daemon=True)
        reader.start()
        preparer.start()
        writer.start()
        try:
            while not failure and (requests := prepared.get()) is not None:
                for number, request in requests:
                    if failure:
                        break
                    in_order.put(pool.submit(_answer, engine, number, request))
        finally:
            stop.set()
            _drain(arrived)  # a reader blocked on a full queue sees `stop`
            in_order.put(None)
            writer.join()
    if failure:
        raise failure[0]
    return 0


def _next_chunk(arrived: queue.Queue) -> list[tuple[int, str]]:
    """The next line (waiting for it) and those that have arrived behind it, up to CHUNK_LINES; [] at the end."""
    first = arrived.get()
    if first is None:
        arrived.put(None)  # the end stays visible to a later call
        return []
    chunk = [first]
    while len(chunk) < CHUNK_LINES:
        try:
            item = arrived.get_nowait()
        except queue.Empty:
            break
        if item is None:
            arrived.put(None)
            break
        chunk.append(item)
    return chunk


def _drain(arrived: queue.Queue) -> None:
    while True:
        try:
            arrived.get_nowait()
        except queue.Empty:
            return


def _request(number: int, line: str) -> tuple[str, list[str]] | dict:
    """(question, history) of one JSON line, or {"line": number, "error": ...} saying what is wrong with it."""
    try:
        try:
            request = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
        return ask_request(request)
    except (ValueError, QAError) as exc:
        return {"line": number, "error": str(exc)}


def _answer(engine, number: int, request: tuple[str, list[str]] | dict) -> dict:
    """The answer to one parsed line as a dict, or its error object."""
    if isinstance(request, dict):
        return request
    try:
        return engine.ask(*request).to_dict()
    except (ValueError, QAError) as exc:
        return {"line": number, "error": str(exc)}


__all__ = ["answer_jsonl", "CHUNK_LINES"]
