"""Failure analysis of one suite group, question by question: where each answerable question is lost.

Not part of the product. For every answerable question of a group ("webdev/fresh" ...) of the suite's
built indexes (`--work`, as eval/experiments/suite_lab.py opens them), it prints what went wrong:

- "right", or "refused" (first passage relevant or not), or "wrong passage" (the first passage is
  not relevant) or "wrong sentence" (it is, but the answer sentence is not one of the evidence's);
- where the evidence is in the index: in no passage ("extraction"), split over passages, or in which
  section; the relevant passage's rank by each retriever alone (passage cosine, best sentence cosine,
  BM25, example questions) and by the fusion;
- the answer given and the sentence of the evidence.

    python eval/experiments/web_failures.py --work /tmp/suite --group webdev/fresh [--set name=value,...]

A summary by kind closes the output. Counts only: nothing is fitted here.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from qa.answering.search import example_scores_by_chunk, example_similarities, lexical_scores, search
from qa.evaluation.evaluate import _norm, _relevant, _right
from qa.reading.text import content_terms
from qa.settings import Settings

from suite_lab import open_groups, parse_variant


def _rank(scores: np.ndarray, relevant: list[int]) -> int | None:
    """1-based rank of the best relevant chunk in `scores` (ties broken by position), None when no chunk is."""
    if not relevant:
        return None
    order = np.argsort(-scores, kind="stable")
    where = {int(c): r for r, c in enumerate(order, 1)}
    return min(where[c] for c in relevant)


def analyse(engine, question) -> dict:
    live = engine._current()
    index = live.index
    query, searched, _, _ = engine._plan(question.question, tuple(question.history))
    (vector,), _ = engine._embed(live.embedder, [searched])
    hits = search(index, vector, content_terms(searched), engine.settings)
    result = engine.ask(question.question, list(question.history))
    relevant = [i for i, c in enumerate(index.chunks) if _relevant(question, c.source, c.text)]
    fused = next((r for r, h in enumerate(hits, 1) if h.chunk in set(relevant)), None)
    first_relevant = bool(result.passages) and _relevant(question, result.passages[0].source, result.passages[0].text)
    right = result.found and result.answer is not None and _right(question, result.answer)
    if right:
        kind = "right"
    elif not result.found:
        kind = "refused, first relevant" if first_relevant else "refused, first wrong"
    else:
        kind = "wrong sentence" if first_relevant else "wrong passage"
    in_article = " ".join(c.text for c in index.chunks if c.source == question.source)
    where = ("in a passage" if relevant else
             "split over passages" if any(_norm(e) in _norm(in_article.replace("\n", " ")) for e in question.evidence)
             else "extraction: not in the index")
    cosine = index.chunk_vectors @ vector
    sentence = np.full(len(index.chunks), -1.0)
    sims = index.answer_vectors @ vector
    for c, ids in enumerate(index.chunk_sentence_ids):
        if ids:
            sentence[c] = float(sims[ids].max())
    bm25 = lexical_scores(index, content_terms(searched))
    examples = example_scores_by_chunk(index, example_similarities(index, vector))
    gold = next((s for s in index.sentences if any(_norm(e) in _norm(s) for e in question.evidence)), None)
    top = index.chunks[hits[0].chunk] if hits else None
    return {"id": question.id, "kind": kind, "question": question.question, "where": where,
            "sections": sorted({index.chunks[c].section for c in relevant}),
            "ranks": {"fused": fused, "dense": _rank(cosine, relevant), "sentence": _rank(sentence, relevant),
                      "bm25": _rank(bm25, relevant) if bm25.max() > 0 else None,
                      "example": _rank(examples, relevant) if examples.max() > 0 else None},
            "top": f"{top.source[:14]} | {top.section}" if top else None,
            "answer": result.answer, "gold": gold, "margin": round(float(result.margin), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--group", default="webdev/fresh")
    parser.add_argument("--set", default="", help="settings changed for this run: name=value[,name=value]")
    args = parser.parse_args()
    settings = Settings.from_env().replace(**parse_variant(args.set))
    engine, questions, _ = open_groups(settings, Path(args.work), [args.group])[args.group]
    engine.settings = settings
    engine.forget()
    rows = [analyse(engine, q) for q in questions if q.answerable]
    for row in rows:
        if row["kind"] == "right":
            continue
        print(f"{row['id']} [{row['kind']}] {row['question']!r}  ({row['where']}; gold section {row['sections']})")
        print(f"    ranks {row['ranks']}  top: {row['top']}  margin {row['margin']}")
        print(f"    answer: {row['answer']!r}")
        print(f"    gold:   {row['gold']!r}")
    shown = settings.top_k
    mrr = {name: sum(1 / r["ranks"][name] for r in rows if r["ranks"][name] and r["ranks"][name] <= shown) / len(rows)
           for name in ("fused", "dense", "sentence", "bm25", "example")}
    print("MRR over the first", shown, "by each ranking alone:", {k: round(v, 3) for k, v in mrr.items()})
    print(Counter(r["kind"] for r in rows))
    print(Counter(r["where"] for r in rows))


if __name__ == "__main__":
    main()
