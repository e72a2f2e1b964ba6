"""Warm query latency, split by stage, against torch's encode of the same text (the floor it replaced).

    nice -n 19 python -m bench.latency [--rounds 5] [--query-threads 1] [--size CHUNKS] [--limit N] [--busy] [--quick]
                                       [--reference DIR] [--questions FILE ...]

The index is built in a temporary folder (from a copy of corpus/, or from a
synthetic corpus of --size chunks). After one warm-up pass, every question of
eval/sets/dev.jsonl (with its history) is run `--rounds` times; in each
round and for each question, in this order (`--questions`, repeatable, takes
other files' distinct questions instead: e.g. the six product sets, a batch
five times longer, where the loop's start and end weigh less):

- floor (a pass of its own over all questions, then the engine's pass):
  SentenceTransformer.encode([query]) of the same (tuned) model on torch,
  alone, on 2 threads (the product's setting before ONNX), then on 1 (query
  = the text the engine embeds: the question, with a follow-up's topic
  restored; for 80 of 85 questions it is the question itself). Torch's
  thread count is set once per pass: changing it costs more than an encode;
- then for each question, end to end: Engine.ask(question, history), with the question model's
  ONNX export on --query-threads threads;
- the stages, each timed alone with the library's own functions on the same
  inputs: synonyms (Synonyms.expand), encode_one, query terms
  (qa.reading.text.content_terms), FAISS (qa.answering.search.dense_candidates), BM25
  (qa.answering.search.lexical_scores + lexical_candidates), sentence search
  (qa.answering.search.sentence_candidates), fusion (qa.answering.search.fuse on those lists:
  the three exact scores of every candidate and the sort), answer
  (qa.answering.answer.answer).

p50/p95 pool all rounds. The ratios are taken from this one run (the floor
and the engine alternate pass by pass, so both see the same machine load).

Then, in the same run, `python -m qa ask --jsonl` on the same questions
(follow-ups with their histories) in a fresh process per round and case,
alternating with torch's encode of each question alone: piped (the first
line written alone and answered, which warms the process up; then all the
others at once: the time from writing them to their last answer, over their
number), and one line at a time (each written when the answer before it has
come: a script that waits; the time from the first answer line to the last,
over the answers after the first). Timing the piped case from its first
answer would leave out the batched embedding of the questions that came
with the first one. Target, piped: at most 0.6 x torch's encode of the same
questions (issue 14); 0.35 x (issue 23). --reference DIR also runs the piped
case with the code in DIR (another checkout), in the same rounds.

Also: the question model's encode on 1 and on 2 onnxruntime threads,
alternating question by question (Settings.query_threads).

--busy runs another CPU-bound process during the whole measurement (a shared
machine with a core taken).
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
          "floor: torch encode alone, 2 thread(s)", "floor: torch encode alone, 1 thread(s)"]


JSONL_PIPED = "python -m qa ask --jsonl, piped after a first answer"
JSONL_WAITING = "python -m qa ask --jsonl, one line at a time, after the first answer"


def measure(engine, questions, rounds: int, warmup: bool = True) -> dict[str, list[float]]:
    """Seconds per stage per question per round; see the module docstring for what each covers."""
    import numpy as np

    import qa.answering.search as qsearch
    from qa.answering.answer import answer, resolve_query
    from qa.serving.engine import clean_question
    from qa.reading.text import content_terms

    settings = engine.settings
    torch_model = common.torch_floor(engine.embedder.name, 1)
    floors = {threads: torch_model for threads in (2, 1)}
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
        for threads, model in floors.items():
            _torch_threads(threads)
            for q, text, query in prepared:
                engine.ask(q.question, list(q.history))
                _torch_encode(model, query)

    samples: dict[str, list[float]] = defaultdict(list)
    clock = time.perf_counter
    for _ in range(rounds):
        for threads in (2, 1):  # 1 last: torch's idle worker threads would spin beside the engine's pass
            _torch_threads(threads)
            for q, text, query in prepared:
                samples[f"floor: torch encode alone, {threads} thread(s)"].append(
                    _torch_encode(torch_model, engine.synonyms.expand(query)[0]))
        for q, text, query in prepared:
            searched, expansions = engine.synonyms.expand(query)

            engine.forget(answers=False)  # a new question is embedded: its vector was kept the round before
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
            dense = qsearch.dense_candidates(index, vector, depth)
            stage["FAISS dense"] = clock() - t
            t = clock()
            bm25 = qsearch.lexical_scores(index, terms)
            lexical = qsearch.lexical_candidates(bm25, depth)
            stage["BM25 lexical"] = clock() - t
            t = clock()
            sentences = qsearch.sentence_candidates(index, vector, depth)
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


def _torch_threads(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


def _torch_encode(model, text: str) -> float:
    """Seconds of one torch encode of `text`."""
    t = time.perf_counter()
    model.encode([text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - t


def thread_samples(engine, questions, rounds: int) -> dict[str, list[float]]:
    """Seconds of the question model's encode of each question on 1 and on 2 onnxruntime threads, alternating."""
    from qa.models.embedding import Embedder

    models = {threads: Embedder(engine.embedder.name, threads=threads, export=engine.embedder.export, load=True)
              for threads in (1, 2)}
    out: dict[str, list[float]] = defaultdict(list)
    for round_ in range(rounds + 1):
        for q in questions:
            for threads, model in models.items():
                t = time.perf_counter()
                model.encode_one(q.question)
                if round_:  # the first pass warms up
                    out[f"question model encode, {threads} thread(s)"].append(time.perf_counter() - t)
    return out


