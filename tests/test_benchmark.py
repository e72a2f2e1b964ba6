"""The benchmark harness on a small SQuAD slice: its sampling, and floors that guard the engine's transfer.

The floors sit well below what the full benchmark measures (docs/DESIGN.md, "Quality
now"); they catch a regression, they do not measure quality.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from qa.evaluation import benchmark
from qa.cli import main

MINI = Path(__file__).resolve().parent / "fixtures" / "benchmark" / "squad2-mini.json"


def test_sampling_is_fixed_by_the_seed_and_spread_over_the_articles():
    articles = benchmark.load_benchmark(MINI)
    first = benchmark.sample(articles, 0, 1, 40, 10, 12)
    assert first == benchmark.sample(articles, 0, 1, 40, 10, 12)
    assert len(first.corpus) == 2 and len(first.held_out) == 1
    kinds = [q.kind for q in first.questions]
    assert kinds.count("answerable") == 40 and kinds.count("unanswerable") == 10 and kinds.count("off-topic") == 12
    corpus = {a.file_name for a in first.corpus}
    per_article = [sum(q.source == name for q in first.questions) for name in sorted(corpus)]
    assert per_article == [20, 20]
    assert all(q.source is None and not q.evidence for q in first.questions if q.kind != "answerable")
    held_out_ids = {row["id"] for a in first.held_out for row in a.questions}
    assert {q.id for q in first.questions if q.kind == "off-topic"} <= held_out_ids
    halves = benchmark.split_halves(articles, 0)
    assert not {a.title for a in halves["fit"]} & {a.title for a in halves["report"]}


def test_a_file_that_is_not_a_benchmark_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [{"no title": 1}]}')
    with pytest.raises(ValueError, match="not a SQuAD-format"):
        benchmark.load_benchmark(bad)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["eval", "--benchmark", str(bad)]) == 2
    assert "not a SQuAD-format" in err.getvalue()


def test_the_engine_transfers_to_articles_without_example_questions(tmp_path, embedder):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = main(["eval", "--benchmark", str(MINI), "--setup", "fresh", "--half", "all", "--held-out", "1",
                       "--answerable", "40", "--unanswerable", "10", "--off-topic", "12", "--json",
                       "--work", str(tmp_path)])
    assert status == 0
    report = json.loads(out.getvalue())
    systems = {s["system"]: s for s in report["setups"]["fresh"]["benchmark"]}
    assert set(systems) == {"engine", "bm25", "dense-1000", "rrf"}
    engine = systems["engine"]
    best_baseline = max(s["mrr"] for name, s in systems.items() if name != "engine")
    assert engine["mrr"] >= best_baseline - 0.05
    assert engine["mrr"] >= 0.7
    assert engine["answer_accuracy"] >= 0.45
    assert engine["refused_answerable"] <= 0.2
    assert engine["by_kind"]["off-topic"] >= 0.6
