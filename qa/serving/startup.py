"""Start-up of the serving engine: answer as soon as an index exists, build the rest in the background.

Owns the way to the first answer (the states it goes through are qa/serving/status.py's
`StartupStatus`), for the chat page's engine process (qa/serving/service.py):

- a usable index that is up to date: load it and answer (under a second);
- a usable index that is out of date (articles changed): answer from it at
  once, and rebuild in the background; the engine swaps the new generation
  in between two questions (qa/serving/engine.py);
- no usable index (a fresh machine, another format, damaged): build one
  first. When the full build would have to fine-tune the model (qa/models/tuning.py,
  a minute or more), the first build uses the model as it ships ("base"),
  the engine answers from it, and a second build fine-tunes and re-embeds
  in the background ("tuned"), swapped in when it is live. The first build
  is provisional (qa/indexing/build.py): it leaves out the example
  questions and does not embed each sentence again under its section
  heading (the second embeds everything with its own model): about two
  fifths of the texts, and the status says so.

Builds run in processes of their own (`python -m qa.serving.startup FD PARENT_PID`,
started by `BackgroundBuild`), one process per build, one after the other
under the index's build lock: torch, the training and the export stay in
those processes and their memory leaves with them, so the serving process
only ever holds onnxruntime, the index and one model, and the tuned build
does not start beside what the first build held (docs/BENCHMARKS.md,
memory while the tuned model is prepared). The build process reports its stages as numbers
(`qa.indexing.build.build(steps=...)`), from which `status()` estimates what is left.

Limits: estimates come from the rates measured so far in this start-up: the
fine-tuning's steps, the first build's embedding; before a stage has run,
its time is not counted. A build that fails in the background leaves the
engine answering from what it has, and the status says why. The build
process leaves when the engine's process does (a killed build is cleaned
up by the next one).
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import Callable, Sequence

from qa.serving.child import child_begins, child_main, start_child
from qa.errors import IndexError_, IndexMissingError, IndexWriteError, ModelError, QAError
from qa.settings import Settings
from qa.serving.status import BUILDING, FAILED, TUNING, UPDATING, StartupStatus, model_of, serving_status

# Seconds between two reports of a build in progress while nothing answers yet.
REPORT_EVERY_S = 0.5
# The live generation's pointer file in the index folder (qa/indexing/index.py's CURRENT; that module's
# imports are what a fresh start does not wait for).
INDEX_POINTER = "CURRENT"


# ---------------------------------------------------------------------- the engine's way to its first answer


def open_engine(settings: Settings, say: Callable[[str], None],
                report: Callable[[StartupStatus], None] = lambda status: None):
    """An Engine answering as soon as possible; builds what is missing in the background (module docstring).

    `say` gets messages for the console; `report` gets the status while nothing answers yet."""
    engine = None
    if not (settings.index_dir / INDEX_POINTER).exists():
        # A fresh machine: the build starts before the engine's own imports (faiss, bm25s, onnxruntime:
        # tenths of a second), which then run beside it.
        say(f"No index in {settings.index_dir} yet: building it now (this happens once).")
    else:
        from qa.serving.engine import Engine
        try:
            engine = Engine.open(settings, build="never")  # the one way to open an engine; builds are made here
        except IndexError_ as exc:
            if not isinstance(exc, IndexMissingError):
                say(f"The index cannot be used ({exc}): building it again.")
            else:
                say(f"No index in {settings.index_dir} yet: building it now (this happens once).")
        except ModelError as exc:
            say(f"The question model cannot be used ({exc}): building the index again.")
    if engine is not None:
        from qa.indexing import index as index_store
        reason = index_store.stale_reason(engine.index.manifest, settings)
        if reason:
            say(f"The index is out of date ({reason}): answering from it while it is rebuilt in the background.")
            engine.startup = BackgroundBuild([settings], say, first_stage=UPDATING)
        return engine

    phases = [settings]
    if _would_train(settings):
        say("Building with the model as it ships first, to answer within seconds; the model tuned on the "
            "example questions follows in the background.")
        phases = [settings.replace(tune_epochs=0), settings]
    build = BackgroundBuild(phases, say, first_stage=BUILDING)
    from qa.serving.engine import Engine

    while not build.first_built.wait(REPORT_EVERY_S):
        report(build.status(None))
    if build.failure is not None and build.phase_failed == 0:
        if isinstance(build.failure, IndexWriteError) and "another build" in str(build.failure):
            say(f"{build.failure}; waiting for it to make an index live")
            _wait_for_index(settings)
        else:
            raise build.failure
    engine = Engine.open(settings, build="never")
    engine.startup = build
    return engine


def _would_train(settings: Settings) -> bool:
    """The full build would fine-tune a model that is not trained yet (a minute or more on 2 cores)."""
    from qa.models import tuning
    from qa.models.question_bank import load_bank

    plan = tuning.plan(settings, load_bank(settings.corpus_dir)[0])
    return plan is not None and not tuning.is_trained(settings, plan.key)


def _wait_for_index(settings: Settings) -> None:
    from qa.indexing import question_model

    while True:
        try:
            question_model.load(settings)
            return
        except IndexError_:
            time.sleep(REPORT_EVERY_S)


# ---------------------------------------------------------------------- the build process, seen from the engine


class BackgroundBuild:
    """Builds, one after the other, in a process of their own; what they report, as a StartupStatus."""

    def __init__(self, phases: Sequence[Settings], say: Callable[[str], None], first_stage: str) -> None:
        self.phases = list(phases)
        self.first_stage = first_stage
        self.first_built = threading.Event()  # the first build made a generation live (or failed)
        self.failure: QAError | None = None
        self.phase_failed: int | None = None
        self._say = say
        self._lock = threading.Lock()
        self._phase = 0
        self._done = False
        self._started = time.monotonic()
        self._stage: tuple[str, int, int, float] | None = None  # (name, done, total, started)
        self._seconds: dict[str, float] = {}  # stage -> seconds it took, in this start-up
        self._rates: dict[str, float] = {}  # stage -> units per second, when it ran
        self._totals: dict[str, int] = {}  # stage -> units it had
        self._stepped_at = self._started  # when the last step was reported: the estimate counts down from it
        self._shown: dict[str, float] = {}  # status stage -> the largest fraction reported: a bar never goes back
        self._start(0)
        threading.Thread(target=self._listen, name="background-build", daemon=True).start()

    def _start(self, phase: int) -> None:
        """A new build process for `phase`: what a build once used (torch, the exports, the model it
        embedded with) leaves with the process before the next phase starts."""
        self.process, self._conn = start_child("qa.serving.startup")
        self._conn.send((phase, self.phases[phase], phase == len(self.phases) - 1))

    def _listen(self) -> None:
        try:
            while True:
                event = self._conn.recv()
                kind = event[0]
                if kind == "say":
                    self._say(event[1])
                elif kind == "step":
                    self._step(*event[1:])
                elif kind == "built":
                    with self._lock:
                        self._finish_stage()
                        self._phase = event[1] + 1
                        self._done = self._phase >= len(self.phases)
                    self.first_built.set()
                    if not self._done:
                        self._conn.close()
                        self.process.wait()  # it leaves after its one build
                        self._start(self._phase)
                elif kind == "failed":
                    self._fail(event[1], event[2])
                    return
                if self._done:
                    return
        except (EOFError, OSError):
            if not self._done:
                code = self.process.wait()
                self._fail(self._phase, QAError(f"the build process stopped (exit code {code})"))
        finally:
            self._conn.close()
            self.process.wait()

    def _fail(self, phase: int, error: QAError) -> None:
        with self._lock:
            self.failure, self.phase_failed, self._done = error, phase, True
        self._say(f"The background build failed: {error}")
        self.first_built.set()

    def _step(self, phase: int, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._phase = phase
            if self._stage is None or self._stage[0] != stage:
                self._finish_stage()
                self._stage = (stage, done, total, now)
            else:
                self._stage = (stage, done, total, self._stage[3])
            self._stepped_at = now
            elapsed = now - self._stage[3]
            if done and elapsed > 0:
                self._rates[stage] = done / elapsed
            self._totals[stage] = total

    def _finish_stage(self) -> None:
        if self._stage is not None:
            self._seconds[self._stage[0]] = time.monotonic() - self._stage[3]
            self._stage = None

    @property
    def running(self) -> bool:
        return not self._done

    def seconds_left(self, all_phases: bool = True) -> float | None:
        """The current stage's rest at its own rate, plus the stages still to come at this start-up's rates
        (in this build only, unless `all_phases`); None while the current stage has no rate yet."""
        with self._lock:
            if self._done:
                return 0.0
            left = 0.0
            current = self._stage
            if current is not None:
                name, done, total, started = current
                rate = self._rates.get(name)
                if rate:  # counted down between two reports (fine-tuning reports every few seconds)
                    left += max((total - done) / rate - (time.monotonic() - self._stepped_at), 0.0)
                elif name in self._seconds:
                    left += self._seconds[name]
                else:  # no rate yet: the rest is not known, and the later stages alone would understate it
                    return None
            # What the phases still to come will do: fine-tuning (rate unknown before it starts), the
            # export, and embedding every text again with the new model.
            later = [] if current is None else {"fine-tuning": ["exporting", "embedding"],
                                                "exporting": ["embedding"]}.get(current[0], [])
            for _ in self.phases[self._phase + 1:] if all_phases else ():
                later += ["exporting", "embedding"]
            for name in later:
                if name == "embedding" and self._rates.get("embedding"):
                    left += self._totals.get("embedding", 0) / self._rates["embedding"]
                else:
                    left += self._seconds.get(name, 0.0)
            return left

    def status(self, manifest: dict | None) -> StartupStatus:
        """The status while this build runs, or after it, for the engine serving `manifest` (None: nothing yet)."""
        if manifest is None:
            if self.failure is not None:
                return StartupStatus(FAILED, None, message=f"The index could not be built: {self.failure}",
                                     error=str(self.failure))
        elif not self.running:
            return serving_status(manifest, str(self.failure) if self.failure else None)
        left = self.seconds_left(all_phases=manifest is not None)
        elapsed = time.monotonic() - self._started
        # None, or nothing left by the estimate while the build runs: no stage has a rate yet; not known, not done.
        fraction = elapsed / (elapsed + left) if left else None
        left = left or None
        with self._lock:
            step = self._stage[0] if self._stage is not None else "preparing"
        about = f", about {left:.0f} s left" if left else ""
        if manifest is None:
            stage = BUILDING
            message = f"Building the index ({step}{about}); questions wait for it."
        elif self.first_stage == BUILDING:
            stage = TUNING
            message = (f"Answering with the model as it ships, without the example questions yet; the model "
                       f"tuned on them is being prepared ({step}{about}).")
        else:
            stage = UPDATING
            message = f"Answering from the current index; a rebuild runs in the background ({step}{about})."
        if fraction is not None:  # an estimate that grows holds the bar where it was, never moves it back
            with self._lock:
                fraction = self._shown[stage] = max(fraction, self._shown.get(stage, 0.0))
        return StartupStatus(stage, model_of(manifest) if manifest else None, fraction, left, message)


# ---------------------------------------------------------------------- the build process itself


def _run_builds(fd: int, parent: int) -> int:
    """The build process: receive one phase's number, settings and whether it is the last, build it, report steps and the result."""
    conn = child_begins(parent, fd)
    number, settings, last = conn.recv()
    from qa.indexing.build import build as build_index
    from qa.models import preparation
    from qa.models.embedding import Embedder

    say = lambda text: conn.send(("say", text))  # noqa: E731
    steps = lambda stage, done, total: conn.send(("step", number, stage, done, total))  # noqa: E731
    try:
        # The export first: one traced with torch is made in a child (preparation.exported), so this process
        # embeds without torch.
        preparation.exported(settings, settings.model, say, steps)
        # A build that another follows is provisional: it leaves the example questions and the sentences'
        # section headings to that one, which embeds everything again with its own model anyway; the first
        # answer comes sooner without them.
        report = build_index(settings, Embedder(settings.model, settings.batch_size, settings.threads),
                             progress=say, steps=steps, provisional=not last)
        conn.send(("say", f"Built {report.chunks} passages from {report.files} articles "
                          f"({report.embedded} newly embedded) in {report.seconds:.1f} s."))
        conn.send(("built", number))
    except QAError as exc:
        conn.send(("failed", number, exc))
        return 1
    except Exception as exc:  # noqa: BLE001 - reported to the engine, traceback here
        traceback.print_exc()
        conn.send(("failed", number, QAError(f"{type(exc).__name__}: {exc}")))
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return child_main(argv, "qa.serving.startup", "qa.serving.startup.BackgroundBuild", _run_builds)

if __name__ == "__main__":
    sys.exit(main())


__all__ = ["open_engine", "BackgroundBuild"]
