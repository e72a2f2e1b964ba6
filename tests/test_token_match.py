"""Answer choice's token match (qa/answering/token_match.py): the arithmetic on made-up vectors (fast), the
question model's token vectors through ONNX and torch, and what the real model makes of it (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from qa.answering.token_match import (QuestionReading, focus_on_asked, late_interaction, question_weights,
                                      restatement, restatements, sentence_scores, stored, subject_of)
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


def test_restatement_is_how_much_of_the_sentence_the_question_or_its_subject_already_says():
    question = TokenVectors(unit([1, 0, 0, 0], [0, 1, 0, 0]), ("hydrostatic", "accuracy"))
    subject = TokenVectors(unit([0, 0, 1, 0]), ("weighing",))
    # Each sentence piece counts its best cosine with any piece of the question or the subject, averaged.
    restates = TokenVectors(unit([1, 0, 0, 0], [0, 0, 1, 0]), ("hydrostatic", "weighing"))
    adds = TokenVectors(unit([0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]), ("accuracy", "error", "percent"))
    assert restatement(question, subject, restates) == pytest.approx(1.0)
    assert restatement(question, subject, adds) == pytest.approx(1 / 3)
    half = TokenVectors(unit([0, 0, 1, 1]), ("new",))
    assert restatement(question, subject, half) == pytest.approx(np.sqrt(0.5), abs=1e-6)
    # No subject: the question alone; no pieces: nothing restated.
    empty = TokenVectors(np.zeros((0, 4), np.float32), ())
    assert restatement(question, empty, restates) == pytest.approx(0.5)
    assert restatement(question, subject, empty) == 0.0
    # Several sentences of a passage at once, as stored (float16) or not: each as alone.
    several = restatements(question, subject, [restates.vectors.astype(np.float16), empty.vectors, adds.vectors])
    assert several == pytest.approx([1.0, 0.0, 1 / 3], abs=1e-3)


def test_answer_choice_lowers_a_restating_sentence_by_restatement_penalty(tiny_engine):
    """The penalty is read from the index's stored token vectors, for every candidate, before the token match
    picks the few it reads; with the weight 0 (or no token vectors) the scores are as before."""
    from types import SimpleNamespace
    from qa.answering.answer import _with_token_match
    from qa.indexing.index import TokenTable
    # As an index stores them (float16): sentence 0, sentence 1, then chunk 0's subject.
    stored_rows = np.concatenate([unit([1, 0, 0], [0, 0, 1]), unit([0, 1, 0], [0, 1, 0]), unit([0, 0, 1])])
    tokens = TokenTable(stored_rows.astype(np.float16), np.array([[0, 2], [2, 4], [4, 5]]), 2)
    hits = [SimpleNamespace(chunk=0)]
    reading = QuestionReading(TokenVectors(unit([1, 0, 0]), ("hydrostatic",)), _index(tokens, [[0, 1]]))
    competing = [(0.5, 0.5, 0, 0, "restates"), (0.5, 0.5, 0, 1, "adds")]
    settings = tiny_engine.settings.replace(token_match_weight=1.0, restatement_penalty=0.2)
    off, _ = _with_token_match(hits, competing, settings.replace(restatement_penalty=0.0), reading)
    on, matches = _with_token_match(hits, competing, settings, reading)
    assert set(matches) == {0, 1}  # each rescored candidate's token match, for the "strong match" label
    assert on[0][0] == pytest.approx(off[0][0] - 0.2 * 1.0, abs=1e-3)  # both its pieces said already
    assert on[1][0] == pytest.approx(off[1][0] - 0.2 * 0.0, abs=1e-3)  # neither
    assert [c[1:] for c in on] == [c[1:] for c in competing]  # only the score moves
    assert _with_token_match(hits, competing, settings, None) == (competing, {})


def _index(tokens, chunk_sentence_ids: list[list[int]], idf: dict | None = None):
    """What QuestionReading reads of an index: its token vectors, its chunks' sentences (all of one article,
    a.txt) and its idf."""
    from types import SimpleNamespace
    return SimpleNamespace(tokens=tokens, chunk_sentence_ids=chunk_sentence_ids, idf=idf or {}, max_idf=5.0,
                           article_chunks={"a.txt": list(range(len(chunk_sentence_ids)))})


def test_a_question_s_reading_of_a_passage_gives_what_each_sentence_read_alone_gives():
    """QuestionReading reads a passage's sentences, and an article's headings, in one product each: each
    sentence's token match and restatement, and each heading's fit, are those of late_interaction,
    focus_on_asked and restatement on that text alone."""
    from qa.indexing.index import TokenTable
    rng = np.random.default_rng(7)
    lengths = [3, 0, 5, 1, 2]  # sentences (one without pieces), then three chunks' subjects (one without)
    subjects = [2, 0, 3]
    texts = [unit(*rng.standard_normal((n, 8))) if n else np.zeros((0, 8), np.float32) for n in lengths + subjects]
    ends = np.cumsum(lengths + subjects)
    spans = np.stack([ends - np.array(lengths + subjects), ends], axis=1)
    tokens = TokenTable(np.concatenate(texts).astype(np.float16), spans, len(lengths))
    question = TokenVectors(unit(*rng.standard_normal((4, 8))), ("how", "naloxone", "lasts", "hours"))
    idf = {"naloxon": 2.0, "last": 1.0}
    reading = QuestionReading(question, _index(tokens, [[0, 1, 2, 3], [], [4]], idf))
    as_stored = [stored(tokens.sentence(i)) for i in range(len(lengths))]
    subject_stored = stored(tokens.subject(0))
    weights = question_weights(question, idf, 5.0)
    for power in (0.0, 2.0):
        focused = focus_on_asked(weights, question, subject_stored, power)
        alone = [late_interaction(question, focused, sentence) for sentence in as_stored]
        assert reading.token_matches(0, [3, 0, 1], power) == pytest.approx([alone[3], alone[0], alone[1]], abs=1e-6)
    assert reading.restatements(0, [0, 1, 2, 3]) == pytest.approx(
        [restatement(question, subject_stored, sentence) for sentence in as_stored[:4]], abs=1e-6)
    assert reading.headings("a.txt", [2, 0, 1]) == pytest.approx(
        [late_interaction(question, weights, stored(tokens.subject(chunk))) for chunk in (2, 0, 1)], abs=1e-6)
    assert reading.headings("a.txt", [1]) == [0.0]  # a subject without pieces
    every = np.concatenate([tokens.subject(0)] + [tokens.sentence(i) for i in range(4)]).astype(np.float32)
    assert reading.closest([0]) == pytest.approx((question.vectors @ every.T).max(axis=1), abs=1e-6)


def test_a_stand_in_model_without_token_vectors_answers_as_before(tiny_engine):
    assert tiny_engine._live.index.tokens is None  # its build could not store any
    assert tiny_engine.index.manifest["token_vectors"] is None
    assert not tiny_engine._reads_tokens(tiny_engine._live)
    assert tiny_engine.ask("what does naloxone do").passages
    assert not tiny_engine._token_vectors


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
        # Read the other way, the restating sentence says less that the question and its subject do not.
        assert restatement(vectors[0], vectors[1], vectors[2]) > restatement(vectors[0], vectors[1], vectors[3])
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
        before = engine.embedder.texts_encoded
        engine.ask("how long does naloxone last")
        assert engine._token_vectors  # answer choice asked for the question's, and they are kept
        assert engine.embedder.texts_encoded - before == 1  # from the pass that embedded it, nothing else
        engine.forget()
        engine.settings = settings.replace(token_match_weight=0.0)
        engine.ask("how long does naloxone last")
        assert not engine._token_vectors  # off: nothing read token by token
    finally:
        engine.settings = settings
        engine.forget()


def test_the_index_stores_the_token_vectors_live_computation_gives(engine):
    """Every sentence's and passage subject's token vectors are stored at build time (float16, from the pass
    that embedded them in padded batches); they give the token match that computing them now gives."""
    index, model = engine.index, engine.embedder
    assert index.tokens is not None and index.tokens.vectors.dtype == np.float16
    assert isinstance(index.tokens.vectors, np.memmap)  # not read into the serving process's memory
    assert index.manifest["token_vectors"]["pieces"] == len(index.tokens.vectors)
    picked = list(range(0, len(index.sentences), max(1, len(index.sentences) // 12)))[:12]
    live = model.token_vectors([index.sentences[i] for i in picked])
    for i, now in zip(picked, live):
        assert index.tokens.sentence(i).shape == now.vectors.shape
        assert np.abs(index.tokens.sentence(i).astype(np.float32) - now.vectors).max() < 5e-3
    chunk = index.chunks[3]
    subject = model.token_vectors([subject_of(chunk.title, chunk.section)])[0]
    assert np.abs(index.tokens.subject(3).astype(np.float32) - subject.vectors).max() < 5e-3
    # The question's token vectors from the pass that embeds it are those token_vectors gives.
    question = "how long does naloxone keep working"
    wanted = [True]
    vector = model.encode([question], tokens=wanted)[0]
    assert np.abs(vector - model.encode_one(question)).max() < 1e-5
    alone = model.token_vectors([question])[0]
    assert wanted[0].words == alone.words and np.abs(wanted[0].vectors - alone.vectors).max() < 1e-5
    # The token match's scores, stored against live, within float16's tolerance.
    passages_stored = [(stored(index.tokens.subject(3)), [stored(index.tokens.sentence(i)) for i in picked])]
    passages_live = [(subject, live)]
    scores_stored = sentence_scores(alone, passages_stored, index.idf, index.max_idf, 2.0)[0]
    scores_live = sentence_scores(alone, passages_live, index.idf, index.max_idf, 2.0)[0]
    assert np.allclose(scores_stored, scores_live, atol=2e-3), (scores_stored, scores_live)


def test_an_index_built_before_token_vectors_still_answers(engine, tmp_path):
    """An index whose manifest names no token vectors (built before they were stored) loads and answers,
    the token match off for it; the next build adds them."""
    import json
    import shutil
    from qa.indexing.index import TOKEN_SPANS_FILE, TOKEN_VECTORS_FILE, file_digests
    from qa.serving.engine import Engine
    folder = tmp_path / "index"
    shutil.copytree(engine.settings.index_dir, folder, symlinks=True)
    live = folder / (folder / "CURRENT").read_text().strip()
    for name in (TOKEN_VECTORS_FILE, TOKEN_SPANS_FILE):
        (live / name).unlink()
    manifest = json.loads((live / "manifest.json").read_text())
    del manifest["token_vectors"]
    manifest["files"] = {k: v for k, v in file_digests(live).items() if k != "manifest.json"}
    (live / "manifest.json").write_text(json.dumps(manifest))
    old = Engine.open(engine.settings.replace(index_dir=folder), build="never", embedder=engine.base_embedder)
    assert old.index.tokens is None and not old._reads_tokens(old._live)
    assert "token vectors" in old.stale_reason()  # the page rebuilds it in the background, answering meanwhile
    result = old.ask("does naloxone reverse a ketamine overdose")
    assert result.passages and not old._token_vectors


def test_in_an_article_without_examples_a_section_whose_heading_fits_worse_loses_to_the_best_fitting_one(tiny_engine):
    """The heading fit (answer._with_heading_fit) lowers each candidate of an article without example questions by
    heading_fit_weight x how much worse its passage's subject fits the question than its article's best-fitting
    section among the candidates; the best section keeps its score, so another article is never outscored by it.
    An article with example questions, or one section only, is left alone; weight 0 or no token vectors: as before."""
    from types import SimpleNamespace
    from qa.answering.answer import _with_heading_fit
    from qa.indexing.index import TokenTable
    from qa.reading.chunking import Chunk

    def chunk(source, section):
        return Chunk(source, source.title(), section, "text", ("sentence",))
    chunks = [chunk("shingles", "Prevention"), chunk("shingles", "Symptoms"), chunk("shingles", "Symptoms"),
              chunk("naloxone", "Uses"), chunk("naloxone", "Side effects")]
    # The question's one content piece ("prevent") against each passage's subject: Prevention fits it fully,
    # Symptoms at 0.6, and the seed-like article's two sections as far apart.
    subjects = np.concatenate([unit([1, 0]), unit([0.6, 0.8]), unit([0.6, 0.8]), unit([1, 0]), unit([0, 1])])
    tokens = TokenTable(subjects.astype(np.float16), np.array([[c, c + 1] for c in range(5)]), 0)  # as stored
    index = SimpleNamespace(tokens=tokens, idf={"prevent": 2.0}, max_idf=5.0, chunks=chunks,
                            articles_with_examples={"naloxone"},
                            article_chunks={"shingles": [0, 1, 2], "naloxone": [3, 4]})
    hits = [SimpleNamespace(chunk=c) for c in range(5)]
    reading = QuestionReading(TokenVectors(unit([1, 0]), ("prevent",)), index)
    # (score, cosine, passage position, sentence id, text): the Symptoms sentence leads by 0.3 before the heading.
    competing = [(0.6, 0.6, 0, 0, "prevention"), (0.9, 0.9, 1, 1, "symptoms"), (0.8, 0.8, 2, 2, "symptoms too"),
                 (0.5, 0.5, 3, 3, "uses"), (0.7, 0.7, 4, 4, "side effects")]
    settings = tiny_engine.settings.replace(heading_fit_weight=1.0)
    scores = [c[0] for c in _with_heading_fit(index, hits, competing, settings, reading)]
    gap = 1.0 - 0.6  # Symptoms' fit against Prevention's, as stored (float16)
    assert scores[0] == 0.6  # the best-fitting section is never raised
    assert scores[1] == pytest.approx(0.9 - gap, abs=1e-3) and scores[2] == pytest.approx(0.8 - gap, abs=1e-3)
    assert max(range(3), key=lambda i: scores[i]) == 0  # the Prevention sentence now answers
    assert scores[3:] == [0.5, 0.7]  # an article with example questions: as it was
    half = _with_heading_fit(index, hits, competing, settings.replace(heading_fit_weight=0.5), reading)
    assert half[1][0] == pytest.approx(0.9 - 0.5 * gap, abs=1e-3)
    # One section of the article among the candidates (two passages of Symptoms): nothing to choose between.
    assert _with_heading_fit(index, hits[1:3], [(0.9, 0.9, 0, 1, "a"), (0.8, 0.8, 1, 2, "b")], settings,
                             reading) == [(0.9, 0.9, 0, 1, "a"), (0.8, 0.8, 1, 2, "b")]
    assert _with_heading_fit(index, hits, competing, settings.replace(heading_fit_weight=0.0), reading) == competing
    assert _with_heading_fit(index, hits, competing, settings, None) == competing  # no token vectors
