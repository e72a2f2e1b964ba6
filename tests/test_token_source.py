"""Where a typed question's token vectors are read from (qa.serving.engine.token_source): the forward pass of
the text searched for it when that text holds its words, keeping only its words' rows."""

from __future__ import annotations

import numpy as np
import pytest

from qa.models.onnx_model import TokenVectors
from qa.serving.engine import token_source, typed_spans


def spanned(text: str, spans) -> str:
    return "".join(text[a:b] for a, b in spans)


def test_the_typed_words_are_found_around_synonyms_a_topic_and_an_emergency_subject():
    cases = [("will narcan help", "will narcan (naloxone) help"),
             ("why not?", "does naloxone reverse ketamine why not?"),
             ("what is a k-hole", "what is a k-hole (dissociation, near-death experience)"),
             ("is it an overdose", "is it an overdose (overdose emergency: give naloxone (Narcan), CPR)"),
             ("and narcan?", "is ketamine safe and narcan (naloxone)?")]
    for typed, searched in cases:
        spans = typed_spans(typed, searched)
        assert spans is not None and spanned(searched, spans) == typed, (typed, searched)
    assert typed_spans("will narcan help", "will narcan (naloxone) help") == ((0, 11), (22, 27))
    assert typed_spans("a (b) c", "a (b) c") == ((0, 7),)  # the typed text's own brackets are its words


def test_a_text_that_does_not_hold_the_typed_words_is_no_source():
    assert typed_spans("how fast does it work", "how quickly (rapid) does it work") is None
    assert typed_spans("is it safe", "is it safe for kids") is None  # words after it that are not " (...)"
    assert typed_spans("safe", "is it safe (x) now") is None
    assert token_source("how fast", ["how quickly (rapid)"]) == ("how fast", None)  # a pass of its own


def test_the_typed_text_itself_comes_first_then_the_shortest_text_holding_it():
    assert token_source("why not?", ["does naloxone work why not?", "why not?"]) == ("why not?", None)
    source, spans = token_source("and narcan?", ["is ketamine safe and narcan (naloxone)?", "and narcan (naloxone)?"])
    assert source == "and narcan (naloxone)?" and spanned(source, spans) == "and narcan?"


def test_token_vectors_within_spans_keep_the_rows_that_start_inside():
    rows = np.eye(4, dtype=np.float32)
    tokens = TokenVectors(rows, ("will", "narcan", "naloxone", "help"), (0, 5, 13, 23))
    kept = tokens.within(((0, 11), (22, 27)))
    assert kept.words == ("will", "narcan", "help") and kept.starts == (0, 5, 23)
    assert np.array_equal(kept.vectors, rows[[0, 1, 3]])
    assert tokens.within(()).vectors.shape == (0, 4)


@pytest.mark.slow
def test_a_question_with_synonyms_is_embedded_in_one_forward_pass(engine, monkeypatch):
    from qa.models.onnx_model import OnnxModel

    assert engine.embedder.backend == "onnx" and engine.index.tokens is not None
    question = "will narcan help someone on special k"
    assert engine.synonyms.expand(question)[0] != question
    engine.forget()
    passes: list[int] = []
    forward = OnnxModel._forward

    def counted(self, shown, encodings, wanted):
        passes.append(len(shown))
        return forward(self, shown, encodings, wanted)

    monkeypatch.setattr(OnnxModel, "_forward", counted)
    result = engine.ask(question)
    assert passes == [1] and result.to_dict()["question"] == question
