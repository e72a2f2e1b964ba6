"""Workbench for quality that transfers: every setup of qa/evaluation/benchmark.py, built once, scored with variants.

Not part of the product. Indexes are kept in a work folder per half, so
variants of the answer, fusion and refusal settings are scored without
rebuilding:

    python eval/experiments/transfer_lab.py --half fit
    python eval/experiments/transfer_lab.py --half report --set weight_lexical=1.0
    python eval/experiments/transfer_lab.py --half fit --refusal /tmp/refusal.json --setups plain,fresh

Setups (qa/evaluation/benchmark.py open_setup): product (corpus/ as it is: the six
labelled sets), plain (its articles without example questions or tuning: the
six sets), fresh (the benchmark's articles alone) and grown (both: the
benchmark's questions and the six sets). One line per setup and set: hit@1,
hit@3, MRR, answer accuracy, wrongly refused, and refused per unanswerable kind.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository

from qa.evaluation import benchmark
from qa.evaluation.evaluate import PRODUCT_SETS, load_questions, run_engine, score
from qa.models.refusal import load_model
from qa.settings import Settings

BENCHMARK = ROOT.parent / "shared" / "benchmarks" / "squad2-dev-half.json"


def question_sets(setup: str, bench_sample) -> dict:
    sets = {}
    if setup in ("fresh", "grown"):
        sets["bench"] = list(bench_sample.questions)
    if setup != "fresh":
        sets.update({name: load_questions(path) for name, path in PRODUCT_SETS.items()})
    return sets


def engines(half: str, work: Path, settings: Settings, setups, refusal=None):
    articles = benchmark.split_halves(benchmark.load_benchmark(BENCHMARK), 0)[half]
    bench_sample = benchmark.sample(articles, 0, 2, 240, 90, 80)
    for setup in setups:
        engine = benchmark.open_setup(setup, bench_sample, settings, work, refusal,
                                      say=lambda m: print(m, file=sys.stderr))
        yield setup, engine, question_sets(setup, bench_sample)


def line(setup: str, name: str, s) -> str:
    refused = " ".join(f"{kind[:5]} {share:.3f}" for kind, share in s.by_kind.items()
                       if kind in ("unanswerable", "off-topic"))
    return (f"{setup:<8}{name:<9} h1 {s.hit1:.3f} h3 {s.hit3:.3f} mrr {s.mrr:.3f} acc {s.answer_accuracy:.3f} "
            f"wrong {s.refused_answerable:.3f} refused {refused}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--half", default="fit")
    parser.add_argument("--work", default="/tmp/qa-lab")
    parser.add_argument("--setups", default="product,plain,fresh,grown")
    parser.add_argument("--refusal", help="a refusal model file to use instead of the shipped one")
    parser.add_argument("--set", action="append", default=[], help="name=value (JSON), a setting to change")
    args = parser.parse_args()
    changes = {}
    for item in args.set:
        name, value = item.split("=", 1)
        changes[name] = json.loads(value)
    settings = Settings.from_env().replace(**changes)
    refusal = load_model(Path(args.refusal), settings.model) if args.refusal else None
    for setup, engine, sets in engines(args.half, Path(args.work) / args.half, settings,
                                       tuple(args.setups.split(",")), refusal):
        for name, questions in sets.items():
            print(line(setup, name, score("engine", questions, run_engine(engine, questions))), flush=True)


if __name__ == "__main__":
    main()
