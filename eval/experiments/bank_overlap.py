"""Is the question bank's gain more than near-copies of the test questions?

    python eval/experiments/bank_overlap.py

The example questions (corpus/questions/) were written from the articles
alone, but some land close to a test question: both ask about the same
sentences. This splits each question set by the cosine of each answerable
question to its closest example question (near: >= 0.8, far: below), and
scores the engine with and without the bank (eval/ablation.py builds the
latter) on each part: hit@1 / hit@3 / MRR / answer accuracy.
"""

from __future__ import annotations

import sys


from ablation import engine_without_bank

from qa.serving.engine import Engine
from qa.evaluation.evaluate import QUESTION_SETS, load_questions, run_engine, score
from qa.settings import Settings

NEAR = 0.8


def main() -> None:
    base = Engine.open(Settings.from_env(), build="stale", say=lambda text: print(text, file=sys.stderr))
    plain = engine_without_bank(base)
    bank = base.index.question_vectors
    print("| set | part | questions | with the bank | without |\n| --- | --- | --- | --- | --- |")
    for name in ("dev.jsonl", "heldout.jsonl", "fresh.jsonl"):
        answerable = [q for q in load_questions(QUESTION_SETS / name) if q.answerable]
        closest = (base.embedder.encode([q.question for q in answerable]) @ bank.T).max(axis=1)
        for part, keep in (("near", closest >= NEAR), ("far", closest < NEAR)):
            questions = [q for q, k in zip(answerable, keep) if k]
            cells = []
            for engine in (base, plain):
                s = score(part, questions, run_engine(engine, questions))
                cells.append(f"{s.hit1:.3f} / {s.hit3:.3f} / {s.mrr:.3f} / {s.answer_accuracy:.3f}")
            print(f"| {name} | {part} | {len(questions)} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
