"""The engine in a process of its own, for the chat page.

Owns: starting a child process (`python -m qa.serving.service FD PARENT_PID`) that opens the
engine the way qa/serving/startup.py does (answering as soon as an index exists, building
the rest in the background), and forwarding `ask()`, `articles()`, `built_at()`,
`generation()` and `status()` to it over a socket pair. `EngineProcess` has the
same methods, returns the same objects and raises the same errors as `Engine`, so
the page cannot tell them apart. `status()` also answers while the child is still
loading or building its first index: the child reports its `StartupStatus` until
it is ready.

Why a process: the page's own imports (gradio) take seconds, and the
engine's loading (onnxruntime, the index) or first build runs beside them on
the other core (docs/BENCHMARKS.md). The child is started before the page
imports gradio, and the page is served while the child is still loading: a
question asked meanwhile waits for it. Answering also leaves the web
server's interpreter lock free.

Concurrency: requests are multiplexed over the one socket, each with an id; the
child answers questions on a pool of `Settings.engine_workers` threads (by default
one per core it may use: a question's encode runs on one onnxruntime thread, which
releases the interpreter lock) and the other methods at once, and its replies come
back in whatever order they are ready. Nothing in this module serialises two
questions; the engine's own locks guard only its caches (qa/serving/engine.py).

Limits: a child that dies is started again at once (the thread reading its socket
sees it close); the questions in flight when it died get `EngineStoppedError`, later
ones wait for the new child. The child exits when its parent does. POSIX only (socketpair, pass_fds).
"""

from __future__ import annotations

import itertools
import os
import pickle
import subprocess
import sys
import threading
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any, Sequence

from qa.serving.child import child_begins, child_main, start_child
from qa.errors import QAError
from qa.settings import Settings
from qa.serving.status import FAILED, STARTING, StartupStatus

# What the parent may call; anything else is refused by the child.
_METHODS = ("ask", "articles", "built_at", "generation", "status")
# A question asked while the engine loads waits this long before being told
# to retry: long enough for a first build with the model as it ships, and for
# one that must fine-tune first on a busy 2-core machine (docs/BENCHMARKS.md,
# first_start).
WAIT_FOR_LOADING_S = 180.0


class EngineStoppedError(QAError):
    """The engine's process stopped (killed, out of memory); a new one is starting."""


class EngineStartingError(QAError):
    """The engine's process has not finished loading yet."""


