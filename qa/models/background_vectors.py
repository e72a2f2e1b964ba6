"""The packaged model's vectors of the background questions, computed once and shipped in qa/fitted/.

Owns `qa/fitted/background_vectors.npy` and its record `background_vectors.json`:
the vectors the packaged all-MiniLM-L6-v2's ONNX export (qa/models/bert_graph.py's
graph, run with onnxruntime) gives for the background questions
(qa/background_questions.txt, against which refusal's statistics are taken:
qa/models/refusal.py), with the export's key (it hashes the model's files and
the export's format), the sha256 of the questions, the batch size they were
embedded with, and the sha256 of the vectors file.

Why: every build embeds the same background questions, whatever the corpus:
on a fresh machine's first build (the packaged model) about a tenth of its
embedding, in series before its first answer. A build whose model is that
export, with those questions and that batch size, reads them from here
(`shipped`); any other (a tuned copy, another model, an edited background
file, a damaged record) embeds them as before. The build embeds the
background questions in batches of their own (`embed`, qa/indexing/build.py), apart
from the corpus's texts, so their vectors depend on the model, the questions
and the batch size alone: the shipped ones are the bits that build would
compute (tests/test_refusal.py embeds them again and compares).

Written by the command that computes it (onnxruntime; no torch):

    python -m qa.models.background_vectors

Limits: computed on this machine's CPU; another CPU's kernels may give other
last digits (as they do for every vector a build embeds), far below what the
statistics can notice.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from qa.files import sha256_bytes, sha256_file
from qa.settings import PROJECT_ROOT, Settings

# Bump when how a build batches its texts changes (the vectors' last digits with it). 2: batches by token count.
FORMAT = 2
VECTORS_FILE = PROJECT_ROOT / "qa" / "fitted" / "background_vectors.npy"
RECORD_FILE = PROJECT_ROOT / "qa" / "fitted" / "background_vectors.json"


def questions_hash(questions: Sequence[str]) -> str:
    """The sha256 of the questions as a build records them (qa/indexing/build.py's background fingerprint)."""
    return sha256_bytes("\n".join(questions).encode("utf-8"))


def embed(encode: Callable[[list[str]], np.ndarray], questions: Sequence[str]) -> np.ndarray:
    """The questions' vectors as a build computes them: in one call of their own (batches of background
    questions only, sorted by length as the model does), whatever else the build embeds."""
    return np.ascontiguousarray(encode(list(questions)), dtype=np.float32)


def shipped(export_key: str, questions: Sequence[str], batch_size: int) -> np.ndarray | None:
    """The shipped vectors of `questions`, when the record is for exactly this export, these questions and this
    batch size, and the vectors file is the one it names; else None (embed them)."""
    try:
        record = json.loads(RECORD_FILE.read_text(encoding="utf-8"))
        if (not isinstance(record, dict) or record.get("format") != FORMAT or record.get("export_key") != export_key
                or record.get("questions_sha256") != questions_hash(questions)
                or record.get("batch_size") != batch_size or record.get("vectors_sha256") != sha256_file(VECTORS_FILE)):
            return None
        vectors = np.load(VECTORS_FILE, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[0] != len(questions):
        return None
    return vectors


def write(settings: Settings | None = None) -> dict:
    """Export the packaged model (in a scratch folder), embed the background questions with it, write both files."""
    from qa.models import export
    from qa.models.embedding import Embedder
    from qa.models.refusal import read_background

    settings = settings or Settings()
    questions = read_background(settings.background_file)
    with tempfile.TemporaryDirectory() as scratch:
        settings = settings.replace(tuned_dir=Path(scratch))
        embedder = Embedder(settings.model, settings.batch_size, settings.threads)
        made = export.ensure(settings, embedder, print)
        if made is None:
            raise SystemExit(f"{settings.model} could not be exported: no vectors written")
        embedder.use_export(made)
        vectors = embed(embedder.encode, questions)
    np.save(VECTORS_FILE, vectors)
    record = {"format": FORMAT, "model": settings.model, "command": "python -m qa.models.background_vectors",
              "fitted_at": dt.date.today().isoformat(),
              "fitted_on": [f"{settings.model}'s ONNX export (qa/models/bert_graph.py)",
                            Path(settings.background_file).name],
              "computed_with": {p: metadata.version(p) for p in ("onnxruntime", "tokenizers")},
              "export_key": made.key, "questions": len(questions), "questions_sha256": questions_hash(questions),
              "batch_size": settings.batch_size, "vectors_sha256": sha256_file(VECTORS_FILE)}
    RECORD_FILE.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    if list(sys.argv[1:] if argv is None else argv):
        print("usage: python -m qa.models.background_vectors  (writes qa/fitted/background_vectors.npy and .json)",
              file=sys.stderr)
        return 2
    record = write()
    print(f"wrote {VECTORS_FILE} and {RECORD_FILE.name}: {record['questions']} background questions, "
          f"export {record['export_key']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["shipped", "embed", "write", "questions_hash", "VECTORS_FILE", "RECORD_FILE"]
