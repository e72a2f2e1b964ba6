"""Fine-tuning the model on the question bank at build time: trained once per bank, reproducible, used for
every text of the index and every question, swapped with the index, rebuilt when it is gone.

A tiny corpus and bank (6 pairs, Settings.tune_min_pairs lowered to 2) so each training takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.indexing import index as index_store, question_model
from qa.indexing.build import build as build_index
from qa.models import tuning
from qa.models.embedding import resolve_model
from qa.models.plain_model import plain_layout
from qa.serving.engine import Engine
from qa.errors import IndexCorruptError
from qa.settings import Settings

from conftest import write_corpus, write_tiny_corpus

# (question, answer sentence of the tiny corpus in tests/conftest.py, its article)
PAIRS = [
    ("what undoes an overdose of painkillers", "Naloxone reverses opioid overdose within minutes.", "alpha.txt"),
    ("where does the overdose antidote attach", "It binds to opioid receptors in the brain.", "alpha.txt"),
    ("what kind of drug is special k", "Ketamine is a dissociative anesthetic.", "beta.txt"),
    ("what do hospitals give it for", "Doctors use it in surgery and for severe depression.", "beta.txt"),
    ("how does coming off heroin feel", "Opioid withdrawal causes sweating, nausea and muscle aches.", "gamma.md"),
    ("which meds take the edge off dope sickness", "Methadone and buprenorphine reduce cravings during withdrawal.",
     "gamma.md"),
]


def write_bank(corpus: Path, pairs) -> None:
    write_corpus(corpus, {}, bank={"tiny.jsonl": [{"question": q, "source": source, "answer": a}
                                                   for q, a, source in pairs]})


@pytest.fixture
def settings(tmp_path) -> Settings:
    corpus = write_tiny_corpus(tmp_path / "corpus")
    write_bank(corpus, PAIRS)
    # Two epochs of one batch: enough to move the model measurably, a few seconds on 2 cores.
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", tune_min_pairs=2, tune_epochs=2)


def mean_pair_cosine(vectors_of, pairs) -> float:
    questions = vectors_of([q for q, _, _ in pairs])
    answers = vectors_of([a for _, a, _ in pairs])
    return float(np.mean(np.einsum("ij,ij->i", questions, answers)))


def test_the_build_fine_tunes_on_the_bank_and_the_engine_asks_with_that_model(settings, embedder):
    before = embedder.texts_encoded
    report = build_index(settings, embedder)
    assert report.tuned_key and report.tune_seconds > 0
    assert embedder.texts_encoded == before, "every text is embedded with the tuned model, none with the base one"
    manifest = index_store.load(settings).manifest
    assert manifest["model"]["name"] == settings.model
    assert manifest["model"]["tuned"] == {"key": report.tuned_key, "pairs": len(PAIRS), "epochs": 2}

    engine = Engine.open(settings, build="never", embedder=embedder)
    tuned_dir = tuning.model_dir(settings, report.tuned_key)
    assert engine.embedder.name == str(tuned_dir) and engine.base_embedder is embedder
    # The index's vectors are the tuned model's, and not the base model's.
    questions = engine.index.questions
    assert np.allclose(engine.index.question_vectors, engine.embedder.encode(questions), atol=1e-5)
    assert not np.allclose(engine.index.question_vectors, embedder.encode(questions), atol=1e-3)
    # What the training is for: each example question moved towards its answer.
    assert mean_pair_cosine(engine.embedder.encode, PAIRS) > mean_pair_cosine(embedder.encode, PAIRS) + 0.005
    assert engine.ask("what undoes an overdose of painkillers").answer == PAIRS[0][1]


@pytest.mark.slow  # trains the real model twice
def test_training_is_reproducible(tmp_path):
    pairs = [(q, a) for q, a, _ in PAIRS]
    digests = []
    for run in ("one", "two"):
        tuning.fine_tune(resolve_model(Settings().model), pairs, 1, 2, tmp_path / run)
        digests.append(hashlib.sha256((tmp_path / run / "model.safetensors").read_bytes()).hexdigest())
    assert digests[0] == digests[1], "the refusal weights fitted to the tuned model would not hold"


@pytest.mark.slow  # trains the real model twice
def test_training_with_transformers_alone_gives_sentence_transformers_weights(tmp_path, monkeypatch):
    """The packaged model trains without importing sentence-transformers, with activation checkpointing
    (a fraction of the memory): the weights are those sentence-transformers' own model trains, bit for
    bit, so the tuned model's key, the refusal weights and every answer stay as they were."""
    pairs = [(q, a) for q, a, _ in PAIRS]
    location = resolve_model(Settings().model)
    trained = []

    def remember(location):
        model = trainable(location)
        trained.append(type(model).__name__)
        return model

    trainable = tuning._trainable
    monkeypatch.setattr(tuning, "_trainable", remember)
    tuning.fine_tune(location, pairs, 2, 2, tmp_path / "lean")
    trainable = tuning._SentenceTransformersModel
    tuning.fine_tune(location, pairs, 2, 2, tmp_path / "sentence-transformers")
    assert trained == ["PlainModel", "_SentenceTransformersModel"]
    digests = [hashlib.sha256((tmp_path / run / "model.safetensors").read_bytes()).hexdigest()
               for run in ("lean", "sentence-transformers")]
    assert digests[0] == digests[1]
    # The lean copy is a sentence-transformers folder of the same layout as the model it came from.
    assert plain_layout(tmp_path / "lean") == plain_layout(Path(location))
    assert (tmp_path / "lean" / "1_Pooling" / "config.json").is_file()


