"""Hostile input and hostile disks: nothing escapes as a traceback, nothing built is lost."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from qa.indexing import index as index_store
from qa.indexing.build import build as build_index
from qa.answering.result import Result
from qa.errors import IndexWriteError, QuestionError
from qa.settings import Settings

from conftest import TUNED_DIR, write_tiny_corpus

MARKUP = st.sampled_from(["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "](javascript:x)",
                          "{{7*7}}", "'; DROP TABLE x; --", "\u202e", "\x00", "\ufeff", "ketamine"])


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=st.one_of(st.text(max_size=300), st.text(min_size=1900, max_size=2100),
                          st.lists(st.one_of(MARKUP, st.text(max_size=20)), max_size=8).map("".join)),
       history=st.lists(st.text(max_size=60), max_size=4))
def test_any_text_gets_a_result_or_a_clear_refusal(tiny_engine, question, history):
    engine = tiny_engine  # what any text gets does not depend on what the vectors mean
    try:
        result = engine.ask(question, history)
    except QuestionError as error:
        assert str(error) in ("Please type a question.",) or "characters long" in str(error)
        return
    assert isinstance(result, Result)
    row = result.to_dict()
    assert isinstance(row["found"], bool) and isinstance(row["answer"], str)
    if result.kind in ("small_talk", "not_english"):  # answered without a search (qa/answering/triage.py)
        assert row["passages"] == [] and not result.found
    else:
        assert len(row["passages"]) == engine.settings.top_k
    if result.found:
        assert result.answer in result.answer_source.text


@pytest.fixture
def small_disk(tmp_path):
    """A real 4 MiB filesystem (tmpfs), so 'full' and 'read-only' are the kernel's answers, not a mock.

    Room for one small index: its background vectors alone take about 1 MiB."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}); needs root")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _settings_on(disk: Path, tmp_path: Path) -> Settings:
    # The models and their ONNX exports (tens of MB) live off the small disk: it holds the index under test.
    return Settings(corpus_dir=write_tiny_corpus(tmp_path / "corpus"), index_dir=disk / "index", tuned_dir=TUNED_DIR)


def test_full_disk_keeps_the_old_index(small_disk, tmp_path, fake_embedder):
    embedder = fake_embedder
    settings = _settings_on(small_disk, tmp_path)
    first = build_index(settings, embedder)
    fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # take all the space that is left
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(fd)
    (settings.corpus_dir / "delta.txt").write_text("Delta Title\n\nA new sentence about sleep and rest.\n")
    with pytest.raises(IndexWriteError, match="previous index is unchanged"):
        build_index(settings, embedder)
    loaded = index_store.load(settings)
    assert loaded.directory == first.directory and len(loaded.chunks) == first.chunks
    assert not [p for p in settings.index_dir.iterdir() if p.name.startswith(".tmp-")]


def test_read_only_index_folder_keeps_the_old_index(small_disk, tmp_path, fake_embedder):
    embedder = fake_embedder
    settings = _settings_on(small_disk, tmp_path)
    first = build_index(settings, embedder)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    (settings.corpus_dir / "delta.txt").write_text("Delta Title\n\nA new sentence about sleep and rest.\n")
    with pytest.raises(IndexWriteError, match="Read-only file system"):
        build_index(settings, embedder)
    assert index_store.load(settings).directory == first.directory


def test_oversized_article_is_skipped_with_a_warning_and_the_rest_indexed(tiny_settings, fake_embedder):
    embedder = fake_embedder
    sentence = "Ketamine is discussed in this very long generated article. "
    (tiny_settings.corpus_dir / "huge.txt").write_text("Huge Article\n\n" + sentence * (5_000_000 // len(sentence)))
    report = build_index(tiny_settings, embedder)
    assert [(s.source, s.reason) for s in report.skipped] == [
        ("huge.txt", "5.0 MB is over the 2.0 MB limit for one article (setting max_article_bytes)")]
    assert report.files == 3 and report.chunks == 5
    # recorded, so the skipped file does not make the index look stale
    assert index_store.stale_reason(index_store.load(tiny_settings).manifest, tiny_settings) is None
