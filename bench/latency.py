"""Warm query latency, split by stage, against the model's own encode of the same text (the floor).

    nice -n 19 python bench/latency.py [--rounds 5] [--threads 2] [--size CHUNKS] [--limit N] [--quick]

The index is built in a temporary folder (from a copy of corpus/, or from a
synthetic corpus of --size chunks). After one warm-up pass, every question of
eval/questions.jsonl (with its history) is run `--rounds` times; in each
round and for each question, in this order:

- floor: SentenceTransformer.encode([query]) of the loaded model, alone
  (query = the text the engine embeds: the question, with a follow-up's
  topic restored; for 80 of 85 questions it is the question itself);
- end to end: Engine.ask(question, history);
- the stages, each timed alone with the library's own functions on the same
  inputs: synonyms (Synonyms.expand), encode_one, query terms
  (qa.text.content_terms), FAISS (qa.search.dense_candidates), BM25
  (qa.search.lexical_scores + lexical_candidates), sentence search
  (qa.search.sentence_candidates), fusion (qa.search.fuse on those lists:
  the three exact scores of every candidate and the sort), answer
  (qa.answer.answer).

p50/p95 pool all rounds. The ratio end-to-end p50 / floor p50 is taken from
this one run (the floor and the engine alternate question by question, so
both see the same machine load). Target: at most 1.5.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent

from bench import common  # noqa: E402

STAGES = ["synonyms", "encode (encode_one)", "query terms", "FAISS dense", "BM25 lexical", "sentence search",
          "fusion", "answer selection", "sum of stages", "end to end (Engine.ask)",
          "floor: model.encode alone"]


def measure(engine, questions, rounds: int, warmup: bool = True) -> dict[str, list[float]]:
    """Seconds per stage per question per round; see the module docstring for what each covers."""
    import numpy as np

    import qa.search as qsearch
    from qa.answer import answer, resolve_query
    from qa.engine import clean_question
    from qa.text import content_terms

    settings = engine.settings
    model = engine.embedder._model  # the loaded SentenceTransformer: the floor is its own encode
    index = engine.current_index()
    depth = min(settings.candidates, len(index.chunks))
    prepared = []
    for q in questions:
        text = clean_question(q.question, settings)
        earlier = []
        for h in list(q.history)[-settings.history_turns:]:
            try:
                earlier.append(clean_question(h, settings))
            except Exception:
                pass
        prepared.append((q, text, resolve_query(text, earlier, settings)))
    if warmup:
        for q, text, query in prepared:
            engine.ask(q.question, list(q.history))
            model.encode([query], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    samples: dict[str, list[float]] = defaultdict(list)
    clock = time.perf_counter
    for _ in range(rounds):
        for q, text, query in prepared:
            searched, expansions = engine.synonyms.expand(query)
            t = clock()
            model.encode([searched], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            samples["floor: model.encode alone"].append(clock() - t)

            t = clock()
            engine.ask(q.question, list(q.history))
            samples["end to end (Engine.ask)"].append(clock() - t)

            stage = {}
            t = clock()
            engine.synonyms.expand(query)
            stage["synonyms"] = clock() - t
            t = clock()
            vector = engine.embedder.encode_one(searched)
            stage["encode (encode_one)"] = clock() - t
            t = clock()
            terms = content_terms(searched)
            stage["query terms"] = clock() - t
            t = clock()
            dense = qsearch.dense_candidates(index, vector, depth, settings.hnsw_ef_search)
            stage["FAISS dense"] = clock() - t
            t = clock()
            bm25 = qsearch.lexical_scores(index, terms)
            lexical = qsearch.lexical_candidates(bm25, depth)
            stage["BM25 lexical"] = clock() - t
            t = clock()
            sentences = qsearch.sentence_candidates(index, vector, depth, settings.hnsw_ef_search)
            stage["sentence search"] = clock() - t
            t = clock()
            hits = qsearch.fuse(index, vector, bm25, (dense, sentences, lexical), settings)
            stage["fusion"] = clock() - t
            t = clock()
            answer(index, text, query, vector, hits, settings, engine.refusal, expansions)
            stage["answer selection"] = clock() - t
            stage["sum of stages"] = sum(stage.values())
            for name, seconds in stage.items():
                samples[name].append(seconds)
    assert np.isfinite(sum(samples["end to end (Engine.ask)"]))
    return samples


def followup_samples(engine, questions, rounds: int) -> dict[str, list[float]]:
    """Seconds per follow-up (a question with history): with the earlier answers remembered, as in a
    chat, and with them forgotten first, as in a JSONL batch (the earlier questions are answered again)."""
    followups = [q for q in questions if q.history]
    samples: dict[str, list[float]] = defaultdict(list)
    clock = time.perf_counter
    for _ in range(rounds):
        for q in followups:
            engine.ask(q.question, list(q.history))  # remembers the earlier answers
            t = clock()
            engine.ask(q.question, list(q.history))
            samples["follow-up, earlier answers remembered"].append(clock() - t)
            engine._recent_answers.clear()
            t = clock()
            engine.ask(q.question, list(q.history))
            samples["follow-up, earlier answers asked again"].append(clock() - t)
    return samples


def stage_rows(samples: dict[str, list[float]]) -> list[list[object]]:
    rows = []
    for name in STAGES:
        if name in samples:
            p50, p95, mean, n = common.ms_summary(samples[name])
            rows.append([name, p50, p95, mean, n])
    return rows


def open_engine(workdir: Path, size: int | None, threads: int, batch_size: int = 32):
    from qa import index as index_store
    from qa.engine import Engine
    from qa.settings import Settings

    corpus = common.prepare_corpus(workdir / "corpus", size)
    settings = Settings(corpus_dir=workdir / "corpus", index_dir=workdir / "index", threads=threads,
                        batch_size=batch_size)
    embedder = common.embedder(settings.model, settings.batch_size, settings.threads)
    report = index_store.build(settings, embedder)
    engine = Engine.open(settings, build="never", embedder=embedder)
    return engine, corpus, report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Warm query latency by stage.")
    parser.add_argument("--size", type=int, help="use a synthetic corpus of about this many chunks (default: corpus/)")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the question set (default 5)")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (Settings.threads, default 2)")
    parser.add_argument("--questions", help="questions file (default eval/questions.jsonl)")
    parser.add_argument("--workdir", help="folder for the temporary corpus and index (default: a new temp folder)")
    parser.add_argument("--quick", action="store_true", help="1 round")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.rounds

    from qa.evaluate import DEFAULT_QUESTIONS, load_questions

    questions = load_questions(Path(args.questions) if args.questions else DEFAULT_QUESTIONS)[:args.limit]
    with common.scratch(args.workdir) as work:
        return _run(args, questions, rounds, work)


def _run(args, questions, rounds: int, work: Path) -> int:
    engine, corpus, report = open_engine(work, args.size, args.threads)
    common.print_header("latency.py", [
        f"corpus: {corpus['kind']}; {report.chunks} chunks, {report.sentences} sentences, dense index {report.dense_kind}",
        f"{len(questions)} questions x {rounds} rounds after 1 warm-up pass; torch threads {args.threads}; "
        f"index in {work}"])
    samples = measure(engine, questions, rounds)
    common.say(common.table("warm query latency by stage (ms)", ["stage", "p50", "p95", "mean", "n"],
                            stage_rows(samples)))
    followups = followup_samples(engine, questions, rounds)
    if followups:
        common.say(common.table("follow-ups (ms)", ["case", "p50", "p95", "mean", "n"],
                                [[name, *common.ms_summary(values)] for name, values in followups.items()]))
    e2e = common.pct(samples["end to end (Engine.ask)"], 50)
    floor = common.pct(samples["floor: model.encode alone"], 50)
    encode = common.pct(samples["encode (encode_one)"], 50)
    common.say(common.table("ratios (same run)", ["ratio", "value", "target"], [
        ["end-to-end p50 / floor p50", e2e / floor, "<= 1.5"],
        ["encode_one p50 / floor p50", encode / floor, "~1"],
        ["non-encode share of e2e p50", (e2e - encode) / e2e, ""],
    ]))
    common.print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