def test_only_a_bank_change_trains_again_and_unused_models_are_pruned(settings, embedder):
    first = build_index(settings, embedder)
    engine = Engine.open(settings, build="never", embedder=embedder)

    # An article change: same bank, same model, only the changed article's texts embedded.
    gamma = settings.corpus_dir / "gamma.md"
    gamma.write_text(gamma.read_text(encoding="utf-8") + "\nWithdrawal can last a week.\n", encoding="utf-8")
    article_change = build_index(settings, embedder)
    assert (article_change.tuned_key, article_change.tune_seconds) == (first.tuned_key, 0.0)
    assert 0 < article_change.embedded < first.embedded / 2

    # A bank change: another model, trained once; every text embedded with it.
    write_bank(settings.corpus_dir, PAIRS[:-1])
    assert index_store.stale_reason(index_store.load(settings).manifest, settings).startswith("corpus changed")
    bank_change = build_index(settings, embedder)
    assert bank_change.tuned_key != first.tuned_key and bank_change.tune_seconds > 0
    assert bank_change.reused == 0
    # The running engine swaps model and index together on its next question.
    assert engine.ask("what kind of drug is special k").answer == PAIRS[2][1]
    assert engine.embedder.name == str(tuning.model_dir(settings, bank_change.tuned_key))

    # The first model serves the generation kept before the live one; one build later nothing uses it.
    assert tuning.is_trained(settings, first.tuned_key)
    beta = settings.corpus_dir / "beta.txt"
    beta.write_text(beta.read_text(encoding="utf-8") + "\nKetamine acts on NMDA receptors.\n", encoding="utf-8")
    build_index(settings, embedder)
    assert not tuning.model_dir(settings, first.tuned_key).exists()
    assert tuning.is_trained(settings, bank_change.tuned_key)


def test_a_lost_tuned_model_is_named_and_rebuilt(settings, embedder):
    report = build_index(settings, embedder)
    shutil.rmtree(tuning.model_dir(settings, report.tuned_key))
    with pytest.raises(IndexCorruptError, match="fine-tuned model.*python -m qa build"):
        question_model.load(settings)  # what everything that answers loads (the folder itself is whole)
    messages = []
    engine = Engine.open(settings, build="stale", embedder=embedder, say=messages.append)
    assert any("cannot be used" in m for m in messages)
    assert tuning.is_trained(settings, report.tuned_key), "trained again, to the same key"
    assert engine.ask("what kind of drug is special k").answer == PAIRS[2][1]


def test_tuning_off_or_too_few_examples_keeps_the_model_as_it_is(settings, embedder):
    for untuned in (settings.replace(tune_epochs=0), settings.replace(tune_min_pairs=len(PAIRS) + 1)):
        report = build_index(untuned, embedder)
        assert report.tuned_key is None
        assert index_store.load(untuned).manifest["model"]["tuned"] is None
        assert Engine.open(untuned, build="never", embedder=embedder).embedder is embedder
    # An index built one way is out of date for the other.
    manifest = index_store.load(settings).manifest
    assert index_store.stale_reason(manifest, settings.replace(tune_epochs=1)) == "the fine-tuning settings changed"


def test_an_error_in_the_process_that_prepares_the_model_reaches_the_build_as_it_was(tmp_path):
    """The tuned model is trained in a child process (qa/models/preparation.py): its qa error comes back with
    its class and message, and nothing is left running."""
    import multiprocessing

    from qa.errors import ModelError
    from qa.models import preparation

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    settings = Settings(index_dir=tmp_path / "index", tuned_dir=blocker / "models", tune_min_pairs=2)
    plan = tuning.TuningPlan("somekey", tuple((q, a) for q, a, _ in PAIRS), 1)
    with pytest.raises(ModelError, match="cannot write the fine-tuned model in .*a-file"):
        preparation.tuned_model(settings, plan, say=lambda message: None, step=lambda stage, done, total: None)
    assert not multiprocessing.active_children()


def bank_entries(pairs):
    from qa.models.question_bank import BankQuestion
    return [BankQuestion(q, source, a) for q, a, source in pairs]


def fake_tuned_model(settings: Settings, plan: tuning.TuningPlan) -> None:
    """A tuned model's folder as ensure_trained leaves it, without the training (for planning only)."""
    folder = tuning.model_dir(settings, plan.key)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"")
    (folder / tuning.RECORD_FILE).write_text(json.dumps({
        "format": tuning.RECORD_FORMAT, "pairs": plan.pairs, "numbers": plan.numbers, "parent": plan.parent,
        "from_scratch_pairs": plan.from_scratch_pairs}), encoding="utf-8")


