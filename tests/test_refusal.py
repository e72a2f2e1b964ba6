"""Refusal: the fitted model file and its checks, the background statistics, and refusal on real articles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import CORPUS, TINY, write_corpus
from qa.serving.engine import Engine
from qa.errors import RefusalModelError
from qa.models.refusal import (FIT_COMMAND, REGIME_SIGNALS, SIGNALS, Confidence, LabelledSignals,
                        background_statistics, fit, load_model, relative_signals)
from qa.settings import DEFAULT_MODEL, Settings

NALOXONE = "naloxone-and-ketamine.txt"


def test_the_shipped_refusal_model_loads_for_the_shipped_model_and_says_what_it_was_fitted_on():
    model = load_model(Settings().refusal_model_file, DEFAULT_MODEL)
    assert set(model.regimes) == {"examples", "plain"}
    data = json.loads(Settings().refusal_model_file.read_text())
    groups = {g for entry in data["fitted_on"] for g in entry["groups"]}
    # Fitted on more than one corpus: the product's questions and the suite's (never its web check set);
    # the "examples" regime is kept from the fit on SQuAD's fit half and the dev set.
    assert {"product/dev", "plain/dev", "squad/fresh", "medquad/grown", "grown/benchmark"} <= groups
    assert not any(g.startswith("web/") for g in groups)
    assert set(data["kept_regimes"]) == {"examples"}


def test_a_refusal_model_for_another_embedding_model_is_refused_with_the_command_that_refits(tmp_path):
    with pytest.raises(RefusalModelError, match="fitted for the embedding model") as caught:
        load_model(Settings().refusal_model_file, "another/model")
    assert FIT_COMMAND in str(caught.value)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format=0), "format"),
    (lambda d: d.update(signals=["sentence", "loudness"]), "format"),
    (lambda d: d["regimes"].pop("plain"), "regimes"),
    (lambda d: d["regimes"]["plain"].pop("bar"), "cannot be read"),
])
def test_an_altered_refusal_model_file_is_refused(tmp_path, change, message):
    data = json.loads(Settings().refusal_model_file.read_text())
    change(data)
    path = tmp_path / "refusal.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RefusalModelError, match=message):
        load_model(path, DEFAULT_MODEL)
    with pytest.raises(RefusalModelError, match="no refusal model"):
        load_model(tmp_path / "missing.json", DEFAULT_MODEL)


def test_an_engine_without_its_refusal_model_names_the_fit_command(tmp_path, fake_embedder, tiny_engine):
    broken = tiny_engine.settings.replace(refusal_model_file=tmp_path / "none.json")
    with pytest.raises(RefusalModelError, match="--fit-refusal"):
        Engine(broken, fake_embedder, tiny_engine.index)


def test_background_statistics_are_per_article_and_example_ones_only_where_there_are_examples():
    rng = np.random.default_rng(0)
    background = rng.normal(size=(200, 8)).astype(np.float32)
    background /= np.linalg.norm(background, axis=1, keepdims=True)
    # Article "a" holds a sentence equal to one background question: its best match is 1 for that one only.
    sentences = np.vstack([background[0], rng.normal(size=(3, 8))]).astype(np.float32)
    sentences /= np.linalg.norm(sentences, axis=1, keepdims=True)
    owners = ["a", "a", "b", "b"]
    stats = background_statistics(background, owners, sentences, ["b"], sentences[2:3])
    assert set(stats) == {"a", "b"} and "example" in stats["b"] and "example" not in stats["a"]
    for article in "ab":
        median, spread = stats[article]["sentence"]
        best = np.max(background @ sentences[[i for i, o in enumerate(owners) if o == article]].T, axis=1)
        assert median == pytest.approx(np.median(best), abs=1e-4) and spread > 0
    confidence = Confidence("a", sentence=0.9, example=0.5, coverage=0.4, unknown=0.1, has_examples=False)
    relative = relative_signals(confidence, stats)
    median, spread = stats["a"]["sentence"]
    assert relative == pytest.approx([(0.9 - median) / spread, 0.0, 0.4, 0.1, 0.0, 0.0, 0.0])


def test_fitting_weighs_groups_alike_and_places_the_bar_for_every_large_group():
    rng = np.random.default_rng(1)
    rows = []
    for group, shift, size in (("easy", 4.0, 200), ("hard", 1.5, 40)):
        for regime in ("examples", "plain"):
            for answerable in (True, False):
                for _ in range(size // 2):
                    sentence = rng.normal(shift if answerable else 0.0, 1.0)
                    rows.append(LabelledSignals(group, regime, (sentence, 0.0, 0.5, 0.0, 0.1), answerable))
    model = fit(rows, DEFAULT_MODEL, wrongly_refused=0.1)
    for name, regime in model.regimes.items():
        assert regime.weights["sentence"] > 0
        for group in ("easy", "hard"):
            scores = [regime.score(r.signals) for r in rows if r.group == group and r.regime == name and r.answerable]
            assert np.mean(np.array(scores) < regime.bar) <= 0.1  # no group refuses more than asked
    assert "example" not in model.regimes["plain"].weights and "example" in model.regimes["examples"].weights
    with pytest.raises(ValueError, match="answerable and unanswerable"):
        fit([r for r in rows if r.answerable], DEFAULT_MODEL)


def test_articles_without_example_questions_answer_what_they_say_and_refuse_what_they_do_not(tmp_path, embedder):
    # A maintainer's new folder: no example questions, the model as it ships.
    corpus = write_corpus(tmp_path / "corpus", TINY)
    engine = Engine.open(Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), build="missing",
                         embedder=embedder)
    answered = engine.ask("what are the symptoms of opioid withdrawal")
    assert answered.found and "sweating, nausea and muscle aches" in answered.answer
    assert answered.confidence.regime == "plain" and answered.margin > 0
    for off_topic in ("who won the football world cup in 1998", "how do I bake sourdough bread"):
        refused = engine.ask(off_topic)
        assert not refused.found and refused.margin < 0


def test_example_questions_of_one_article_do_not_vouch_for_an_answer_in_another(tmp_path, embedder):
    bank = (CORPUS / "questions" / "naloxone-and-ketamine.jsonl").read_text(encoding="utf-8").splitlines()
    corpus = write_corpus(tmp_path / "corpus", {NALOXONE: (CORPUS / NALOXONE).read_text(encoding="utf-8"),
                                                "withdrawal.md": TINY["gamma.md"]},
                          bank={"naloxone-and-ketamine.jsonl": bank})
    engine = Engine.open(Settings(corpus_dir=corpus, index_dir=tmp_path / "index", tune_epochs=0),
                         build="missing", embedder=embedder)
    assert engine.index.articles_with_examples == frozenset({NALOXONE})
    elsewhere = engine.ask("what reduces cravings during opioid withdrawal")
    assert elsewhere.answer_source.source == "withdrawal.md"
    assert elsewhere.confidence.regime == "plain" and elsewhere.confidence.example == 0.0
    here = engine.ask("will narcan help someone on special k")
    assert here.answer_source.source == NALOXONE and here.confidence.regime == "examples"
    assert here.confidence.example > 0.5


def test_signals_are_the_documented_ones():
    assert SIGNALS == ("sentence", "example", "coverage", "unknown", "contrast", "subject", "unnamed")
    # "subject" is recorded for the labels and for refitting; no regime reads it (docs/QUALITY.md, "Subject coverage")
    assert all("subject" not in names for names in REGIME_SIGNALS.values())


def test_the_plain_regime_s_gate_refuses_flatly_and_costs_no_group_more_than_asked(tmp_path):
    """The gate (REGIME_GATES) is fitted so that no large group loses more than `wrongly_refused` of its answerable
    questions to it; at or above it the answer is refused with margin -inf (no "may help"), whatever the score."""
    from qa.models.refusal import REGIME_GATES, RefusalModel, fit_gate, refusal_key

    at = SIGNALS.index(REGIME_GATES["plain"])
    rng = np.random.default_rng(2)
    rows = []
    for group, size in (("one", 100), ("two", 40)):
        for regime in ("examples", "plain"):
            for answerable in (True, False):
                for _ in range(size // 2):
                    signals = [rng.normal(3.0 if answerable else 0.0, 1.0), 0.0, 0.5, 0.0, 0.1, 0.0,
                               rng.uniform(0, 0.6) if answerable else rng.uniform(0.5, 1.0)]
                    rows.append(LabelledSignals(group, regime, tuple(signals), answerable))
    gate = fit_gate([r for r in rows if r.regime == "plain"], "plain", 0.1)
    for group in ("one", "two"):
        values = np.array([r.signals[at] for r in rows if r.group == group and r.regime == "plain" and r.answerable])
        assert np.mean(values >= gate) <= 0.1
    assert 0.5 < gate < 0.6 and fit_gate(rows, "examples", 0.1) == np.inf  # the examples regime has no gate
    model = fit(rows, DEFAULT_MODEL, wrongly_refused=0.1, gate_wrongly_refused=0.1)
    plain = model.regimes["plain"]
    assert plain.gate == gate and model.regimes["examples"].gate == np.inf
    loud = [10.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    assert plain.margin(loud, "plain") > 0
    assert plain.margin(loud[:-1] + [gate], "plain") == -np.inf  # gated, however well the rest matches
    assert plain.margin(loud[:-1] + [gate], "examples") > 0  # a regime without a gate reads no gate
    # Written and read back with its gate; the label bars' key changes with it.
    model.save(tmp_path / "refusal.json")
    again = load_model(tmp_path / "refusal.json", DEFAULT_MODEL)
    assert again.regimes["plain"].gate == gate and again.regimes["examples"].gate == np.inf
    ungated = RefusalModel(DEFAULT_MODEL, {**model.regimes, "plain": type(plain)(plain.weights, plain.intercept,
                                                                                plain.bar)}, ())
    assert refusal_key(ungated) != refusal_key(model)
