"""The question bank: reading and linking example questions, and what they change in search and answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from conftest import CORPUS, write_corpus
from qa.indexing import index as index_store
from qa.indexing.build import build as build_index
from qa.serving.engine import Engine
from qa.models.question_bank import BankQuestion, link, load_bank
from qa.settings import PROJECT_ROOT, Settings

ARTICLE = """Naloxone Facts

How Fast It Works

Naloxone restores breathing within minutes. The medication comes as a nasal spray or an injection.
"""
BANK_LINE = {"question": "how quick does the overdose nose spray wake someone up", "source": "naloxone.txt",
             "answer": "Naloxone restores breathing within minutes."}


def naloxone_with_bank(folder: Path, bank_lines: list) -> Settings:
    write_corpus(folder / "corpus", {"naloxone.txt": ARTICLE}, bank={"naloxone.jsonl": bank_lines})
    return Settings(corpus_dir=folder / "corpus", index_dir=folder / "index")


def test_bank_lines_are_read_and_bad_ones_named(tmp_path):
    settings = naloxone_with_bank(tmp_path, [BANK_LINE, "not json", {"question": "no answer", "source": "naloxone.txt"}])
    entries, warnings = load_bank(settings.corpus_dir)
    assert [e.question for e in entries] == [BANK_LINE["question"]]
    assert warnings == ['naloxone.jsonl:2: not a line of {"question": ..., "source": ..., "answer": ...}; skipped',
                        'naloxone.jsonl:3: not a line of {"question": ..., "source": ..., "answer": ...}; skipped']
    assert load_bank(tmp_path / "no-such-corpus") == ([], [])


def test_answers_link_to_whole_sentences_of_their_own_article():
    sentences = ["Effects: It works fast.", "It lasts about an hour in most people.", "Naloxone is safe.",
                 "Naloxone is safe."]
    sources = ["a.txt", "a.txt", "a.txt", "b.txt"]
    entries = [BankQuestion("q1", "a.txt", "naloxone is  SAFE."),  # same sentence, other spacing and case
               BankQuestion("q2", "a.txt", "• Effects: It works fast. It lasts about an hour in most people."),
               BankQuestion("q3", "a.txt", "lasts about an hour in most"),  # a fragment of one
               BankQuestion("q4", "a.txt", "Naloxone is dangerous.")]  # not in the article
    questions, answered_by, unmatched = link(entries, sentences, sources)
    assert questions == ["q1", "q2", "q3"]
    assert answered_by == [[2], [0, 1], [1]]  # never b.txt's copy of the sentence
    assert [e.question for e in unmatched] == ["q4"]


def test_an_example_question_leads_to_the_sentence_it_names(tmp_path, embedder):
    stale_line = {**BANK_LINE, "question": "old question", "answer": "Naloxone cures everything."}
    settings = naloxone_with_bank(tmp_path, [BANK_LINE, stale_line])
    report = build_index(settings, embedder)
    assert report.questions == 1
    assert report.question_warnings == ("the answer to 'old question' is not in naloxone.txt (any more); skipped",)
    engine = Engine.open(settings, build="never", embedder=embedder)
    question = "how fast does the nose spray wake a person up"
    result = engine.ask(question)
    assert result.answer == "Naloxone restores breathing within minutes."
    assert result.confidence.example > 0.8
    # Without the bank the words "nose spray" pull the answer to the other sentence.
    without = Engine(settings.replace(weight_question=0.0, example_answer_weight=0.0), embedder, engine.index)
    assert without.ask(question).answer == "The medication comes as a nasal spray or an injection."


def test_a_changed_bank_makes_the_index_stale_and_embeds_only_the_new_question(tmp_path, fake_embedder):
    embedder = fake_embedder  # counted, not understood
    settings = naloxone_with_bank(tmp_path, [BANK_LINE])
    build_index(settings, embedder)
    assert build_index(settings, embedder).embedded == 0  # nothing changed: nothing embedded
    bank = settings.corpus_dir / "questions" / "naloxone.jsonl"
    added = {**BANK_LINE, "question": "does narcan come as a shot"}
    bank.write_text(bank.read_text() + json.dumps(added) + "\n", encoding="utf-8")
    manifest = index_store.load(settings).manifest
    assert index_store.stale_reason(manifest, settings) == "corpus changed since the build (changed: questions/naloxone.jsonl)"
    report = build_index(settings, embedder)
    assert (report.questions, report.embedded) == (2, 1)
    loaded = index_store.load(settings)
    assert loaded.questions == [BANK_LINE["question"], added["question"]]
    assert loaded.question_vectors.shape == (2, embedder.dimension)


def test_every_example_question_of_the_articles_links_to_its_article():
    entries, warnings = load_bank(CORPUS)
    assert warnings == [] and len(entries) >= 300
    articles = {p.name for p in CORPUS.iterdir() if p.suffix == ".txt"}
    assert {e.source for e in entries} == articles
    assert PROJECT_ROOT / "corpus" == Settings().corpus_dir  # the product's own folder, by default


def test_a_provisional_first_build_leaves_the_example_questions_and_section_contexts_to_the_full_one(
        tmp_path, fake_embedder):
    from qa.serving.status import serving_status

    settings = naloxone_with_bank(tmp_path, [BANK_LINE])
    report = build_index(settings, fake_embedder, provisional=True)
    assert report.questions == 0 and fake_embedder.texts_encoded == report.embedded
    loaded = index_store.load(settings)
    assert loaded.questions == [] and loaded.question_vectors.shape[0] == 0
    assert loaded.manifest["questions"]["left_out"] is True and loaded.manifest["provisional"] is True
    # No sentence embedded again under its heading: its answer vector is its own vector.
    background = loaded.manifest["background"]["questions"]
    assert report.embedded == len(loaded.chunks) + len(loaded.sentences) + background
    assert np.array_equal(loaded.context_vectors, loaded.sentence_vectors)
    assert np.allclose(loaded.answer_vectors, loaded.sentence_vectors)
    assert index_store.stale_reason(loaded.manifest, settings) == \
        "it was built without the example questions, to answer sooner"
    assert "The example questions are not used yet." in serving_status(loaded.manifest).message
    # The full build that follows is not "up to date": it embeds the question and the sentences under their
    # headings (never taking the provisional sentence vectors for them), and only those.
    report = build_index(settings, fake_embedder)
    loaded = index_store.load(settings)
    assert (report.questions, report.embedded) == (1, 1 + len(loaded.sentences))
    assert loaded.questions == [BANK_LINE["question"]] and "left_out" not in loaded.manifest["questions"]
    assert loaded.manifest["provisional"] is False
    assert not np.allclose(loaded.context_vectors, loaded.sentence_vectors)
    assert index_store.stale_reason(loaded.manifest, settings) is None
    assert "not used yet" not in serving_status(loaded.manifest).message
