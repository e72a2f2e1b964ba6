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
