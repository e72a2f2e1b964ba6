"""The engine in its own process (qa/serving/service.py), as the chat page uses it.

Real child processes running the real engine on the session's real index;
nothing is mocked. Each EngineProcess start costs a few seconds of imports,
so one module-scoped process serves most tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from qa.errors import CorpusError, QuestionError
from qa.serving.service import EngineProcess, EngineStoppedError
from qa.settings import PROJECT_ROOT, Settings

QUESTION = "does naloxone reverse ketamine"


@pytest.fixture(scope="module")
def engine_process(engine, real_settings):
    """A child engine on the index the session's in-process `engine` already built."""
    process = EngineProcess(real_settings)
    process.wait_ready(timeout=180)
    yield process
    process.close()


def _gone(pid: int, within: float) -> bool:
    """True once the process has exited (a zombie not yet reaped counts as exited)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


def test_answers_exactly_like_the_engine_in_this_process(engine_process, engine):
    here = engine.ask(QUESTION)
    there = engine_process.ask(QUESTION)
    assert there.found and there.answer == here.answer
    assert "does not reverse the effects of Ketamine" in there.answer
    assert [(p.source, p.section, p.text) for p in there.passages] == \
        [(p.source, p.section, p.text) for p in here.passages]
    assert [p.score for p in there.passages] == pytest.approx([p.score for p in here.passages])
    assert engine_process.articles() == engine.articles()
    assert engine_process.built_at() == engine.built_at()
    assert engine_process.generation() == engine.generation() == engine.current_index().directory.name


def test_follow_up_history_crosses_the_process_boundary(engine_process, engine):
    there = engine_process.ask("why not?", [QUESTION])
    assert there.query == engine.ask("why not?", [QUESTION]).query
    assert there.query.startswith(QUESTION)


def test_library_errors_arrive_as_the_same_errors(engine_process):
    with pytest.raises(QuestionError, match="Please type a question"):
        engine_process.ask("   ")
    with pytest.raises(QuestionError, match="at most 2,000 characters"):
        engine_process.ask("x" * 3000)
    assert engine_process.ask(QUESTION).found  # and the child is still serving


def test_a_killed_child_is_replaced_and_its_questions_in_flight_are_told(engine_process):
    old = engine_process.pid
    os.kill(old, signal.SIGSTOP)  # frozen: the questions asked now are surely in flight when it dies
    with ThreadPoolExecutor(max_workers=3) as pool:
        asked = [pool.submit(engine_process.ask, QUESTION) for _ in range(3)]
        time.sleep(0.5)
        os.kill(old, signal.SIGKILL)
        for future in asked:
            with pytest.raises(EngineStoppedError, match="restarted"):
                future.result(timeout=30)
    assert _gone(old, within=10)
    assert engine_process.pid != old  # started again at once, before anyone asked
    assert engine_process.ask(QUESTION).found  # waits for the new child, then answers


def test_a_failed_start_is_reported_with_the_library_error(tmp_path):
    settings = Settings(corpus_dir=tmp_path / "no-such-folder", index_dir=tmp_path / "index")
    process = EngineProcess(settings)
    try:
        with pytest.raises(CorpusError, match="no-such-folder"):
            process.wait_ready(timeout=120)
        with pytest.raises(CorpusError):  # every later question hears the same reason
            process.ask(QUESTION)
    finally:
        process.close()


def test_the_child_leaves_when_its_parent_dies(real_settings, engine, tmp_path):
    # A parent that starts an EngineProcess, prints the child's pid, then waits to be killed.
    parent_script = textwrap.dedent(f"""
        import sys, time
        from qa.serving.service import EngineProcess
        from qa.settings import Settings
        process = EngineProcess(Settings.from_env(corpus_dir={str(real_settings.corpus_dir)!r},
                                         index_dir={str(real_settings.index_dir)!r}))
        print(process.pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        parent.kill()  # SIGKILL: no clean-up code runs in the parent
        parent.wait()
        assert _gone(child, within=15), "the engine process outlived the app"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_child_whose_parent_died_before_it_started_leaves_at_once():
    # A parent killed before the child runs has already handed the child to init;
    # the child must compare with the pid it was given, not wait for init to die.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    ours, theirs = socket.socketpair()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    child = subprocess.Popen([sys.executable, "-m", "qa.serving.service", str(theirs.fileno()), str(gone.pid)],
                             pass_fds=(theirs.fileno(),), env=env)
    theirs.close()
    try:
        assert child.wait(timeout=30) == 0
    finally:
        ours.close()
        if child.poll() is None:
            child.kill()


def test_concurrent_questions_get_the_answers_they_get_alone(engine_process, engine):
    # Answered at once on the child's threads (qa/serving/service.py), then each alone: the same objects.
    keys = [((), "what are the symptoms of opioid withdrawal"), ((), "is ketamine addictive"),
            ((), "how long does narcan last"), ((QUESTION,), "why not?"), ((), "hello there"),
            ((), "what is the capital of france"), ((), "can ketamine help with depression"),
            (("what is a k-hole",), "does it last?"), ((), "how is ketamine therapy given"),
            ((), "my friend is not breathing after taking opioids"), ((), "what does naloxone do"),
            ((), "¿la ketamina es adictiva?")] * 2
    with ThreadPoolExecutor(max_workers=12) as pool:
        together = list(pool.map(lambda key: engine_process.ask(key[1], key[0]), keys))
    for (history, question), result in zip(keys, together):
        alone = engine_process.ask(question, history)
        assert result.to_dict() == alone.to_dict(), question
        here = engine.ask(question, history)  # and as the engine in this process answers it
        assert (result.kind, result.answer) == (here.kind, here.answer), question
