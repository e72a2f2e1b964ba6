"""Which model embeds an index's questions, and how it runs: decided here, once.

An index's questions must be embedded with the model its texts were embedded
with: the model fine-tuned on the question bank when its build made one
(qa/models/tuning.py; the manifest names its key), else the configured model; run
through the ONNX export the manifest names (qa/models/export.py, qa/models/onnx_model.py),
else on sentence-transformers. Owns:

- `query_model` / `query_export`: that model and that export, from a manifest;
- `load`: qa/indexing/index.py's `load` plus the check that both are on disk (a
  generation whose tuned model or export is gone is refused as damaged, with
  the command that fixes it) - what everything that answers questions loads;
- `embedder_for`: the `Embedder` for a loaded index's questions, reusing one
  already loaded when it is that model run the same way.

qa/serving/engine.py asks questions with `embedder_for`; qa/indexing/build.py records and
repairs what `query_model` names.
"""

from __future__ import annotations

from pathlib import Path

from qa.models import tuning
from qa.indexing import index as index_store
from qa.models.embedding import Embedder, Export
from qa.errors import REBUILD_HINT, IndexCorruptError, ModelError
from qa.indexing.index import Index, encoder_of, tuned_key_of
from qa.models.onnx_model import check_files
from qa.settings import Settings


def query_model(manifest: dict, settings: Settings) -> str:
    """The model that embeds questions for this index: the one its texts were embedded with."""
    key = tuned_key_of(manifest)
    return str(tuning.model_dir(settings, key)) if key else settings.model


def query_export(manifest: dict, settings: Settings) -> Export | None:
    """The ONNX export of that model which the index names; None: it runs on sentence-transformers."""
    encoder = encoder_of(manifest)
    store = tuning.exports_root(settings)  # not the exporter's store(): a cold `qa ask` never imports the exporter
    return Export(store / encoder["key"], encoder["key"]) if encoder.get("backend") == "onnx" else None


def check_on_disk(directory: Path, manifest: dict, settings: Settings, check_encoder: bool = True) -> None:
    """IndexCorruptError when the tuned model the manifest names is gone, or (`check_encoder`) its ONNX export
    is missing or not whole in size (its checksum and sample vectors are checked when it is loaded)."""
    key = tuned_key_of(manifest)
    if key and not tuning.is_trained(settings, key):
        raise IndexCorruptError(f"the index in {directory} was embedded with a fine-tuned model that is no longer "
                                f"in {tuning.model_dir(settings, key)}; rebuild it with: {REBUILD_HINT}")
    onnx = query_export(manifest, settings)
    if check_encoder and onnx is not None:
        try:
            check_files(onnx.folder, onnx.key, checksum=False)
        except ModelError as exc:
            raise IndexCorruptError(str(exc)) from exc


def load(settings: Settings, dimension: int | None = None, check_encoder: bool = True, search: bool = True) -> Index:
    """The live index (qa/indexing/index.py's `load`), refused when the models it names are not on disk.

    `check_encoder`: also require the ONNX export the manifest names; `search`: as qa/indexing/index.py's."""
    return index_store.load(settings, dimension, search,
                            models=lambda directory, manifest, checked: check_on_disk(directory, manifest, checked,
                                                                                      check_encoder))


def embedder_for(index: Index, settings: Settings, *loaded: Embedder) -> Embedder:
    """The model for this index's questions: one of `loaded` if it is that model run the same way (the same
    ONNX export, or sentence-transformers), else loaded now; checked against the index's dimension."""
    name = query_model(index.manifest, settings)
    onnx = query_export(index.manifest, settings)
    same = (lambda e: e.name == name and e.export is not None and e.export.key == onnx.key) if onnx is not None \
        else (lambda e: e.name == name and e.export is None)
    embedder = next((e for e in loaded if same(e)), None) or Embedder(name, settings.batch_size,
                                                                      settings.query_threads, export=onnx)
    index_store.check_compatible(index.manifest, settings, embedder.dimension, settings.index_dir)
    return embedder


__all__ = ["query_model", "query_export", "check_on_disk", "load", "embedder_for"]
