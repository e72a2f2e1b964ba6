"""Fusion replayed on eval/experiments/rank_dump.py's pickles: MRR over the first five, per group, in seconds.

Not part of the product; a workbench. `ranking(ix, q, params)` recomputes qa.answering.search.fuse's ranking
from the dumped features (the first line printed checks it against the engine's own, question by question),
with BM25 scored again from the passages' text when `params["bm25"]` names other k1 and b than the index's, as
a rebuild would score it. `main` sweeps BM25's k1 and b (docs/QUALITY.md, "BM25 for passages"):

    python eval/experiments/rank_dump.py --work /tmp/suite --out /tmp/rank_dump
    RANK_DUMP=/tmp/rank_dump python eval/experiments/rank_replay.py
"""

from __future__ import annotations

import os
import pickle
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from qa.answering.search import example_lifts
from qa.reading.text import content_terms

DUMP = Path(os.environ.get("RANK_DUMP", "/tmp/rank_dump"))


def load() -> dict:
    """group -> (index arrays, question rows)."""
    data = {}
    for path in sorted(DUMP.glob("*.pkl")):
        with open(path, "rb") as f:
            dumped = pickle.load(f)
        ix = dumped["index"]
        ix["n"] = len(ix["sources"])
        ids = ix["chunk_sentence_ids"]
        ix["sent_owner"] = np.concatenate([[c] * len(s) for c, s in enumerate(ids)]).astype(int)
        ix["sent_flat"] = np.concatenate([s for s in ids if s]).astype(int)
        for group, rows in dumped["groups"].items():
            data[group] = (ix, rows)
    return data


def features(ix: dict, q: dict):
    """Per passage (all of them): cosine, best sentence cosine (answer vectors), example-question cosine."""
    if "_f" not in q:
        dense = ix["chunk_vectors"] @ q["vector"]
        sims = ix["answer_vectors"][ix["sent_flat"]] @ q["vector"]
        best = np.full(ix["n"], -np.inf)
        np.maximum.at(best, ix["sent_owner"], sims)
        q["_f"] = (dense, np.where(np.isfinite(best), best, dense), q["by_chunk"])
    return q["_f"]


_models: dict = {}


def bm25_scores(ix: dict, q: dict, k1: float, b: float) -> np.ndarray:
    """BM25 (bm25s's "lucene" variant) of every passage's title, section and text, as the build indexes them."""
    key = (ix["directory"], k1, b)
    if key not in _models:
        docs = [content_terms(f"{t}\n{s}\n{x}") or ["_empty_"]
                for t, s, x in zip(ix["titles"], ix["sections"], ix["texts"])]
        n, lengths = len(docs), np.array([len(d) for d in docs], float)
        counts = [Counter(d) for d in docs]
        df = Counter(t for c in counts for t in c)
        postings = defaultdict(list)
        for i, c in enumerate(counts):
            for term, tf in c.items():
                idf = np.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                postings[term].append((i, idf * tf / (tf + k1 * (1 - b + b * lengths[i] / lengths.mean()))))
        _models[key] = {t: (np.array([i for i, _ in v]), np.array([s for _, s in v])) for t, v in postings.items()}
    scores = np.zeros(ix["n"])
    for term in q["terms"]:
        if term in _models[key]:
            rows, values = _models[key][term]
            scores[rows] += values
    return scores


def ranking(ix: dict, q: dict, params: dict) -> list[int]:
    proposed = list(q["proposed"])
    bm25 = q["bm25"]
    if "bm25" in params:
        bm25 = q.setdefault(("bm25",) + params["bm25"], bm25_scores(ix, q, *params["bm25"]))
        top = np.argsort(-bm25, kind="stable")[:30]
        proposed[2] = [int(i) for i in top if bm25[i] > 0]
    candidates = sorted({c for r in proposed for c in r})
    dense, sentence, example = features(ix, q)
    c = np.array(candidates)
    lexical = bm25[c] / (float(bm25[c].max()) or 1.0)
    lifts = np.array(example_lifts(example[c].tolist(), sentence[c].tolist(), [ix["sources"][i] for i in c],
                                   ix["with_examples"], 0.4))
    score = dense[c] + sentence[c] + 0.5 * lexical + 2.0 * lifts
    order = sorted(range(len(c)), key=lambda i: (-score[i], c[i]))
    return [int(c[i]) for i in order]


def mrr(ranked: list[int], relevant: list[int], k: int = 5) -> float:
    return next((1 / r for r, c in enumerate(ranked[:k], 1) if c in set(relevant)), 0.0)


def evaluate(data: dict, params: dict) -> dict[str, float]:
    return {group: float(np.mean([mrr(ranking(ix, q, params), q["relevant"]) for q in rows if q["answerable"]]))
            for group, (ix, rows) in data.items()}


def main() -> None:
    data = load()
    same = sum(ranking(ix, q, {})[:5] == q["engine"][:5] for ix, rows in data.values() for q in rows)
    print(f"the shipped fusion replayed: {same} of {sum(len(r) for _, r in data.values())} first fives as the engine's")
    before = evaluate(data, {})
    print("group".ljust(28) + "".join(f"{k1}/{b}".rjust(10) for k1 in (1.5,) for b in (0.75,)), end="")
    grid = [(k1, b) for k1 in (0.6, 0.75, 0.9, 1.2) for b in (0.4, 0.5, 0.6)]
    print("".join(f"{k1}/{b}".rjust(10) for k1, b in grid))
    results = [evaluate(data, {"bm25": point}) for point in grid]
    for group in before:
        print(group.ljust(28) + f"{before[group]:10.3f}" + "".join(f"{r[group] - before[group]:+10.3f}" for r in results))


if __name__ == "__main__":
    main()
