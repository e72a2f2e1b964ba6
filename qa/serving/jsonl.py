"""`python -m qa ask --jsonl`: a stream of JSON question lines in, one JSON answer line per question out.

Owns the loop: reading lines, embedding the texts of the questions that have
arrived together (Engine.texts_to_embed, Engine.embedding_batches:
forward passes over texts of similar token counts, shortest first, instead
of one pass per text), answering each question as soon as its texts are
embedded (a follow-up also after the line of its earlier turn),
`workers` at a time, and writing each answer, in the input's order, as soon as
it and those before it are done.

Both cores stay busy: the forward passes run on `workers` embedding threads
(onnxruntime lets go of the GIL), and the answers, which are mostly Python
and hold one core at a time, run beside the passes still to come instead of
after them. What runs alone at the end is the answers of the last batch.

Lines are taken in chunks of what has already arrived, at most CHUNK_LINES:
a pipe full of questions is embedded in batches sorted across its chunk,
while a script that writes a line and waits for its answer gets it at once
(its chunk is that one line, whose texts are embedded side by side, each in
a pass of its own when there are no more of them than threads). A line that
is not a question (not JSON, not an object with a text "question", an empty
or oversized question) gets {"line": N, "error": "..."} in its place and
the others go on; a blank line gets no answer line.

Limits: the chunk a question arrives in decides whether its vector comes from
a batch or from a pass of its own, which can differ in the last bits
(Engine.embed_batch); answers are the same in practice (docs/BENCHMARKS.md). A
follow-up whose earlier turn has no line of its own among the last
CHUNK_LINES answers that turn again for itself (Engine.ask), as it would
alone.
"""

from __future__ import annotations

import json
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterable, TextIO

from qa.errors import QAError
from qa.serving.interface import ask_request

# Lines whose texts are sorted by token count together at most: the more, the less of a pass is padding;
# what has arrived is taken, so a script waiting for each answer is not held back.
CHUNK_LINES = 128


def answer_jsonl(engine, lines: Iterable[str], out: TextIO, workers: int = 1) -> int:
    """One JSON answer line per question line, in order; a bad line gets an error object and the batch goes on.

    `workers` questions are answered at once (Settings.ask_workers), and as many forward passes run at once.
    An exception from writing (a closed pipe) stops the batch and is raised."""
    arrived: queue.Queue = queue.Queue(maxsize=2 * CHUNK_LINES)  # read ahead, not the whole input
    # Each line's answer to come, in the input's order: bounded, so the loop plans no further ahead than this.
    in_order: queue.Queue = queue.Queue(maxsize=2 * CHUNK_LINES)
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

    def write() -> None:
        while (slot := in_order.get()) is not None:
            if failure:
                continue  # taken, so the loop is never stuck on a full queue; it stops at its next line
            try:
                out.write(json.dumps(slot.result(), ensure_ascii=False) + "\n")
                out.flush()
            except BaseException as exc:  # noqa: BLE001 - unexpected (a closed pipe): raised below
                failure.append(exc)

    def embed(batch: dict[str, bool]) -> None:
        try:
            engine.embed_batch(batch)
        except QAError:
            pass  # e.g. the question model cannot load: each question's own answer says so
        except BaseException as exc:  # noqa: BLE001 - unexpected: raised below; the questions are still answered
            failure.append(exc)

    def answer(slot: Future, number: int, request) -> None:
        try:
            slot.set_result(_answer(engine, number, request))
        except BaseException as exc:  # noqa: BLE001 - unexpected: the writer raises it
            slot.set_exception(exc)

    def start(slot: Future, number: int, request) -> None:
        try:
            answering.submit(answer, slot, number, request)
        except RuntimeError as exc:  # the loop has stopped (a failure) and shut the answering down
            slot.set_exception(exc)

    # Forward passes first in the shutdown (the last listed): their last callbacks start answers.
    with (ThreadPoolExecutor(max_workers=workers, thread_name_prefix="jsonl-ask") as answering,
          ThreadPoolExecutor(max_workers=workers, thread_name_prefix="jsonl-embed") as embedding):
        reader = threading.Thread(target=read, name="jsonl-reader", daemon=True)
        writer = threading.Thread(target=write, name="jsonl-writer", daemon=True)
        reader.start()
        writer.start()
        # A text given to a forward pass not yet done: a later question that needs it waits for that pass.
        claimed: dict[str, tuple[bool, Future]] = {}  # text -> (its token vectors too, the pass)
        # The answers of the last lines by (question, history): a follow-up waits for its earlier turns' lines,
        # whose answers it then finds remembered (Engine.ask) instead of answering those turns again.
        asked: dict[tuple[str, tuple], Future] = {}
        try:
            while not failure and (chunk := _next_chunk(arrived)):
                requests = [(number, _request(number, line)) for number, line in chunk]
                for text in [t for t, (_, done) in claimed.items() if done.done()]:
                    del claimed[text]
                needs, texts = [], {}
                for _, request in requests:
                    wanted = _texts_to_embed(engine, request)
                    needs.append(wanted)
                    for text, tokens in wanted.items():
                        if text not in claimed or tokens > claimed[text][0]:
                            texts[text] = texts.get(text, False) or tokens
                for batch in engine.embedding_batches(texts, workers):
                    done = embedding.submit(embed, batch)
                    claimed.update((text, (tokens, done)) for text, tokens in batch.items())
                for (number, request), wanted in zip(requests, needs):
                    if failure:
                        break
                    slot: Future = Future()
                    before = {claimed[text][1] for text in wanted if text in claimed}
                    if isinstance(request, tuple):
                        if request[1]:  # a follow-up: after its earlier turns' lines
                            before |= {asked[turn] for turn in _turns(request[1]) if turn in asked}
                        asked[(request[0], tuple(request[1]))] = slot
                        if len(asked) > CHUNK_LINES:
                            del asked[next(iter(asked))]  # the oldest: long answered
                    _when_done(before, lambda slot=slot, number=number, request=request:
                               start(slot, number, request))
                    in_order.put(slot)
        finally:
            stop.set()
            _drain(arrived)  # a reader blocked on a full queue sees `stop`
            if failure:  # what is queued is not wanted
                embedding.shutdown(cancel_futures=True)
                answering.shutdown(cancel_futures=True)
            in_order.put(None)
            writer.join()
    if failure:
        raise failure[0]
    return 0


def _texts_to_embed(engine, request: tuple[str, list[str]] | dict) -> dict[str, bool]:
    """What a parsed line's question needs embedded (Engine.texts_to_embed); nothing for a bad line."""
    if isinstance(request, dict):
        return {}
    try:
        return engine.texts_to_embed(*request)
    except QAError:
        return {}  # e.g. the index cannot be read: the question's own answer says so


def _turns(history: list[str]) -> list[tuple[str, tuple]]:
    """The (question, history) of each earlier turn of a follow-up with `history`, as its own line would ask it."""
    return [(question, tuple(history[:turn])) for turn, question in enumerate(history)]


def _when_done(futures: set[Future], then) -> None:
    """Call `then()` once all `futures` are done: now if they are, else in the thread that finishes the last."""
    if not futures:
        then()
        return
    left = [len(futures)]
    lock = threading.Lock()

    def one_done(_: Future) -> None:
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            then()

    for future in futures:
        future.add_done_callback(one_done)


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
