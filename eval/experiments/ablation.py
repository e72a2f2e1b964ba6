"""What each part of the engine is worth: the engine with one part taken out, on each question set.

    python eval/experiments/ablation.py [eval/sets/dev.jsonl eval/sets/heldout.jsonl ...]

Prints hit@3 / MRR / answer accuracy / refused unanswerable / wrongly refused
per set. Every row but one reuses the live index and the shipped refusal
weights; a part is taken out by a setting (Settings.replace). The question
bank row is the engine as it would be shipped without one: the articles
copied without corpus/questions/, indexed in a temporary folder, and the
refusal reading its own background (qa/models/refusal.py).
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path


from qa.serving.engine import Engine
from qa.evaluation.evaluate import QUESTION_SETS, load_questions, run_engine, score
from qa.models.question_bank import BANK_FOLDER
from qa.settings import Settings

PARTS = {
    "nothing (final)": {},
    "question bank": None,  # see engine_without_bank
    "synonyms": {"synonyms_file": None},
    "genericness penalty": {"generic_penalty": 0.0},
    "meta-discourse penalty": {"meta_penalty": 0.0},
    "answer-type bonus": {"answer_type_bonus": 0.0},
    "follow-up focus": {"followup_focus": 0.0},
    "sentence score in fusion": {"weight_sentence": 0.0},
    "BM25 in fusion": {"weight_lexical": 0.0},
}


def engine_without_bank(base: Engine) -> Engine:
    """The engine over the same articles with no question bank (refusal reads its own background)."""
    folder = Path(tempfile.mkdtemp(prefix="qa-no-bank-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    shutil.copytree(base.settings.corpus_dir, folder / "corpus", ignore=shutil.ignore_patterns(BANK_FOLDER))
    settings = base.settings.replace(corpus_dir=folder / "corpus", index_dir=folder / "index")
    return Engine.open(settings, build="missing", embedder=base.embedder)


def main(paths: list[str]) -> None:
    paths = paths or [str(QUESTION_SETS / name) for name in ("dev.jsonl", "heldout.jsonl", "fresh.jsonl")]
    sets = [(Path(p).stem, load_questions(Path(p))) for p in paths]
    base = Engine.open(Settings.from_env(), build="stale", say=lambda text: print(text, file=sys.stderr))
    print("| taken out | " + " | ".join(name for name, _ in sets) + " |")
    print("| --- |" + " --- |" * len(sets))
    for part, change in PARTS.items():
        if change is None:
            engine = engine_without_bank(base)
        else:
            engine = Engine(base.settings.replace(**change), base.embedder, base.index)
        cells = []
        for name, questions in sets:
            s = score(part, questions, run_engine(engine, questions))
            cells.append(f"{s.hit3:.3f} / {s.mrr:.3f} / {s.answer_accuracy:.3f} / "
                         f"{s.refused_unanswerable:.3f} / {s.refused_answerable:.3f}")
        print(f"| {part} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
