"""A deterministic stand-in for the embedding model, for tests where meaning does not matter.

Storage, caching, atomic generations and damaged files behave the same whatever
the vectors mean, so their tests use this instead of loading the real model
(simonw/llm's EmbedDemo does the same). Tests of answers and refusal use the
real model: there the meaning is the point.

Each text becomes a hashed bag of its words: the same text always gives the
same unit vector, texts sharing words are closer than texts that do not, and
nothing is downloaded or loaded.
"""

from __future__ import annotations

import hashlib
import re
from typing import Callable, Sequence

import numpy as np

from qa.models.embedding import TextEmbedder
from qa.settings import Settings

WORD = re.compile(r"[a-z0-9]+")


class FakeEmbedder(TextEmbedder):
    """qa.models.embedding's TextEmbedder, as the real Embedder is: tests/test_embedding_contract.py holds both to it."""

    def __init__(self, name: str = Settings().model, dimension: int = 384) -> None:
        self.name = name  # the configured model's name, so its index loads under the same settings
        self.dimension = dimension
        self.batch_size = 32
        self.threads = 1
        self.texts_encoded = 0  # as the real one counts, for the cache tests
        self.loaded = True
        self.backend = "fake"
        self.export = None  # no ONNX export: the fixture in conftest.py skips the build's export

    def encode(self, texts: Sequence[str], progress: bool = False,
               on_batch: Callable[[int], None] | None = None, tokens: list | None = None) -> np.ndarray:
        self.texts_encoded += len(texts)
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        for row, text in enumerate(texts):
            for word in WORD.findall(text.lower()) or ["<empty>"]:
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                slot = int.from_bytes(digest[:4], "little") % self.dimension
                vectors[row, slot] += 1.0 if digest[4] & 1 else -1.0
            norm = np.linalg.norm(vectors[row])
            vectors[row] = vectors[row] / norm if norm else 0.0
            if not norm:
                vectors[row, 0] = 1.0
        if on_batch is not None and len(texts):
            on_batch(len(texts))
        return vectors

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return [len(text) for text in texts]  # characters: no tokenizer, as the real one on sentence-transformers

    def unload(self) -> None:
        pass
