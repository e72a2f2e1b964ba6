"""Build time: a tuned model trained and exported in a process of its own, which leaves before the build embeds.

Owns running `tuning.ensure_trained` and then `export.ensure` for a tuned
model that is not on disk yet, in a child process (multiprocessing, spawn),
and passing its messages and progress steps back to the build as they come;
and the same for the export alone of a model as it ships (`exported`), which
the page's background builds ask for before they build.

Why: torch, the training and the trace are most of a build's memory, and a
process keeps much of what it once used. When they leave with their
process, the build embeds through onnxruntime alone, and a build beside the
page never holds torch and the page's model at once (docs/BENCHMARKS.md,
memory while the tuned model is prepared). The child runs the same code on
the same settings and threads: the same weights, bit for bit.

Limits: a tuned model already on disk is used as it is, in the build's own
process (its export, if missing, is then made there). An error in the child
reaches the build as the same qa error with the child's message; a child that
dies without one is a ModelError. Interrupting the build ends the child; a
child whose build died ends at its next step, when it cannot report it.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Callable

from qa import errors
from qa.models import export, tuning
from qa.models.embedding import Embedder
from qa.settings import Settings


def tuned_model(settings: Settings, plan: tuning.TuningPlan, say: Callable[[str], None],
                step: Callable[[str, int, int], None]) -> tuple[Path, float]:
    """The folder of the model tuned on `plan`'s pairs, trained and exported in a child process unless it is
    on disk already; also the seconds spent training. `step(stage, done, total)` gets "fine-tuning" (in
    training steps) and "exporting"."""
    if tuning.is_trained(settings, plan.key):
        return tuning.model_dir(settings, plan.key), 0.0
    result, code = _in_child(_prepare, (settings, plan), say, step)
    if result is None:
        raise errors.ModelError(f"the fine-tuning process ended (exit code {code}) without a model "
                                f"in {tuning.model_dir(settings, plan.key)}")
    return result


def exported(settings: Settings, model: str, say: Callable[[str], None],
             step: Callable[[str, int, int], None] = lambda stage, done, total: None) -> None:
    """Make the ONNX export of `model` (a name or folder) in a child process unless it is whole in the store
    or known to fail here: the build that follows finds it made, and loads no torch for it."""
    key = export.export_key(model)
    if export.is_whole(settings, key) or export.failure(settings, key) is not None:
        return
    step("exporting", 0, 1)
    _in_child(_export, (settings, model), say, step)
    step("exporting", 1, 1)


def _export(settings: Settings, model: str, conn) -> None:
    """The child: make the export (or record why it cannot be made)."""
    _reporting(conn, lambda send: export.ensure(settings, Embedder(model, settings.batch_size, settings.threads),
                                                lambda message: send("say", message)))


def _in_child(target, args: tuple, say: Callable[[str], None], step: Callable[[str, int, int], None]):
    """Run `target(*args, conn)` in a spawned child, passing its messages on; its result, or raise its error."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of the build's memory
    ours, theirs = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(*args, theirs), name="qa-model-preparation")
    process.start()
    theirs.close()
    result = failure = None
    try:
        while True:
            try:
                kind, *rest = ours.recv()
            except EOFError:
                break
            if kind == "say":
                say(rest[0])
            elif kind == "step":
                step(*rest)
            elif kind == "done":
                result = Path(rest[0]), float(rest[1])
            else:
                failure = rest
        process.join()
    finally:
        ours.close()
        if process.is_alive():  # the build was interrupted, or raised
            process.kill()
            process.join()
    if failure is not None:
        kind = getattr(errors, failure[0], None)
        raise (kind if isinstance(kind, type) and issubclass(kind, errors.QAError) else errors.ModelError)(failure[1])
    return result, process.exitcode


def _reporting(conn, work: Callable) -> None:
    """The child's side: `work(send)`; a qa error goes back as its class name and message."""
    def send(*message) -> None:
        conn.send(message)

    try:
        work(send)
    except errors.QAError as exc:
        send("error", type(exc).__name__, str(exc))
    except (KeyboardInterrupt, BrokenPipeError):  # Ctrl-C reaches the whole process group; or the build is gone
        pass
    finally:
        conn.close()


def _prepare(settings: Settings, plan: tuning.TuningPlan, conn) -> None:
    """The child: train, export, report."""
    def work(send) -> None:
        folder, seconds = tuning.ensure_trained(settings, plan, lambda message: send("say", message),
                                                lambda done, total: send("step", "fine-tuning", done, total))
        send("step", "exporting", 0, 1)
        export.ensure(settings, Embedder(str(folder), settings.batch_size, settings.threads),
                      lambda message: send("say", message))
        send("step", "exporting", 1, 1)
        send("done", str(folder), seconds)
    _reporting(conn, work)


__all__ = ["tuned_model", "exported"]
