"""The contract every embedder keeps (qa.models.embedding.TextEmbedder): the real model and the tests' stand-in.

The fast tier runs the build, the engine and the page on tests/fakes.py's FakeEmbedder; what they rely on
is checked here for both, so the fake cannot drift from the real one unnoticed. The real model's run is in
the slow tier (it loads the model).
"""

from __future__ import annotations

import inspect

import numpy as np

from fakes import FakeEmbedder
from qa.models.embedding import Embedder, TextEmbedder

TEXTS = ["does naloxone reverse ketamine", "Naloxone reverses opioid overdose within minutes.", "", "  ",
         "what is the capital of France", "naloxone " * 300]


def check_contract(embedder) -> None:
    assert isinstance(embedder, TextEmbedder)
    for method in ("encode", "encode_one", "unload"):  # the same parameters as the real one's
        assert list(inspect.signature(getattr(type(embedder), method)).parameters) == \
            list(inspect.signature(getattr(Embedder, method)).parameters), method
    before, batches = embedder.texts_encoded, []
    vectors = embedder.encode(TEXTS, on_batch=batches.append)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), embedder.dimension)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # unit rows: dot = cosine
    assert embedder.texts_encoded - before == len(TEXTS) and sum(batches) == len(TEXTS)
    again = embedder.encode_one(TEXTS[0])  # the same text, the same vector, alone or in a batch
    np.testing.assert_allclose(again, vectors[0], atol=1e-5)
    assert embedder.encode([]).shape == (0, embedder.dimension)
    related, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[4]
    assert related > unrelated  # sharing a topic is closer than not
    assert isinstance(embedder.name, str) and isinstance(embedder.backend, str)
    embedder.unload()
    np.testing.assert_allclose(embedder.encode_one(TEXTS[0]), vectors[0], atol=1e-5)  # loaded again on use


def test_the_fake_embedder_keeps_the_contract():
    check_contract(FakeEmbedder())


def test_the_real_embedder_keeps_the_contract(embedder):
    check_contract(embedder)
