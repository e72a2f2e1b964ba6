"""What fine-tuning on the question bank gives, and whether other training choices would give more.

    python eval/experiments/finetune.py [--extra] [--epochs 1] [--seed 0]

Scores three engines on every question set of eval/, in one run:
- before: the model as it ships (Settings.tune_epochs=0) with the fusion weights
  chosen for it before fine-tuning (weight_sentence 0.5, weight_question 3),
  refusal read against each index's background (qa/models/refusal.py);
- shipped: the product as built, with the model tuned on corpus/questions/
  (qa/models/tuning.py) and the settings in qa/settings.py;
- variant: tuned with qa.models.tuning.fine_tune on the bank plus, with --extra, the
  further examples of eval/training/ (written blind like the bank, see
  eval/training/README.md), for --epochs epochs with --seed.

Each builds its index in a temporary folder; tuned models are trained there
too (about a minute each on 2 cores). docs/history.md (2026-11-22, fifth
session: the model fine-tuned on the question bank, shipped) has the figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


from qa.models import tuning
from qa.models.embedding import Embedder, resolve_model
from qa.serving.engine import Engine
from qa.evaluation.evaluate import DEFAULT_QUESTIONS, QUESTION_SETS, load_questions, run_engine, score
from qa.models.question_bank import bank_files, read_bank
from qa.settings import PROJECT_ROOT, Settings

SETS = ("questions", "heldout", "fresh", "unseen", "sealed", "sealed2")
DEV = DEFAULT_QUESTIONS
# The fusion weights the untuned model shipped with (qa/settings.py before fine-tuning).
BEFORE = {"tune_epochs": 0, "weight_sentence": 0.5, "weight_question": 3.0}


def training_pairs(extra: bool) -> list[tuple[str, str]]:
    files = bank_files(PROJECT_ROOT / "corpus")
    if extra:
        files += sorted((PROJECT_ROOT / "eval" / "training").glob("*.jsonl"))
    entries, warnings = read_bank(files)
    for warning in warnings:
        print(f"skipped: {warning}", file=sys.stderr)
    return list(tuning.training_pairs(entries))


def refitted(engine: Engine) -> Engine:
    """The engine as it is: refusal reads its signals against each index's own background
    (qa/models/refusal.py), so a changed model needs no refit of its own."""
    return engine


def report(name: str, engine: Engine) -> None:
    answered, answerable, refused, unanswerable = 0.0, 0, 0.0, 0
    cells = []
    for set_name in SETS:
        path = QUESTION_SETS / f"{set_name}.jsonl"
        if not path.exists():
            cells.append("-")
            continue
        questions = load_questions(path)
        s = score(set_name, questions, run_engine(engine, questions))
        count = sum(q.answerable for q in questions)
        answered += s.answer_accuracy * count
        answerable += count
        refused += s.refused_unanswerable * (len(questions) - count)
        unanswerable += len(questions) - count
        cells.append(f"{s.hit3:.3f} / {s.mrr:.3f} / {s.answer_accuracy:.3f} / {s.refused_unanswerable:.3f} / "
                     f"{s.refused_answerable:.3f}")
    print(f"| {name} | " + " | ".join(cells) + f" | {round(answered)} / {answerable} | "
          f"{round(refused)} / {unanswerable} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", action="store_true", help="also train the variant on eval/training/*.jsonl")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=tuning.SEED)
    args = parser.parse_args()

    say = lambda text: print(text, file=sys.stderr)  # noqa: E731
    shipped = Settings.from_env()
    print("hit@3 / MRR / answer accuracy / unanswerable refused / answerable wrongly refused\n")
    print("| engine | " + " | ".join(SETS) + " | right answers | unanswerable refused |")
    print("| --- | " + " | ".join("---" for _ in SETS) + " | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        before = Engine.open(shipped.replace(index_dir=work / "before", **BEFORE), build="missing", say=say)
        report("before: untuned model", refitted(before))
        report("shipped: tuned on the bank", Engine.open(shipped, build="stale", say=say))

        pairs = training_pairs(args.extra)
        say(f"variant: fine-tuning on {len(pairs)} pairs, {args.epochs} epoch(s), seed {args.seed}")
        model = work / "variant-model"
        tuning.fine_tune(resolve_model(shipped.model), pairs, args.epochs, shipped.threads, model, seed=args.seed)
        # The variant model is given as the model itself, with no tuning on top of it.
        settings = shipped.replace(model=str(model), index_dir=work / "variant", tune_epochs=0)
        variant = Engine.open(settings, build="missing", say=say,
                              embedder=Embedder(str(model), settings.batch_size, settings.threads))
        report(f"variant: {len(pairs)} pairs, {args.epochs} epoch(s), seed {args.seed}", refitted(variant))


if __name__ == "__main__":
    main()
