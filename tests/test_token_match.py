"""Answer choice's token match (qa/answering/token_match.py): the arithmetic on made-up vectors (fast), the
question model's token vectors through ONNX and torch, and what the real model makes of it (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from qa.answering.token_match import focus_on_asked, late_interaction, question_weights, sentence_scores, subject_of
from qa.models.embedding import Embedder
from qa.models.onnx_model import TokenVectors


def unit(*rows) -> np.ndarray:
    matrix = np.asarray(rows, dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def test_each_question_piece_counts_its_best_match_weighted_by_its_word_s_idf():
    question = TokenVectors(unit([1, 0, 0], [0, 1, 0], [0, 0, 1]), ("how", "naloxone", "lasts"))
    weights = question_weights(question, {"naloxon": 2.0, "last": 1.0}, rarest=5.0)
    assert weights.tolist() == [0.0, 2.0, 1.0]  # "how" is a stopword
    sentence = TokenVectors(unit([0, 1, 0], [0, 1, 1]), ("naloxone", "wears"))
    best = [1.0, float(np.sqrt(0.5))]  # "naloxone" matched exactly, "lasts" half-way by "wears"
    assert late_interaction(question, weights, sentence) == pytest.approx((2 * best[0] + best[1]) / 3, abs=1e-6)
    # Words the index never saw weigh as its rarest; a question of stopwords only weighs each piece 1.
    assert question_weights(question, {}, rarest=5.0).tolist() == [0.0, 5.0, 5.0]
    assert question_weights(TokenVectors(unit([1, 0, 0]), ("what",)), {}, 5.0).tolist() == [1.0]
    assert late_interaction(question, weights, TokenVectors(np.zeros((0, 3), np.float32), ())) == 0.0


def test_the_pieces_the_passage_s_subject_names_weigh_less_so_a_restated_subject_gains_little():
    # The question names the subject (piece 0) and asks something about it (piece 1).
    question = TokenVectors(unit([1, 0, 0], [0, 1, 0]), ("scanner", "outside"))
    subject = TokenVectors(unit([1, 0, 0]), ("scanner",))
    restates = TokenVectors(unit([1, 0, 0]), ("scanner",))
    answers = TokenVectors(unit([0.2, 0.5, 1]), ("surface",))
    weights = np.ones(2)
    assert late_interaction(question, weights, restates) > late_interaction(question, weights, answers)
    focused = focus_on_asked(weights, question, subject, power=2.0)
    assert focused[0] == pytest.approx(0.0) and focused[1] == pytest.approx(1.0)
    assert late_interaction(question, focused, answers) > late_interaction(question, focused, restates)
    # Power 0, or a question wholly about the subject: the weights as they were.
    assert focus_on_asked(weights, question, subject, power=0.0) is weights
    whole = TokenVectors(unit([1, 0, 0]), ("scanner",))
    assert focus_on_asked(np.ones(1), whole, subject, power=2.0).tolist() == [1.0]
    scores = sentence_scores(question, [(subject, [restates, answers])], {}, 5.0, 2.0)
    assert scores[0][1] > scores[0][0]
    assert subject_of("Naloxone", "Naloxone") == "Naloxone" and subject_of("Naloxone", "Uses") == "Naloxone. Uses"


def test_a_stand_in_model_without_token_vectors_answers_as_before(tiny_engine):
    assert tiny_engine._tokens_of(tiny_engine.embedder) is None
    assert tiny_engine.ask("what does naloxone do").passages


# Made-up passages (not from any question set): the subject, a sentence restating it, one answering the question.
CASES = [
    ("How does hydrostatic weighing work if they only put me in water?", "Body fat testing", "Hydrostatic weighing",
     "Hydrostatic weighing is an accurate way to assess your body fat.",
     "You are weighed underwater after breathing out as much air as possible, and your body density is "
     "calculated from the difference."),
    ("how long does naloxone keep working after it is given", "Naloxone", "What is naloxone?",
     "Naloxone is a medicine that rapidly reverses an opioid overdose.",
     "Its effects wear off after 30 to 90 minutes, so the person must be watched in case the overdose returns."),
    ("what should I do if someone is not breathing after taking heroin", "Heroin overdose", "Heroin overdose",
     "A heroin overdose can slow or stop a person's breathing.",
     "Call emergency services, give naloxone if you have it and start rescue breathing."),
]


def test_with_the_real_model_a_sentence_restating_the_subject_loses_most_of_its_lead(embedder):
    leads = {}
    for question, title, section, restates, answers in CASES:
        vectors = embedder.token_vectors([question, subject_of(title, section), restates, answers])
        for power in (0.0, 2.0):
            restated, answered = sentence_scores(vectors[0], [(vectors[1], vectors[2:])], {}, 5.0, power)[0]
            leads.setdefault(power, []).append(restated - answered)
        cosines = embedder.encode([restates, answers]) @ embedder.encode_one(question)
        assert cosines[0] > cosines[1]  # what the pooled cosine alone would choose: the restated subject
    assert all(focused < plain - 0.05 for plain, focused in zip(leads[0.0], leads[2.0])), leads
    assert min(leads[2.0]) < 0, leads  # and at least one answering sentence now wins outright


def test_onnx_gives_torch_s_token_vectors(engine):
    onnx = engine.embedder  # the question model of the real index: the tuned model's traced export
    assert onnx.backend == "onnx"
    texts = ["Naloxone reverses an opioid overdose within minutes.", "how long does narcan last?",
             "Ketamine's effects (dissociation, analgesia) wear off after about an hour."]
    ours = onnx.token_vectors(texts)
    theirs = Embedder(onnx.name).token_vectors(texts)
    for mine, torch_s in zip(ours, theirs):
        assert mine.words == torch_s.words and "narcan" in " ".join(ours[1].words)
        assert np.abs(mine.vectors - torch_s.vectors).max() < 1e-3
    assert "(" not in ours[2].words and "[CLS]".lower() not in ours[2].words
    settings = engine.settings
    try:
        engine.settings = settings.replace(token_match_weight=1.0)
        engine.forget()
        engine.ask("how long does naloxone last")
        assert engine._token_vectors  # answer choice asked for them, and they are kept
        engine.forget()
        engine.settings = settings.replace(token_match_weight=0.0)
        engine.ask("how long does naloxone last")
        assert not engine._token_vectors  # off: nothing read token by token
    finally:
        engine.settings = settings
        engine.forget()
