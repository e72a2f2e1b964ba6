"""Workbench for the calibration suite: its engines opened once, scored with variants of the query-time settings.

Not part of the product. `python -m qa eval --suite` scores one configuration with
the baselines; this scores several, without rebuilding, on the indexes a suite run
left in its work folder (`--work`; a missing or stale one is built first):

    python eval/experiments/suite_lab.py --work /tmp/suite --set rank_penalty=0.03 --set overlap_weight=0.4
    python eval/experiments/suite_lab.py --work /tmp/suite --groups webdev/fresh,webdev/grown,product/dev

Each `--set` is one variant (several settings joined by ","), scored after the
settings as they are. Groups are "<corpus>/<setup>" of the suite (squad, medquad,
web, webdev; fresh or grown: "webdev" is the web pages asked
eval/sets/health-web-dev.jsonl, the development set of the web style) and
"product/<set>" (one of the six sets on the seed corpus). The web check set
(health-web.jsonl, the suite's "web") is left out unless named: develop on webdev. One line per group: hit@1, MRR, answer
accuracy, answerable wrongly refused, off-topic refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qa.evaluation import suite
from qa.evaluation.benchmark import OFF_TOPIC
from qa.evaluation.evaluate import PRODUCT_SETS, load_questions, run_engine, score
from qa.settings import Settings

DEFAULT_GROUPS = ("squad/fresh", "squad/grown", "medquad/fresh", "medquad/grown", "webdev/fresh", "webdev/grown",
                  "product/dev", "product/heldout")


def open_groups(settings: Settings, work: Path, groups: list[str]) -> dict:
    """group -> (engine, questions, corpus or None), each engine opened (built when missing) once."""
    corpora: dict[str, suite.SuiteCorpus] = {}
    opened = {}
    for group in groups:
        name, setup = group.split("/")
        if name == "product":
            engine = suite.open_suite_setup(None, "product", settings, work, say=lambda _: None)
            opened[group] = (engine, load_questions(PRODUCT_SETS[setup]), None)
            continue
        if name not in corpora:
            corpora[name] = suite.load_corpora([name])[0]
        corpus = corpora[name]
        engine = suite.open_suite_setup(corpus, setup, settings, work, say=print)
        opened[group] = (engine, list(corpus.questions), corpus)
    return opened


def parse_variant(text: str) -> dict:
    """"rank_penalty=0.03,overlap_weight=0.4" -> the settings it changes, typed as the settings' own fields."""
    defaults = Settings()
    changes = {}
    for part in filter(None, text.split(",")):
        key, value = part.split("=", 1)
        current = getattr(defaults, key.strip())  # an unknown setting is an error here too
        if isinstance(current, bool):
            changes[key.strip()] = value.strip().lower() in ("1", "true", "yes", "on")
            continue
        changes[key.strip()] = None if value == "none" else type(current)(value) if current is not None else float(value)
    return changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="the suite's work folder (python -m qa eval --suite --work)")
    parser.add_argument("--groups", default=",".join(DEFAULT_GROUPS))
    parser.add_argument("--set", action="append", default=[], help="one variant: name=value[,name=value]")
    parser.add_argument("--build-set", default="", help="settings the indexes are opened (and, when stale, "
                        "rebuilt) with, and every variant starts from: name=value[,name=value]; use a copy of the "
                        "work folder, since a build replaces its indexes")
    args = parser.parse_args()
    settings = Settings.from_env().replace(**parse_variant(args.build_set))
    opened = open_groups(settings, Path(args.work), args.groups.split(","))
    for variant in [{}] + [parse_variant(v) for v in args.set]:
        print(variant or "as the settings are", flush=True)
        for group, (engine, questions, corpus) in opened.items():
            engine.settings = settings.replace(**variant)
            engine.forget()  # a follow-up must not find the answers an earlier variant gave its first question
            scores = score("engine", questions, run_engine(engine, questions))
            off = suite._by_kind(corpus, scores).get("refused " + OFF_TOPIC, float("nan")) if corpus else float("nan")
            print(f"  {group:<16} hit@1 {scores.hit1:.3f}  MRR {scores.mrr:.3f}  answers {scores.answer_accuracy:.3f}"
                  f"  wrongly refused {scores.refused_answerable:.3f}  off-topic refused {off:.2f}", flush=True)


if __name__ == "__main__":
    main()