def jsonl_marginal(settings, questions, rounds: int, reference: Path | None = None) -> dict[str, list[float]]:
    """Per round: seconds per question of `python -m qa ask --jsonl` piped and one line at a time (module
    docstring), and of torch's encode of each question alone (2 and 1 threads), alternating round by round;
    with `reference`, also the piped case with the code in that folder."""
    import json

    from qa.indexing.question_model import load, query_model

    lines = [json.dumps({"question": q.question, "history": list(q.history)}) + "\n" for q in questions]
    torch_model = common.torch_floor(query_model(load(settings).manifest, settings), 1)
    floors = {threads: torch_model for threads in (2, 1)}
    arguments = ["-m", "qa", "ask", "--jsonl", "--index", str(settings.index_dir), "--corpus", str(settings.corpus_dir)]
    env = {**common.child_env(), "QA_TUNED_DIR": str(settings.tuned_dir)} if settings.tuned_dir else common.child_env()
    cases = [(JSONL_PIPED, common.ROOT), (JSONL_WAITING, common.ROOT)]
    if reference is not None:
        cases.append((f"{JSONL_PIPED}, code in {reference}", reference))
    out: dict[str, list[float]] = defaultdict(list)
    for _ in range(rounds):
        for threads, model in floors.items():
            _torch_threads(threads)
            total = sum(_torch_encode(model, q.question) for q in questions)
            out[f"torch encode alone, {threads} thread(s)"].append(total / len(questions))
        for case, code in cases:
            out[case].append(_jsonl_seconds(arguments, code, env, lines, waiting=case == JSONL_WAITING))
    return out


def _jsonl_seconds(arguments: list[str], code: Path, env: dict, lines: list[str], waiting: bool) -> float:
    """Seconds per question of one `python -m qa ask --jsonl` process run with the code in `code`."""
    import subprocess

    process = subprocess.Popen([sys.executable, *arguments], cwd=code, env={**env, "PYTHONPATH": str(code)},
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    arrivals = []
    process.stdin.write(lines[0])
    process.stdin.flush()
    if process.stdout.readline():
        arrivals.append(time.perf_counter())
    if waiting:
        for line in lines[1:]:
            process.stdin.write(line)
            process.stdin.flush()
            if process.stdout.readline():
                arrivals.append(time.perf_counter())
        process.stdin.close()
        start = arrivals[0]
    else:
        start = time.perf_counter()
        process.stdin.write("".join(lines[1:]))
        process.stdin.close()
        arrivals += [time.perf_counter() for _ in iter(process.stdout.readline, "")]
    if process.wait() != 0 or len(arrivals) != len(lines):
        raise SystemExit(f"python -m qa ask --jsonl ({code}) answered {len(arrivals)} of {len(lines)} questions")
    return (arrivals[-1] - start) / (len(arrivals) - 1)


def followup_samples(engine, questions, rounds: int) -> dict[str, list[float]]:
    """Seconds per follow-up (a question with history): with the earlier answers remembered, as in a
    chat, and with them forgotten first, as in a JSONL batch (the earlier questions are answered again)."""
    followups = [q for q in questions if q.history]
    samples: dict[str, list[float]] = defaultdict(list)
    clock = time.perf_counter
    for _ in range(rounds):
        for q in followups:
            engine.ask(q.question, list(q.history))  # remembers the earlier answers
            engine.forget(answers=False)
            t = clock()
            engine.ask(q.question, list(q.history))
            samples["follow-up, earlier answers remembered"].append(clock() - t)
            engine.forget()
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


def open_engine(workdir: Path, size: int | None, query_threads: int, tuned_dir: Path | None = None):
    """A built index and an engine on it, as `python -m qa ask` opens one (its own question model)."""
    from qa.indexing.build import build as build_index
    from qa.serving.engine import Engine
    from qa.settings import Settings

    corpus = common.prepare_corpus(workdir / "corpus", size)
    settings = Settings(corpus_dir=workdir / "corpus", index_dir=workdir / "index", query_threads=query_threads,
                        tuned_dir=tuned_dir or common.models_dir(workdir))
    embedder = common.embedder(settings.model, settings.batch_size, settings.threads)
    report = build_index(settings, embedder)
    engine = Engine.open(settings, build="never")
    return engine, corpus, report


def distinct_questions(files: list[Path]) -> list:
    """The questions of `files`, in order, each (question, history) once: a question asked again would be
    answered from the engine's memory, and the batch is meant to be of new questions."""
    from qa.evaluation.evaluate import load_questions

    seen, questions = set(), []
    for path in files:
        for question in load_questions(path):
            key = (" ".join(question.question.lower().split()), question.history)
            if key not in seen:
                seen.add(key)
                questions.append(question)
    return questions


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Warm query latency by stage.")
    parser.add_argument("--size", type=int, help="use a synthetic corpus of about this many chunks (default: corpus/)")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the question set (default 5)")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--query-threads", type=int, default=1,
                        help="onnxruntime threads per question (Settings.query_threads, default 1)")
    parser.add_argument("--busy", action="store_true", help="another CPU-bound process runs meanwhile")
    parser.add_argument("--tuned-dir", help="tuned models and exports to reuse (default: in the work folder)")
    parser.add_argument("--no-jsonl", action="store_true", help="skip python -m qa ask --jsonl")
    parser.add_argument("--reference", help="another checkout whose qa ask --jsonl piped is timed in the same rounds")
    parser.add_argument("--questions", action="append",
                        help="questions file, repeatable: the files' distinct questions (default eval/sets/dev.jsonl)")
    parser.add_argument("--workdir", help="folder for the temporary corpus and index (default: a new temp folder)")
    parser.add_argument("--quick", action="store_true", help="1 round")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.rounds

    from qa.evaluation.evaluate import DEFAULT_QUESTIONS

    questions = distinct_questions([Path(f) for f in args.questions or [DEFAULT_QUESTIONS]])[:args.limit]
    with common.scratch(args.workdir) as work:
        return _run(args, questions, rounds, work)


