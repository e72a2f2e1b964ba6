"""Child processes that talk to their parent over a socket pair and die with it.

Owns both ends of that arrangement, for the two children the page has: the
engine's process (qa/serving/service.py, `python -m qa.serving.service`) and the background
build process (qa/serving/startup.py, `python -m qa.serving.startup`). The parent side starts
`python -m MODULE FD PARENT_PID` with one end of a socket pair; the child side
leaves as soon as that parent is gone.

Limits: POSIX only (socketpair, pass_fds).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Callable, Sequence

from qa.settings import PROJECT_ROOT


def start_child(module: str) -> tuple[subprocess.Popen, Connection]:
    """Start `python -m module FD PARENT_PID`; return the process and our end of its socket pair."""
    ours, theirs = socket.socketpair()
    env = dict(os.environ)
    # `-m module` must find this package whatever the current folder is;
    # the current folder itself is kept, so relative paths in settings mean the same.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    try:
        process = subprocess.Popen(
            # Our pid goes along: a child that starts after we died must see it at once.
            [sys.executable, "-m", module, str(theirs.fileno()), str(os.getpid())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
    finally:
        theirs.close()
    return process, Connection(ours.detach())


def child_main(argv: Sequence[str] | None, module: str, starter: str, run: Callable[[int, int], int]) -> int:
    """The command line of a child `module`: `python -m module FD PARENT_PID`, as start_child gives it,
    then `run(fd, parent)`. Anything else is a usage error; Ctrl-C, which reaches the whole process
    group, ends it quietly (the parent reports it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2 or not all(arg.isdigit() for arg in argv):
        print(f"usage: python -m {module} FD PARENT_PID  (started by {starter}, not by hand)", file=sys.stderr)
        return 2
    try:
        return run(int(argv[0]), int(argv[1]))
    except KeyboardInterrupt:
        return 130


def child_begins(parent: int, fd: int) -> Connection:
    """What both children do first: leave with the parent, keep libraries' notices to their developers
    (sentence-transformers' deprecations, logged rather than warned) out of the product's log while
    their errors still show, and open the parent's end of the socket pair."""
    exit_with_parent(parent)
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    return Connection(fd)


def exit_with_parent(parent: int) -> None:
    """Leave when the parent is gone, even in the middle of a long build (which is crash-safe).

    `parent` is the pid the parent gave us, not our own getppid(): a parent killed
    before this line runs has already handed us to init, and getppid() would then
    name init as the parent to wait for, forever.
    """
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
