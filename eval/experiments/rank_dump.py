"""Dump what ranking reads, per question, from the suite's built indexes, for offline fusion experiments.

Not part of the product. For each group ("webdev/fresh", "squad/grown", "product/dev", and "<corpus>/grown:<set>"
for a product set asked on a grown index), every question's searched vector, its BM25 over every passage, the
candidate passages the four retrievers propose, which passages are relevant, and the engine's own ranking; for
each index once, the arrays fusion reads (passage and answer vectors, the question bank's links, each passage's
article and section). Written as one pickle per index (`--out` folder); eval/experiments/rank_replay.py scores
fusion variants on them in seconds.

    python eval/experiments/rank_dump.py --work /tmp/suite --out /tmp/rank_dump
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

from qa.answering.search import (dense_candidates, example_candidates, example_scores_by_chunk,
                                 example_similarities, lexical_candidates, lexical_scores, search,
                                 sentence_candidates)
from qa.evaluation import suite
from qa.evaluation.evaluate import PRODUCT_SETS, _relevant, load_questions
from qa.reading.text import content_terms
from qa.settings import Settings

GROUPS = ("squad/fresh", "squad/grown", "medquad/fresh", "medquad/grown", "webdev/fresh", "webdev/grown")


def dump_index(index) -> dict:
    return {"directory": str(index.directory), "chunk_vectors": np.asarray(index.chunk_vectors), "answer_vectors": np.asarray(index.answer_vectors),
            "sentence_vectors": np.asarray(index.sentence_vectors),
            "context_vectors": np.asarray(index.context_vectors),
            "chunk_sentence_ids": [list(ids) for ids in index.chunk_sentence_ids],
            "sources": [c.source for c in index.chunks], "sections": [c.section for c in index.chunks],
            "titles": [c.title for c in index.chunks], "texts": [c.text for c in index.chunks],
            "sentence_sections": [c.sentence_sections for c in index.chunks],
            "question_vectors": np.asarray(index.question_vectors),
            "question_chunk_links": index.question_chunk_links,
            "with_examples": set(index.articles_with_examples),
            "idf": dict(index.idf)}


def dump_questions(engine, questions) -> list[dict]:
    live = engine._current()
    index = live.index
    settings = engine.settings
    rows = []
    for q in questions:
        query, searched, _, _ = engine._plan(q.question, tuple(h for h in q.history if h))
        (vector,), tokens = engine._embed(live.embedder, [searched], searched)
        terms = content_terms(searched)
        bm25 = lexical_scores(index, terms)
        sims = example_similarities(index, vector)
        by_chunk = example_scores_by_chunk(index, sims)
        depth = min(settings.candidates, len(index.chunks))
        proposed = (dense_candidates(index, vector, depth), sentence_candidates(index, vector, depth),
                    lexical_candidates(bm25, depth), example_candidates(by_chunk, depth))
        hits = search(index, vector, terms, settings, sims)
        relevant = ([i for i, c in enumerate(index.chunks) if _relevant(q, c.source, c.text)]
                    if q.answerable else [])
        rows.append({"id": q.id, "question": q.question, "searched": searched, "answerable": q.answerable,
                     "source": q.source, "vector": np.asarray(vector), "terms": terms, "bm25": bm25,
                     "by_chunk": by_chunk, "proposed": [[c for c, _ in r] for r in proposed],
                     "engine": [h.chunk for h in hits], "relevant": relevant,
                     "tokens": None if tokens is None else (np.asarray(tokens.vectors), tuple(tokens.words))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--groups", default=",".join(GROUPS))
    parser.add_argument("--product", default="product,squad,medquad,webdev",
                        help="indexes the six product sets are asked on (product: the seed corpus; else grown)")
    args = parser.parse_args()
    settings = Settings.from_env()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work)
    corpora = {}
    plan: dict[tuple[str, str], list[tuple[str, list]]] = {}
    for group in filter(None, args.groups.split(",")):
        name, setup = group.split("/")
        corpora.setdefault(name, None)
        plan.setdefault((name, setup), []).append((group, None))
    for name in filter(None, args.product.split(",")):
        setup = "product" if name == "product" else "grown"
        for set_name in PRODUCT_SETS:
            plan.setdefault((name, setup), []).append((f"{name}/{setup}:{set_name}", set_name))
    for (name, setup), groups in plan.items():
        if name == "product":
            engine = suite.open_suite_setup(None, "product", settings, work, say=lambda _: None)
            corpus = None
        else:
            corpus = corpora.get(name) or suite.load_corpora([name])[0]
            corpora[name] = corpus
            engine = suite.open_suite_setup(corpus, setup, settings, work, say=print)
        data = {"index": dump_index(engine.index), "groups": {}}
        for group, set_name in groups:
            questions = list(corpus.questions) if set_name is None else load_questions(PRODUCT_SETS[set_name])
            engine.forget()
            data["groups"][group] = dump_questions(engine, questions)
            print(group, len(questions), flush=True)
        with open(out / f"{name}_{setup}.pkl", "wb") as f:
            pickle.dump(data, f)


if __name__ == "__main__":
    main()
