"""Where a `qa ask --jsonl` question's CPU time goes, by stage (issue 23): an experiment, not a bench.

    python -m eval.experiments.jsonl_profile [--index DIR] [--questions eval/sets/dev.jsonl] [--passes 5]

Runs the `--jsonl` answering loop in this one thread as qa/serving/jsonl.py does (chunks of
CHUNK_LINES lines: their texts planned and embedded in batches, then `Engine.ask` and `to_dict` and `json.dumps` each),
`--passes` times after a warm-up, with the engine's kept vectors, plans, remembered answers and triage
verdicts forgotten before each pass, so every pass answers new questions. Each stage's functions are
wrapped with a timer that charges CPU time (time.thread_time) to the innermost wrapped function running:
a stage's figure excludes the wrapped stages it calls. Prints CPU ms a question, the minimum over passes.
A stage the code does not have is left out: `PYTHONPATH=DIR python eval/experiments/jsonl_profile.py` profiles
the code in DIR (another checkout) with the same stages.
The wrappers cost about a microsecond a call; the stages wrapped are called a few times a question.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

# (module, attribute, stage): every place a stage's function is looked up when the pipeline runs.
WRAPPED = [
    ("qa.serving.engine", "clean_question", "JSON in, clean question"),
    ("qa.serving.jsonl", "_request", "JSON in, clean question"),
    ("qa.serving.engine", "triage", "triage"),
    ("qa.serving.engine.Engine", "_make_plan", "plan (follow-up topic, synonyms)"),
    ("qa.models.embedding.Embedder", "encode", "encode, batched (prepare)"),
    ("qa.serving.engine.Engine", "prepare", "prepare: the rest"),  # code before issue-23p
    ("qa.serving.engine.Engine", "texts_to_embed", "prepare: the rest"),
    ("qa.serving.engine.Engine", "embedding_batches", "prepare: the rest"),
    ("qa.serving.engine.Engine", "embed_batch", "prepare: the rest"),
    ("qa.serving.engine.Engine", "_embed", "kept vectors looked up"),
    ("qa.serving.engine", "example_similarities", "example-question cosines"),
    ("qa.answering.answer", "example_similarities", "example-question cosines"),
    ("qa.serving.engine", "content_terms", "query terms"),
    ("qa.answering.search", "dense_candidates", "FAISS passages"),
    ("qa.answering.search", "sentence_candidates", "FAISS sentences"),
    ("qa.answering.search", "lexical_scores", "BM25"),
    ("qa.answering.search", "lexical_candidates", "BM25"),
    ("qa.answering.search", "example_scores_by_chunk", "fusion"),
    ("qa.answering.search", "fuse", "fusion"),
    ("qa.serving.engine", "search", "fusion"),
    ("qa.serving.engine", "answer", "answer choice (the rest)"),
    ("qa.answering.answer", "example_scores_by_sentence", "answer choice: example scores"),
    ("qa.answering.answer", "example_lifts", "answer choice: example lifts"),
    ("qa.answering.answer", "_with_token_match", "token match (the rest)"),
    ("qa.answering.answer", "restatements", "token match: restatement"),
    ("qa.answering.answer", "sentence_scores", "token match: late interaction"),
    ("qa.answering.token_match.QuestionReading", "__init__", "token match: question weights"),
    ("qa.answering.token_match.QuestionReading", "restatements", "token match: restatement"),
    ("qa.answering.token_match.QuestionReading", "token_matches", "token match: late interaction"),
    ("qa.answering.token_match.QuestionReading", "_read_passage", "token match: a passage's products"),
    ("qa.answering.answer", "_agreement", "strong label's agreement signals"),
    ("qa.answering.token_match.QuestionReading", "heading", "strong label's agreement signals"),
    ("qa.answering.token_match.QuestionReading", "closest", "refusal: subject coverage"),
    ("qa.answering.answer", "_confidence", "refusal: confidence (the rest)"),
    ("qa.answering.answer", "missing_in_context", "refusal: subject coverage"),
    ("qa.answering.answer", "unnamed", "refusal: unnamed gate"),
    ("qa.models.refusal.RefusalModel", "decide", "refusal: decide"),
    ("qa.models.refusal.LabelBars", "is_strong", "labels"),
    ("qa.answering.answer", "_quoted", "answer context, quoted neighbour"),
    ("qa.answering.answer", "answer_context", "answer context, quoted neighbour"),
    ("qa.answering.result.Result", "to_dict", "formatting (to_dict)"),
    ("qa.serving.engine.Engine", "ask", "ask: the rest"),
]


class StageClock:
    """CPU seconds charged to the innermost wrapped function running (one thread)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[str] = []
        self._since = 0.0

    def _switch(self) -> None:
        now = time.thread_time()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._since
        self._since = now

    def wrap(self, stage: str, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            self._switch()
            self._stack.append(stage)
            try:
                return function(*args, **kwargs)
            finally:
                self._switch()
                self._stack.pop()
        return timed


def _owner(path: str):
    import importlib

    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            owner = getattr(owner, attribute)
        return owner
    raise ImportError(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default="index")
    parser.add_argument("--corpus", default="corpus")
    parser.add_argument("--questions", default="eval/sets/dev.jsonl")
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args(argv)

    import qa  # noqa: F401 - its environment settings (OPENBLAS_NUM_THREADS) first
    from qa.answering import answer as answer_module, triage as triage_module
    from qa.serving import jsonl
    from qa.serving.engine import Engine
    from qa.settings import Settings

    settings = Settings.from_env(corpus_dir=args.corpus, index_dir=args.index)
    engine = Engine.open(settings, build="never")
    lines = [json.dumps({"question": q["question"], "history": q.get("history", [])})
             for q in map(json.loads, Path(args.questions).read_text(encoding="utf-8").splitlines()) if q]

    clock = StageClock()
    for path, attribute, stage in WRAPPED:
        try:
            owner = _owner(path)
            function = getattr(owner, attribute)
        except (ImportError, AttributeError):
            continue  # not in this version of the code: the profile compares versions
        setattr(owner, attribute, clock.wrap(stage, function))
    run = clock.wrap("answering loop (the rest)", _answer_all)

    def new_questions() -> None:
        engine.forget()
        triage_module.triage.cache_clear()

    new_questions()
    run(engine, jsonl, lines)  # warm-up: the sentence caches of answer choice stay warm, as in a long batch
    passes = []
    for _ in range(args.passes):
        new_questions()
        clock.seconds.clear()
        start = time.thread_time()
        run(engine, jsonl, lines)
        total = time.thread_time() - start
        passes.append((total, dict(clock.seconds)))
    stages = sorted({s for _, seconds in passes for s in seconds}, key=lambda s: [w[2] for w in WRAPPED].index(s)
                    if s in [w[2] for w in WRAPPED] else len(WRAPPED))
    per_question = 1000 / len(lines)
    print(f"{len(lines)} questions, {args.passes} passes; CPU ms a question (min over passes / median)")
    for stage in stages:
        values = sorted(seconds.get(stage, 0.0) * per_question for _, seconds in passes)
        print(f"  {stage:45s} {values[0]:6.3f}  {values[len(values) // 2]:6.3f}")
    totals = sorted(total * per_question for total, _ in passes)
    print(f"  {'total CPU':45s} {totals[0]:6.3f}  {totals[len(totals) // 2]:6.3f}")
    return 0


def _answer_all(engine, jsonl, lines) -> None:
    """qa/serving/jsonl.py's loop in this thread: chunks of CHUNK_LINES, prepared, then answered in order."""
    for start in range(0, len(lines), jsonl.CHUNK_LINES):
        chunk = list(enumerate(lines[start:start + jsonl.CHUNK_LINES], start + 1))
        requests = [(number, jsonl._request(number, line)) for number, line in chunk]
        _embed_texts(engine, [r for _, r in requests if isinstance(r, tuple)])
        for number, request in requests:
            json.dumps(jsonl._answer(engine, number, request), ensure_ascii=False)


def _embed_texts(engine, asks) -> None:
    """The texts of `asks` embedded in batches, as the loop does (all at once here, in this thread)."""
    if not hasattr(engine, "texts_to_embed"):  # code before issue-23p (PYTHONPATH=DIR)
        engine.prepare(asks)
        return
    texts: dict[str, bool] = {}
    for question, history in asks:
        for text, tokens in engine.texts_to_embed(question, history).items():
            texts[text] = texts.get(text, False) or tokens
    for batch in engine.embedding_batches(texts):
        engine.embed_batch(batch)


if __name__ == "__main__":
    sys.exit(main())
