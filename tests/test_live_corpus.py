"""The one test that reads corpus/ as it is today: every file there is read or skipped with a reason.

Every other test reads its own fixtures (tests/fixtures/seeds for the seed articles), so a
maintainer can add, change or remove articles in corpus/ and the suite stays green; this test
fails only when a file of theirs would vanish from the index without a word.
"""

from __future__ import annotations

import shutil

from qa.indexing import index as index_store
from qa.indexing.build import build as build_index
from qa.reading.corpus import corpus_files
from qa.settings import PROJECT_ROOT, Settings

LIVE_CORPUS = PROJECT_ROOT / "corpus"


def test_every_file_of_the_live_corpus_is_read_or_skipped_with_a_reason(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    shutil.copytree(LIVE_CORPUS, corpus)  # the build writes nothing there, but a copy keeps corpus/ out of reach
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", tune_epochs=0)
    report = build_index(settings, fake_embedder)
    manifest = index_store.load(settings, dimension=fake_embedder.dimension).manifest["corpus"]
    files = {path.relative_to(corpus).as_posix() for path in corpus_files(corpus)}
    assert files, "corpus/ holds no candidate file"
    indexed, skipped = set(manifest["indexed"]), manifest["skipped"]
    assert indexed | set(skipped) == files, "a file of corpus/ is neither read nor skipped"
    assert all(reason.strip() for reason in skipped.values()), "a file was skipped without a reason"
    assert report.files == len(indexed) >= 1
