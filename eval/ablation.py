"""What each part of the engine is worth: the engine with one part taken out, on each question set.

    python eval/ablation.py [eval/questions.jsonl eval/heldout.jsonl ...]

Prints hit@3 / MRR / answer accuracy / refused unanswerable / wrongly refused
per set. Every row reuses the live index and the shipped refusal weights; a
part is taken out by a setting (Settings.replace), so nothing is rebuilt.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.engine import Engine  # noqa: E402
from qa.evaluate import load_questions, run_engine, score  # noqa: E402
from qa.settings import PROJECT_ROOT, Settings  # noqa: E402

PARTS = {
    "nothing (final)": {},
    "synonyms": {"synonyms_file": None},
    "genericness penalty": {"generic_penalty": 0.0},
    "meta-discourse penalty": {"meta_penalty": 0.0},
    "answer-type bonus": {"answer_type_bonus": 0.0},
    "follow-up focus": {"followup_focus": 0.0},
    "sentence score in fusion": {"weight_sentence": 0.0},
    "BM25 in fusion": {"weight_lexical": 0.0},
}


def main(paths: list[str]) -> None:
    paths = paths or [str(PROJECT_ROOT / "eval" / name) for name in ("questions.jsonl", "heldout.jsonl", "fresh.jsonl")]
    sets = [(Path(p).stem, load_questions(Path(p))) for p in paths]
    base = Engine.open(Settings.from_env(), build="stale", say=lambda text: print(text, file=sys.stderr))
    print("| taken out | " + " | ".join(name for name, _ in sets) + " |")
    print("| --- |" + " --- |" * len(sets))
    for part, change in PARTS.items():
        engine = Engine(base.settings.replace(**change), base.embedder, base.index)
        cells = []
        for name, questions in sets:
            s = score(part, questions, run_engine(engine, questions))
            cells.append(f"{s.hit3:.3f} / {s.mrr:.3f} / {s.answer_accuracy:.3f} / "
                         f"{s.refused_unanswerable:.3f} / {s.refused_answerable:.3f}")
        print(f"| {part} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