def test_a_bank_that_only_grew_a_little_continues_the_live_model_anything_else_trains_in_full(tmp_path):
    settings = Settings(index_dir=tmp_path / "index", tune_min_pairs=2, tune_continue_share=0.3)
    first = tuning.plan(settings, bank_entries(PAIRS[:5]))
    assert first.parent is None and first.from_scratch_pairs == 5
    fake_tuned_model(settings, first)

    grown = tuning.plan(settings, bank_entries(PAIRS), live_key=first.key)
    assert (grown.parent, grown.added, grown.from_scratch_pairs) == (first.key, ((PAIRS[5][0], PAIRS[5][1]),), 5)
    assert grown.key != tuning.plan(settings, bank_entries(PAIRS)).key, "not the full training's model"
    assert grown.key == tuning.plan(settings, bank_entries(PAIRS), live_key=first.key).key, "the same each time"
    # Unchanged: the live model itself.
    assert tuning.plan(settings, bank_entries(PAIRS[:5]), live_key=first.key).key == first.key
    fake_tuned_model(settings, grown)
    assert tuning.plan(settings, bank_entries(PAIRS), live_key=grown.key).key == grown.key

    # Trained in full: a pair removed or changed; growth past the share since the last full training, counted
    # across continuations; other training numbers; continuing turned off; a live model without its record.
    full = tuning.plan(settings, bank_entries(PAIRS))
    more = PAIRS + [("is special k a horse tranquilliser", PAIRS[2][1], "beta.txt")]
    changed = [(q, a + " ", s) if i == 0 else (q, a, s) for i, (q, a, s) in enumerate(PAIRS)]
    for live, pairs, numbers in [(first.key, PAIRS[1:], settings), (first.key, changed, settings),
                                 (grown.key, more, settings), (first.key, PAIRS, settings.replace(tune_seed=1)),
                                 (first.key, PAIRS, settings.replace(tune_continue_share=0.0)),
                                 ("no-such-model", PAIRS, settings)]:
        plan = tuning.plan(numbers, bank_entries(pairs), live_key=live)
        assert plan.parent is None and plan.key == tuning.plan(numbers, bank_entries(pairs)).key
    assert tuning.plan(settings.replace(tune_continue_share=0.5), bank_entries(more), live_key=grown.key).parent \
        == grown.key
    (tuning.model_dir(settings, first.key) / tuning.RECORD_FILE).unlink()
    assert tuning.plan(settings, bank_entries(PAIRS), live_key=first.key).key == full.key


def test_continued_batches_hold_each_new_pair_once_beside_earlier_ones_with_no_answer_twice():
    import random

    earlier = [(f"question {i}", f"answer {i % 40}") for i in range(100)]
    added = [(f"new question {i}", f"answer {i % 3}") for i in range(20)] + [("another", "answer 99")]
    batches = tuning.continued_batches(added, earlier, random.Random(0), 32)
    assert sorted(p for batch in batches for p in batch if p in added) == sorted(added)
    for batch in batches:
        new = [p for p in batch if p in added]
        assert 1 <= len(new) <= 16 and len(batch) == 32
        assert len({a for _, a in batch}) == len(batch)
    fills = [frozenset(p for p in batch if p not in added) for batch in batches]
    assert len(set(fills)) == len(fills), "each batch is filled from another stretch of the earlier pairs"
    assert batches == tuning.continued_batches(added, earlier, random.Random(0), 32)
    assert len(tuning.continued_batches(added[:1], earlier, random.Random(0), 32)) == 1  # one promote: one step


@pytest.mark.slow  # trains the real model twice (a few seconds each)
def test_a_promote_continues_the_live_model_and_the_engine_uses_it(settings, embedder):
    settings = settings.replace(tune_continue_share=0.5)
    write_bank(settings.corpus_dir, PAIRS[:5])
    first = build_index(settings, embedder)
    write_bank(settings.corpus_dir, PAIRS)  # as `qa feedback promote` adds a line
    promoted = build_index(settings, embedder)
    assert promoted.tune_seconds > 0 and promoted.reused == 0
    folder = tuning.model_dir(settings, promoted.tuned_key)
    record = json.loads((folder / tuning.RECORD_FILE).read_text(encoding="utf-8"))
    assert (record["parent"], record["from_scratch_pairs"], len(record["pairs"])) == (first.tuned_key, 5, 6)
    parent = tuning.model_dir(settings, first.tuned_key) / "model.safetensors"
    assert (folder / "model.safetensors").read_bytes() != parent.read_bytes()
    engine = Engine.open(settings, build="never", embedder=embedder)
    assert engine.embedder.name == str(folder)
    assert engine.ask(PAIRS[5][0]).answer == PAIRS[5][1]
    again = build_index(settings, embedder)
    assert (again.tuned_key, again.tune_seconds, again.embedded) == (promoted.tuned_key, 0.0, 0)