def _run(args, questions, rounds: int, work: Path) -> int:
    engine, corpus, report = open_engine(work, args.size, args.query_threads,
                                         Path(args.tuned_dir) if args.tuned_dir else None)
    common.print_header("latency.py", [
        f"corpus: {corpus['kind']}; {report.chunks} chunks, {report.sentences} sentences, dense index {report.dense_kind}",
        f"{len(questions)} questions x {rounds} rounds after 1 warm-up pass; question model "
        f"{engine.embedder.backend} on {args.query_threads} thread(s); index in {work}",
        f"another CPU-bound process running: {'yes' if args.busy else 'no'}"])
    with common.busy(args.busy):
        return _measure_all(args, engine, questions, rounds)


def _measure_all(args, engine, questions, rounds: int) -> int:
    samples = measure(engine, questions, rounds)
    common.say(common.table("warm query latency by stage (ms)", ["stage", "p50", "p95", "mean", "n"],
                            stage_rows(samples)))
    followups = followup_samples(engine, questions, rounds)
    if followups:
        common.say(common.table("follow-ups (ms)", ["case", "p50", "p95", "mean", "n"],
                                [[name, *common.ms_summary(values)] for name, values in followups.items()]))
    if engine.embedder.backend == "onnx":
        threads = thread_samples(engine, questions, rounds)
        common.say(common.table("question model threads (ms)", ["case", "p50", "p95", "mean", "n"],
                                [[name, *common.ms_summary(values)] for name, values in threads.items()]))
    e2e = common.pct(samples["end to end (Engine.ask)"], 50)
    floor = min(common.pct(samples[f"floor: torch encode alone, {t} thread(s)"], 50) for t in (1, 2))
    encode = common.pct(samples["encode (encode_one)"], 50)
    rows = [["end-to-end p50 / torch floor p50 (faster of 1, 2 threads)", e2e / floor, ""],
            ["encode_one p50 / torch floor p50", encode / floor, ""],
            ["non-encode share of e2e p50", (e2e - encode) / e2e, ""]]
    if not args.no_jsonl:
        reference = Path(args.reference).resolve() if args.reference else None
        marginal = jsonl_marginal(engine.settings, questions, rounds, reference)
        common.say(common.table("python -m qa ask --jsonl: seconds per question, in ms (median of rounds)",
                                ["case", "median", "min", "max", "rounds"],
                                [[name, 1000 * common.pct(v, 50), 1000 * min(v), 1000 * max(v), len(v)]
                                 for name, v in marginal.items()]))
        torch_alone = min(common.pct(marginal[f"torch encode alone, {t} thread(s)"], 50) for t in (1, 2))
        rows.append(["qa ask --jsonl per question, piped / torch encode alone (faster of 1, 2 threads)",
                     common.pct(marginal[JSONL_PIPED], 50) / torch_alone, "<= 0.6; 0.35 (issue 23)"])
        rows.append(["qa ask --jsonl per question, one line at a time / torch encode alone",
                     common.pct(marginal[JSONL_WAITING], 50) / torch_alone, ""])
        if reference is not None:
            rows.append([f"qa ask --jsonl per question, piped: this code / the code in {reference}",
                         common.pct(marginal[JSONL_PIPED], 50)
                         / common.pct(marginal[f"{JSONL_PIPED}, code in {reference}"], 50), ""])
    common.say(common.table("ratios (same run)", ["ratio", "value", "target"], rows))
    common.print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
