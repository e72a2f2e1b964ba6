"""What the serving engine says about its start-up: `StartupStatus`, its stages, and their words.

Owns the stages a start goes through (STARTING -> BUILDING -> TUNING or
UPDATING -> READY, or FAILED), the status a page and `GET /ready` read, and
every sentence about them a person sees: the status's own message when
nothing runs (`serving_status`), the stage's title above it
(`STAGE_TITLES`), what a question asked too early is told (`waiting_note`),
and the note under an answer given while something better is prepared
(`improving_note`). qa/serving/startup.py makes the statuses while it builds;
qa/serving/render.py turns them into HTML.

No imports beyond the standard library: the page's process reads these
before (and without) loading the engine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Stages, in the order a fresh start goes through them.
STARTING = "starting"  # the engine's process is loading (qa/serving/service.py)
BUILDING = "building"  # no index yet: the first one is being built; questions wait for it
TUNING = "tuning"  # answering with the model as it ships; the tuned one is being prepared
UPDATING = "updating"  # answering from the live index; a rebuild runs in the background
READY = "ready"  # answering with the final model; nothing runs
FAILED = "failed"  # the engine cannot answer (the message says why)
STAGES = (STARTING, BUILDING, TUNING, UPDATING, READY, FAILED)
ANSWERING = (TUNING, UPDATING, READY)  # the stages in which questions get answers


@dataclass(frozen=True)
class StartupStatus:
    """Where the engine is in its start-up: what a page shows while it waits, and after."""

    stage: str  # one of STAGES
    model: str | None  # which model answers now: "tuned", "base" (as it ships), None (nothing answers yet)
    fraction: float | None = None  # of the background work done, 0..1; None when nothing runs or not known
    seconds_left: float | None = None  # estimate of the background work left; None when not known
    message: str = ""  # one sentence for a person
    error: str | None = None  # why a background build failed, if one did

    @property
    def ready(self) -> bool:
        return self.stage == READY

    @property
    def answering(self) -> bool:
        """Questions get answers now (maybe from the model as it ships, while the tuned one is prepared)."""
        return self.stage in ANSWERING

    def to_dict(self) -> dict:
        return asdict(self)

    def readiness(self) -> dict:
        """What the readiness endpoint says (GET /ready): "ready" means questions are answered now; "stage"
        says whether anything is still being prepared ("tuning", "updating") or nothing is ("ready");
        "progress" is the fraction of that work done (null when not known)."""
        return {"ready": self.answering, "stage": self.stage, "model": self.model, "progress": self.fraction,
                "seconds_left": self.seconds_left, "message": self.message, "error": self.error}


def model_of(manifest: dict) -> str:
    return "tuned" if (manifest.get("model") or {}).get("tuned") else "base"


def serving_status(manifest: dict, error: str | None = None) -> StartupStatus:
    """Nothing runs: answering with the live generation's model."""
    model = model_of(manifest)
    message = ("Answering with the model tuned on the example questions." if model == "tuned"
               else "Answering with the model as it ships.")
    if (manifest.get("questions") or {}).get("left_out"):
        message += " The example questions are not used yet."
    failure = ((manifest.get("model") or {}).get("encoder") or {}).get("export_failure")
    if failure:
        message += (f" Its ONNX export failed ({failure}), so questions go through torch, which is slower: "
                    "install every package of requirements.txt and build again.")
    if error:
        message += f" The background build failed: {error}"
    return StartupStatus(READY, model, message=message, error=error)


def waiting_note(status: StartupStatus) -> str:
    """What a question asked before anything answers is told, beside the status."""
    if status.stage == FAILED:
        return "Questions cannot be answered until this is fixed."
    return "Your question will be answered here as soon as the index is ready."


def improving_note(status: StartupStatus) -> str | None:
    """What goes under an answer given while something better is being prepared; None when nothing is."""
    about = f" (about {status.seconds_left:.0f} s left)" if status.seconds_left else ""
    if status.stage == TUNING:
        return (f"Answers will improve shortly: this one comes from the model as it ships, without the example "
                f"questions, while the model tuned on them is being prepared{about}.")
    if status.stage == UPDATING:
        return f"The articles changed and the index is being rebuilt{about}: answers will include them shortly."
    return None


# The stage in a few words, above the status's sentence.
STAGE_TITLES = {STARTING: "Starting up", BUILDING: "Building the index", TUNING: "Preparing a better model",
                UPDATING: "Updating the index", READY: "Ready", FAILED: "Not ready"}


def unavailable(error: Exception) -> StartupStatus:
    """The status when the engine cannot say its own (it stopped, or the request failed)."""
    return StartupStatus(FAILED, None, message=f"The engine's state is unavailable: {error}", error=str(error))


__all__ = ["StartupStatus", "STAGES", "ANSWERING", "STAGE_TITLES", "STARTING", "BUILDING", "TUNING", "UPDATING",
           "READY", "FAILED", "model_of", "serving_status", "waiting_note", "improving_note", "unavailable"]
