"""Retrieval question answering over a folder of health articles.

The pipeline, one module per stage, data flowing one way:

    corpus.py     raw files -> clean articles with titles and sections
    chunking.py   articles -> chunks (whole sentences, one section each)
    embedding.py  texts -> unit vectors (sentence-transformers)
    index.py      chunks + vectors -> index folder on disk (FAISS + BM25 + manifest)
    search.py     question -> ranked hits (dense + lexical + sentence, fused)
    answer.py     hits -> one quoted answer sentence, or "not found"

engine.py ties them together for callers (Engine.open / Engine.ask);
cli.py and app.py are the edges that turn errors into messages.
"""
