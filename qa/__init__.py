"""Retrieval question answering over a folder of health articles.

The pipeline, one module per stage, data flowing one way:

    corpus.py     raw files -> clean articles with titles and sections
    chunking.py   articles -> chunks (whole sentences, one section each)
    embedding.py  texts -> unit vectors (sentence-transformers)
    build.py      chunks -> vectors -> a new index generation, made live
    index.py      the index folder on disk (manifest, checksums, generations) and load()
    features.py   per-sentence features the answer stage reads (answer vectors, genericness)
    search.py     question -> ranked hits (dense + lexical + sentence, fused)
    answer.py     hits -> one quoted answer sentence, or "not found"

engine.py ties them together for callers (Engine.open / Engine.ask);
cli.py and app.py are the edges that turn errors into messages.
"""

import os as _os

# torch's OpenMP threads spin while they wait for each other; when another process holds one of the
# two cores, a spinning pair collapses (docs/BENCHMARKS.md, fine-tuning under load). Waiting
# threads that sleep keep two threads at least as fast as one. Read when torch loads its OpenMP
# library, so it is set here, before any stage imports torch; the results are the same either way.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