class EngineProcess:
    """An `Engine` running in a child process; start it as early as possible."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()  # the child, its socket and the requests in flight
        self._send_lock = threading.Lock()  # one message written to the socket at a time
        self._ready = threading.Event()
        self._startup_error: QAError | None = None
        self._status = StartupStatus(STARTING, None, message="The answering engine is starting.")
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._alive = False  # a child is running (False once close() stopped it)
        self._pending: dict[int, Future] = {}  # request id -> its reply, for the current child
        self._ids = itertools.count()
        with self._lock:
            self._start()

    # ------------------------------------------------------------------ the Engine's methods

    def ask(self, question: str, history: Sequence[str] = ()):
        return self._call("ask", question, list(history or ()))

    def articles(self):
        return self._call("articles")

    def built_at(self) -> str:
        return self._call("built_at")

    def generation(self) -> str:
        return self._call("generation")

    def status(self) -> StartupStatus:
        """The engine's start-up status; answered at once, also while the engine is still loading or building."""
        if not self._ready.is_set():
            return self._status
        if self._startup_error is not None:
            return StartupStatus(FAILED, None, message=str(self._startup_error), error=str(self._startup_error))
        return self._call("status")

    # ------------------------------------------------------------------ life cycle

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the child has loaded the engine; raise what stopped it from loading."""
        if not self._ready.wait(timeout):
            raise EngineStartingError("The answering engine is still loading; please try again in a moment.")
        if self._startup_error is not None:
            raise self._startup_error

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def close(self) -> None:
        """Stop the child (it also stops by itself when this process exits)."""
        with self._lock:
            self._stop_child()

    def _start(self) -> None:
        """A new child (called with self._lock held)."""
        self._process, self._conn = start_child("qa.serving.service")
        self._ready.clear()
        self._startup_error = None
        self._alive = True
        self._status = StartupStatus(STARTING, None, message="The answering engine is starting.")
        self._conn.send(self.settings)
        threading.Thread(target=self._read, args=(self._conn, self._process),
                         name="engine-replies", daemon=True).start()

    def _read(self, conn: Connection, process: subprocess.Popen) -> None:
        """The one reader of a child's socket: its start-up status until it says whether the engine loaded,
        then the replies, each handed to the request of its id."""
        try:
            status, value = conn.recv()
            while status == "status":
                self._status = value
                status, value = conn.recv()
            if status != "ready":
                self._startup_error = value if isinstance(value, QAError) else QAError(str(value))
        except (EOFError, OSError):
            code = process.wait()
            self._startup_error = EngineStoppedError(
                f"The answering engine stopped while loading (exit code {code}); see the messages above.")
        finally:
            self._ready.set()
        if self._startup_error is not None:
            with self._lock:  # a request sent while this child loaded (after its predecessor died)
                lost, self._pending = self._pending, {}
            for future in lost.values():
                future.set_exception(self._startup_error)
            return
        try:
            while True:
                request, status, value = conn.recv()
                with self._lock:
                    future = self._pending.pop(request, None)
                if future is not None:
                    future.set_result((status, value))
        except (EOFError, OSError):  # the child died, or close() closed its socket
            pass
        with self._lock:
            lost, self._pending = self._pending, {}
            code = process.poll()
            if conn is self._conn:  # died (killed, out of memory): a new child at once; close() sets no new conn
                self._stop_child()
                self._start()
        for future in lost.values():
            future.set_exception(self._stopped(code))

    @staticmethod
    def _stopped(code: int | None) -> EngineStoppedError:
        return EngineStoppedError(f"The answering engine stopped unexpectedly (exit code {code}) and is being "
                                  "restarted; please ask again in a few seconds.")

    def _call(self, method: str, *args: Any) -> Any:
        self.wait_ready(timeout=WAIT_FOR_LOADING_S)
        future: Future = Future()
        with self._lock:
            if not self._alive:
                raise EngineStoppedError("The answering engine was stopped.")
            request = next(self._ids)
            self._pending[request] = future
            conn = self._conn
        try:
            with self._send_lock:
                conn.send((request, method, args))
        except (EOFError, OSError):
            pass  # the reader sees the closed socket and fails this request with the others
        status, value = future.result()
        if status == "error":
            raise value
        return value

    def _stop_child(self) -> None:
        """Called with self._lock held."""
        self._alive = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


# ---------------------------------------------------------------------- the child

# Answered by the thread that reads the socket, at once: cheap, and never queued behind questions.
_AT_ONCE = ("articles", "built_at", "generation", "status")


def workers(settings: Settings) -> int:
    """How many questions the child answers at once: `Settings.engine_workers`, or 0 for one per core
    this process may run on."""
    if settings.engine_workers:
        return settings.engine_workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def serve(fd: int, parent: int) -> int:
    """The child's whole life: receive settings, open the engine, answer requests until EOF."""
    conn = child_begins(parent, fd)
    settings: Settings = conn.recv()
    from qa.serving.startup import open_engine  # the engine's imports happen here, in the child only

    try:
        engine = open_engine(settings, say=lambda text: print(text, flush=True),
                             report=lambda status: conn.send(("status", status)))
    except QAError as exc:
        conn.send(("failed", exc))
        return 1
    except Exception as exc:  # noqa: BLE001 - reported to the parent, traceback here
        traceback.print_exc()
        conn.send(("failed", QAError(f"the engine could not load: {exc}")))
        return 1
    conn.send(("ready", None))
    send_lock = threading.Lock()

    def answer(request: int, method: str, args: tuple) -> None:
        try:
            if method not in _METHODS:
                raise QAError(f"unknown engine request {method!r}")
            reply = (request, "ok", getattr(engine, method)(*args))
        except QAError as exc:
            reply = (request, "error", exc)
        except Exception as exc:  # noqa: BLE001 - the parent gets a plain error, the console the traceback
            traceback.print_exc()
            reply = (request, "error", RuntimeError(f"{type(exc).__name__}: {exc}"))
        message = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)  # outside the lock
        try:
            with send_lock:
                conn.send_bytes(message)
        except OSError:
            pass  # the parent is gone; the main thread sees EOF and returns

    with ThreadPoolExecutor(max_workers=workers(settings), thread_name_prefix="engine-ask") as pool:
        while True:
            try:
                request, method, args = conn.recv()
            except EOFError:
                pool.shutdown(wait=False, cancel_futures=True)
                return 0
            if method in _AT_ONCE:
                answer(request, method, args)
            else:
                pool.submit(answer, request, method, args)


def main(argv: Sequence[str] | None = None) -> int:
    return child_main(argv, "qa.serving.service", "qa.serving.service.EngineProcess", serve)

if __name__ == "__main__":
    sys.exit(main())


__all__ = ["EngineProcess", "EngineStoppedError", "EngineStartingError"]
