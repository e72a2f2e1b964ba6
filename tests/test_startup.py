"""The page's engine start-up (qa/serving/startup.py): first answers within seconds of an index, the rest in the background.

Real processes: the engine's own (qa/serving/service.py) and the build process it starts; a tiny corpus and bank
(tests/test_tuning.py's pairs) so the background fine-tuning takes seconds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import write_tiny_corpus
from qa.indexing.build import build as build_index
from qa.serving.service import EngineProcess
from qa.settings import Settings
from qa.serving.status import BUILDING, READY, STARTING, TUNING, UPDATING, StartupStatus
from test_tuning import PAIRS, write_bank


def build_processes(engine_pid: int) -> dict[int, bool]:
    """The engine's build processes (`python -m qa.serving.startup`) now, each with whether it has torch loaded."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == engine_pid and \
                    b"qa.serving.startup" in (stat.parent / "cmdline").read_bytes():
                found[int(stat.parent.name)] = torch_loaded(int(stat.parent.name))
        except (OSError, ValueError):
            continue  # gone meanwhile
    return found


def watch(process: EngineProcess, until, timeout: float = 240, builds: dict | None = None) -> list[StartupStatus]:
    """Statuses seen every 0.2 s until `until(status)` holds; `builds` collects `build_processes` as seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(process.status())
        if builds is not None:
            for pid, torch in build_processes(process.pid).items():
                builds[pid] = builds.get(pid, False) or torch
        if until(seen[-1]):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"status never reached the expected state: {seen[-3:]}")


def torch_loaded(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def manifest_of(settings: Settings, generation: str) -> dict:
    return json.loads((settings.index_dir / generation / "manifest.json").read_text())


@pytest.mark.slow  # real builds in child processes
def test_a_fresh_start_answers_with_the_model_as_it_ships_then_with_the_tuned_one(tmp_path):
    corpus = write_tiny_corpus(tmp_path / "corpus")
    write_bank(corpus, PAIRS)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", tuned_dir=tmp_path / "tuned",
                        tune_min_pairs=2, tune_epochs=2)
    process = EngineProcess(settings)
    try:
        assert process.status().stage in (STARTING, BUILDING)  # at once, while nothing answers yet
        builds: dict[int, bool] = {}
        before = watch(process, lambda s: s.stage != BUILDING and s.stage != STARTING, builds=builds)
        assert any(s.stage == BUILDING and s.model is None for s in before)
        first = process.ask("does naloxone reverse overdose")
        generation = process.generation()
        assert first.found and first.answer.startswith("Naloxone reverses opioid overdose")
        # The first generation was embedded with the model as it ships: nothing was fine-tuned before it.
        assert manifest_of(settings, generation)["model"]["tuned"] is None
        # ... and without the example questions, which the tuned build embeds with its own model.
        assert manifest_of(settings, generation)["questions"]["left_out"] is True
        assert not torch_loaded(process.pid), "the engine's process answers without torch"

        after = watch(process, lambda s: s.stage == READY, builds=builds)
        # One process per build, neither with torch: the export and the training ran in children of theirs,
        # and their memory left with them.
        assert len(builds) == 2 and not any(builds.values()), builds
        tuning = [s for s in after if s.stage == TUNING]
        assert all(s.model == "base" and "being prepared" in s.message and "without the example questions" in
                   s.message for s in tuning)
        assert all(s.seconds_left is not None and s.seconds_left >= 0 and 0 <= s.fraction <= 1
                   for s in tuning if s.fraction is not None)
        assert after[-1].model == "tuned" and after[-1].error is None
        # The next question is answered from the tuned generation, swapped in without a restart.
        tuned = process.ask("what undoes an overdose of painkillers")
        assert process.generation() != generation
        assert manifest_of(settings, process.generation())["model"]["tuned"] is not None
        assert manifest_of(settings, process.generation())["questions"]["linked"] == len(PAIRS)
        assert "left_out" not in manifest_of(settings, process.generation())["questions"]
        assert tuned.answer == PAIRS[0][1]
        assert not torch_loaded(process.pid)
    finally:
        process.close()


def test_an_out_of_date_index_answers_at_once_and_is_rebuilt_in_the_background(tmp_path, embedder):
    settings = Settings(corpus_dir=write_tiny_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    build_index(settings, embedder)
    (settings.corpus_dir / "delta.txt").write_text(
        "Delta Notes On Sleep\n\nSleep\n\nMelatonin helps people fall asleep after jet lag.\n", encoding="utf-8")
    process = EngineProcess(settings)
    try:
        process.wait_ready(timeout=120)
        old = process.generation()
        status = process.status()
        assert status.stage in (UPDATING, READY)  # answering from the old index while it is rebuilt
        assert process.ask("does naloxone reverse overdose").found
        watch(process, lambda s: s.stage == READY)
        answer = process.ask("what helps people fall asleep after jet lag")
        assert process.generation() != old
        assert answer.found and answer.answer_source.source == "delta.txt"
    finally:
        process.close()


def test_the_status_of_an_in_process_engine_names_its_model(tiny_engine):
    status = tiny_engine.status()  # three articles: too few example questions to tune a model on
    assert status.stage == READY and status.model == "base" and status.ready
    assert status.message == "Answering with the model as it ships."
    # The served app's, tuned: tests/test_app.py's readiness test.


def test_a_fresh_start_looks_for_the_index_by_the_pointer_file_the_index_writes(tmp_path, fake_embedder):
    """open_engine tells a fresh machine by the pointer file alone (before the engine's imports): the same
    file a build makes live, so an index that exists is never built again on that account."""
    from qa.indexing import index
    from qa.serving import startup

    assert startup.INDEX_POINTER == index.CURRENT
    corpus = write_tiny_corpus(tmp_path / "corpus")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    assert not (settings.index_dir / startup.INDEX_POINTER).exists()
    build_index(settings, fake_embedder)
    assert (settings.index_dir / startup.INDEX_POINTER).is_file()
