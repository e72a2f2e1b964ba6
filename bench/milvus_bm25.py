"""BM25 on Milvus's full-text function against bm25s: do they rank alike, and what does each cost?

    python -m bench.milvus_bm25 [--sizes 10000] [--workdir DIR]

The decision it informs: the Milvus store keeps the lexical index as bm25s in the index folder
(qa/indexing/stores.py), rather than Milvus's BM25 function. Both score the same tokens here: each passage's
stemmed content words (qa/reading/text.py content_terms), joined by spaces into a text field whose analyzer
(the standard tokenizer) splits them back, with bm25s's k1 = 1.5 and b = 0.75. Questions: every
question of eval/sets/, searched as its content words, over the real corpus/ and synthetic corpora
of the given sizes (bench/synth.py).

Prints per corpus: passages; questions; the share whose top 10 is the same set, and whose first
passage is the same; the range of Milvus's score over bm25s's for the same passage (Milvus's BM25
distances come back negated: the sign is flipped first; a constant ratio is no difference to
fusion, which divides BM25 by the question's best); query p50/p95 of each; and the cost of what fusion needs, every
candidate's BM25 score, which bm25s gives in one call and Milvus only by a second, filtered search.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from bench import common

ROOT = Path(__file__).resolve().parent.parent

K = 10


def compare(label: str, chunks, questions, work: Path) -> list:
    import numpy as np
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    from qa.indexing.stores import LexicalStore
    from qa.reading.text import content_terms
    from qa.settings import Settings

    documents = [content_terms(c.index_text) for c in chunks]
    t = time.perf_counter()
    lexical = LexicalStore.build(documents, Settings().bm25_k1, Settings().bm25_b)  # as a build makes it
    bm25s_build = time.perf_counter() - t
    milvus = MilvusClient(str(work / f"bm25-{len(chunks)}.db"))
    schema = milvus.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=65_535, enable_analyzer=True,
                     analyzer_params={"tokenizer": "standard"})
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                 output_field_names=["sparse"]))
    index = milvus.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                    params={"bm25_k1": 1.5, "bm25_b": 0.75})
    if milvus.has_collection("bm25"):
        milvus.drop_collection("bm25")
    t = time.perf_counter()
    milvus.create_collection("bm25", schema=schema, index_params=index)
    rows = [{"id": i, "text": " ".join(terms or ["_empty_"])} for i, terms in enumerate(documents)]
    for start in range(0, len(rows), 2000):
        milvus.insert("bm25", rows[start:start + 2000])
    milvus.flush("bm25")
    milvus.load_collection("bm25")
    milvus_build = time.perf_counter() - t

    same_set = same_first = asked = 0
    ratios: list[float] = []
    times = {"bm25s": [], "milvus": [], "milvus candidates": []}
    for question in questions:
        terms = [term for term in content_terms(question) if term in lexical.vocabulary]
        if not terms:
            continue
        asked += 1
        t = time.perf_counter()
        scores = lexical.scores(terms, len(chunks))
        top = np.argsort(-scores, kind="stable")[:K]
        top = [int(i) for i in top if scores[i] > 0]
        times["bm25s"].append(time.perf_counter() - t)
        t = time.perf_counter()
        found = milvus.search("bm25", data=[" ".join(terms)], anns_field="sparse", limit=K,
                              search_params={"metric_type": "BM25"})[0]
        times["milvus"].append(time.perf_counter() - t)
        theirs = {int(h["id"]): -float(h["distance"]) for h in found}
        # What fusion needs: the BM25 of each of ~100 candidates the other retrievers proposed.
        candidates = np.random.default_rng(asked).choice(len(chunks), size=min(100, len(chunks)), replace=False)
        t = time.perf_counter()
        milvus.search("bm25", data=[" ".join(terms)], anns_field="sparse", limit=len(candidates),
                      filter=f"id in {[int(c) for c in candidates]}", search_params={"metric_type": "BM25"})
        times["milvus candidates"].append(time.perf_counter() - t)
        same_set += set(top) == set(theirs)
        same_first += bool(top) and bool(theirs) and top[0] == max(theirs, key=theirs.get)
        ratios += [s / scores[i] for i, s in theirs.items() if scores[i] > 0]
    milvus.close()
    row = [label, len(chunks), asked, same_set / max(asked, 1), same_first / max(asked, 1),
           f"{min(ratios):.4f} - {max(ratios):.4f}"]
    for name in ("bm25s", "milvus", "milvus candidates"):
        p50, p95, _, _ = common.ms_summary(times[name])
        row += [p50, p95]
    return row + [bm25s_build, milvus_build]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Milvus's BM25 function against bm25s.")
    parser.add_argument("--sizes", default="10000", help="synthetic corpus sizes in chunks, comma-separated")
    parser.add_argument("--workdir")
    args = parser.parse_args(argv)
    questions = [q.question for name in common.question_sets() for q in common.load_set(name)]
    common.print_header("milvus_bm25.py", [f"{len(questions)} questions of eval/sets/; top {K}"])
    rows = []
    with common.scratch(args.workdir) as work:
        rows.append(compare("corpus/", common.chunks_of(ROOT / "corpus"), questions, work))
        for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
            folder = work / f"synthetic-{size}"
            if not folder.exists():
                common.prepare_corpus(folder, size)
            rows.append(compare(f"synthetic {size:,}", common.chunks_of(folder), questions, work))
    common.say(common.table("Milvus BM25 function vs bm25s, same tokens", [
        "corpus", "passages", "questions", "same top-10 set", "same first", "milvus / bm25s score",
        "bm25s p50 ms", "bm25s p95 ms", "milvus p50 ms", "milvus p95 ms", "milvus 100 cand. p50 ms",
        "milvus 100 cand. p95 ms", "bm25s build s", "milvus build s"], rows, digits=3))
    common.print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
