"""The page server's log: one line per start-up stage, and one line per rejected request.

Owns what the page process does to its libraries so that its log says what the
product does: library progress bars only on a terminal and no deprecation
notices (`quiet_libraries`); a request our code refused,
or one that failed before reaching our code, logged as one line instead of a
traceback (`quiet_rejections`), while a fault in our code keeps its traceback.

Limits: `quiet_rejections` replaces the `traceback` module inside four of
gradio's modules and filters the web server's error logger; a gradio that
prints tracebacks elsewhere is not quieted (tests/test_app.py checks the log of
rejected requests on a real server). Imports no gradio itself until
`quiet_rejections` or `is_rejection` runs (app.py prepares gradio's start
before importing it: qa/serving/gradio_startup.py).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

log = logging.getLogger("app")

# A traceback through these files is a fault of ours; through none of them, a request the libraries refused.
APP_ROOT = Path(__file__).resolve().parents[2]
OUR_CODE = (APP_ROOT / "app.py", APP_ROOT / "qa")


def quiet_libraries() -> None:
    """The server's log says what the product does, one line per stage: the libraries' progress bars
    go to a terminal only, and their deprecation notices nowhere. Set in the environment, so the
    engine's process (started from here) inherits it; qa/serving/service.py quiets its loggers too."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning,ignore::FutureWarning")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    if not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")


def _chain(error: BaseException) -> list[BaseException]:
    """`error` and the exceptions that led to it."""
    chain: list[BaseException] = []
    while error is not None and all(error is not seen for seen in chain):
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def is_rejection(error: BaseException) -> bool:
    """A request our code refused (gr.Error), or one that failed before reaching our code (malformed data,
    an unknown endpoint: no frame of its traceback is ours) - the client's mistake, not a fault to fix."""
    import traceback

    import gradio as gr

    frames = [Path(f.filename) for e in _chain(error) for f in traceback.extract_tb(e.__traceback__)]
    return isinstance(error, gr.Error) or not any(f == OUR_CODE[0] or f.is_relative_to(OUR_CODE[1])
                                                  for f in frames)


def rejection_line(error: BaseException) -> str:
    """The one log line of a rejected request: each exception of the chain, kind and message."""
    return "rejected a request: " + "; ".join(
        f"{type(e).__name__}: {' '.join(str(getattr(e, 'message', None) or e).split())[:300]}" for e in _chain(error))


class _OneLineRejections:
    """Stands in for the `traceback` module inside gradio's request handling (quiet_rejections)."""

    def __init__(self, real) -> None:
        self._real = real

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def print_exc(self, *args, **kwargs) -> None:
        error = sys.exc_info()[1]
        if error is not None and is_rejection(error):
            log.warning("%s", rejection_line(error))
        else:  # a fault in our code: the whole traceback, to fix it
            self._real.print_exc(*args, **kwargs)


class _OneLineServerErrors(logging.Filter):
    """On the web server's error logger: a request that fails inside gradio's routing (an unknown endpoint or
    function) is logged as one line, not with the traceback the server attaches (quiet_rejections)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and is_rejection(error):
            record.msg, record.args = rejection_line(error), ()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_rejections() -> None:
    """A rejected request costs one log line, not a traceback: gradio prints a whole traceback for every
    request its handler refuses (an empty question, malformed data), and the web server one for every
    request that fails in gradio's routing. Faults in our code keep theirs."""
    import importlib
    import traceback

    for name in ("gradio.queueing", "gradio.routes", "gradio.route_utils", "gradio.utils"):
        module = importlib.import_module(name)
        if getattr(module, "traceback", None) is traceback:
            module.traceback = _OneLineRejections(traceback)
    logging.getLogger("uvicorn.error").addFilter(_OneLineServerErrors())
