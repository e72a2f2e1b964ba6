"""Subject coverage (qa/answering/subject.py): the question's rare words that the answer's article never uses."""

import math

import numpy as np
import pytest

from qa.answering.result import STRONG
from qa.answering.subject import missing, missing_in_context, salience, salient_terms, vocabulary_ranks
from qa.evaluation import suite
from qa.models.onnx_model import TokenVectors
from qa.models.refusal import SIGNALS, LabelBars
from qa.reading.text import content_terms


def test_common_words_name_no_subject_and_rare_ones_weigh_by_their_rarity():
    ranks = vocabulary_ranks()
    assert ranks["the"] < ranks["body"] < 2000 < ranks["syndrome"]  # the vocabulary lists words most frequent first
    assert salience("body", 2000) == 0.0
    assert 0 < salience("syndrome", 2000) < salience("benzodiazepine", 2000)  # not in the vocabulary: the rarest
    assert salience("benzodiazepine", 2000) == salience("qwzxvbnm", 2000) == math.log((len(ranks) + 1) / 2000)
    terms = salient_terms("What is the antidote for a benzodiazepine overdose?", 2000)
    assert set(terms) == {"antidot", "benzodiazepin", "overdos"}  # stemmed as the index stems
    assert terms["benzodiazepin"] > 0 and "what" not in terms


def test_missing_is_the_salience_weighted_share_the_article_does_not_hold():
    terms = {"warsaw": 1.0, "breakag": 2.0, "syndrom": 1.0, "caus": 0.0}
    assert missing(terms, {"syndrom", "caus"}) == pytest.approx(0.75)
    assert missing(terms, {"warsaw", "breakag", "syndrom"}) == 0.0
    assert missing({"long": 0.0, "last": 0.0}, set()) == 0.0  # nothing salient: nothing missing


def _unit(*rows):
    rows = np.array(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_in_context_a_word_the_passages_say_otherwise_is_missing_only_as_far_as_no_piece_means_it():
    question = TokenVectors(_unit([1, 0, 0], [0, 1, 0], [0, 0, 1]), ("flu", "benzodiazepine", "the"))
    influenza = _unit([0.95, 0.05, 0])  # close to "flu", far from "benzodiazepine"
    closest = lambda: (question.vectors @ influenza.T).max(axis=1)  # noqa: E731 - each question piece's best
    gap = missing_in_context(question, 2000, frozenset(), closest)
    weights = [salience("flu", 2000), salience("benzodiazepine", 2000)]
    expected = (weights[0] * (1 - influenza[0] @ question.vectors[0]) + weights[1] * (1 - influenza[0] @ question.vectors[1])) / sum(weights)
    assert gap == pytest.approx(expected, abs=1e-5)
    held = missing_in_context(question, 2000, frozenset({"benzodiazepin"}), closest)
    assert held < gap / 3  # a word the article uses is not missing, whatever the vectors say
    assert missing_in_context(TokenVectors(np.zeros((0, 3)), ()), 2000, frozenset(), closest) == 0.0
    unread = lambda: pytest.fail("the passages' token vectors are read only when a word is not held")  # noqa: E731
    assert missing_in_context(question, 2000, frozenset({"flu", "benzodiazepin"}), unread) == 0.0


def test_a_strong_match_needs_the_article_to_name_the_question_s_subject():
    bars = LabelBars({"plain": 1.0, "examples": 1.0}, {"plain": 0.0, "examples": 0.0})
    assert bars.is_strong("plain", 2.0, 0.9) and bars.is_strong("plain", 2.0, 0.9, 0.4)  # no condition asked
    assert not bars.is_strong("plain", 2.0, 0.9, 0.4, subject_at_most=0.2)
    assert bars.is_strong("plain", 2.0, 0.9, 0.1, subject_at_most=0.2)
    at = SIGNALS.index("subject")
    rows = [{"id": str(i), "kind": "answerable", "answerable": True, "found": True, "right": right,
             "first_relevant": right, "margin": 3.0, "regime": "plain", "label": None,
             "signals": [0.0] * at + [subject]} for i, (right, subject) in enumerate([(True, 0.0)] * 9 + [(False, 0.6)])]
    assert suite.apply_labels(rows, bars)["strong match"]["precision"] == 0.9
    figures = suite.apply_labels(rows, bars, subject_at_most=0.2)
    assert figures["strong match"] == {"share": 0.9, "precision": 1.0, "count": 9}
    assert figures["partial match"]["count"] == 1


def test_with_the_real_model_another_drug_class_s_antidote_is_no_strong_match(engine):
    other = engine.ask("what is the antidote for a benzodiazepine overdose")
    assert other.confidence.subject > engine.settings.strong_match_subject  # the articles never name it
    assert other.answer_source is None or other.answer_source.match != STRONG
    named = engine.ask("does naloxone reverse ketamine")
    assert named.confidence.subject == 0.0 and named.answer_source.match == STRONG


def test_an_article_s_words_are_its_title_headings_and_text_stemmed_and_only_its_own():
    from qa.answering.subject import article_terms
    from qa.reading.chunking import Chunk

    chunks = [Chunk("a.md", "Warsaw Breakage Syndrome", "Causes", "Mutations in DDX11 cause it.", ()),
              Chunk("b.md", "Shingles", "Symptoms", "A painful rash.", ())]
    words = article_terms(chunks, "a.md")
    assert {"warsaw", "breakag", "caus", "mutat", "ddx11"} <= words and "rash" not in words
    assert article_terms(chunks, "b.md") >= {"shingl", "rash", "pain"}
    assert missing(salient_terms("What causes Warsaw breakage syndrome?", 2000), article_terms(chunks, "b.md")) > 0.9


def test_unnamed_is_a_rare_name_the_article_lacks_not_a_lay_word_a_misspelling_or_a_variant():
    from qa.answering.subject import unnamed, variant_of

    written = frozenset("the accuracy of bioelectrical impedance scales nausea risk ketamine influenza".split())
    held = frozenset(content_terms(" ".join(written)))
    for variant in ("acuracy", "accuracies", "nauseous", "riskier", "ket"):  # one letter off, another ending, short form
        assert variant_of(variant, written), variant
    for name in ("porphyria", "salivary", "vohwinkel", "flu"):  # a rare name, and a synonym no letters give away
        assert not variant_of(name, written), name
    highest = math.log((len(vocabulary_ranks()) + 1) / 2000)
    assert unnamed("What causes Acute intermittent porphyria?", held, written, 2000, 0.5) == 1.0  # not held whole
    assert unnamed("how accurate are bioelectrical impedance scales", held, written, 2000, 0.5) == 0.0
    assert unnamed("impedance scale acuracy and risk when nauseous", held, written, 2000, 0.5) == 0.0
    # a common word the article does not use ("cheap", below the salience asked for here) names nothing
    assert unnamed("a cheap scale", held, written, 2000, salience("cheap", 2000) + 0.01) == 0.0
    assert unnamed("a cheap scale", held, written, 2000, 0.5) == pytest.approx(salience("cheap", 2000) / highest)
    assert unnamed("the 3 site one", held, written, 2000, 0.5) == 0.0  # numbers name no subject here


def test_the_unnamed_gate_reads_only_where_the_answer_s_article_does_not_stand_out(engine):
    """Real articles: a question naming a disease no article holds, matched to a neighbouring article about as well
    as to the next one, carries the signal; a question on one article's subject does not."""
    off = engine.ask("what are the symptoms of porphyria").confidence
    assert off.unnamed > 0.5 and off.contrast < engine.settings.unnamed_contrast
    assert engine.ask("does naloxone reverse ketamine").confidence.unnamed == 0.0
