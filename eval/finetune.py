"""Would MiniLM fine-tuned on the question bank answer better? An experiment, not part of the product.

    python eval/finetune.py [--extra] [--epochs 1] [--seed 0] [--keep DIR]

1. Fine-tunes all-MiniLM-L6-v2 on (example question, answer sentence) pairs:
   corpus/questions/*.jsonl, plus with --extra the further examples in
   eval/tuning/ (written blind like the bank; see eval/tuning/README.md).
   Loss: in-batch negatives (MultipleNegativesRanking, scale 20), both ways;
   a batch never holds two pairs with the same answer, which would be false
   negatives. AdamW, lr 2e-5, 10% warm-up then linear decay, batch 32, in
   plain torch on the CPU (about 85 s per epoch over 1,690 pairs on 2 cores).
2. Builds an index with the tuned model in a temporary folder (the shipped
   question bank and settings otherwise), and refits refusal on
   eval/questions.jsonl: the refusal weights belong to the model.
3. Prints hit@3 / MRR / answer accuracy / refused / wrongly refused on every
   question set, for the shipped engine and the tuned one, and the pooled
   answer count.

Nothing here changes the product; docs/DESIGN.md ("A fine-tuned encoder")
has the figures and why it is not shipped yet.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.embedding import resolve_model  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.evaluate import fit_refusal, load_questions, run_engine, score  # noqa: E402
from qa.question_bank import bank_files, read_bank  # noqa: E402
from qa.settings import PROJECT_ROOT, Settings  # noqa: E402

SETS = ("questions", "heldout", "fresh", "unseen", "sealed")
BATCH = 32
LEARNING_RATE = 2e-5
SCALE = 20.0  # cosine -> logit, as sentence-transformers' MultipleNegativesRankingLoss


def training_pairs(extra: bool) -> list[tuple[str, str]]:
    files = bank_files(PROJECT_ROOT / "corpus")
    if extra:
        files += sorted((PROJECT_ROOT / "eval" / "tuning").glob("*.jsonl"))
    entries, warnings = read_bank(files)
    for warning in warnings:
        print(f"skipped: {warning}", file=sys.stderr)
    return [(entry.question, entry.answer) for entry in entries]


def batches(pairs: list[tuple[str, str]], rng: random.Random) -> list[list[tuple[str, str]]]:
    """Shuffled batches in which every answer appears once (a second one would be a false negative)."""
    waiting = pairs[:]
    rng.shuffle(waiting)
    out = []
    while waiting:
        batch, answers, later = [], set(), []
        for pair in waiting:
            if len(batch) < BATCH and pair[1] not in answers:
                batch.append(pair)
                answers.add(pair[1])
            else:
                later.append(pair)
        if len(batch) > 1:
            out.append(batch)
        waiting = later if len(batch) > 1 else []
    return out


def fine_tune(pairs: list[tuple[str, str]], epochs: int, seed: int, out: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    rng = random.Random(seed)
    model = SentenceTransformer(resolve_model(Settings().model), device="cpu")
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    plan = [batches(pairs, rng) for _ in range(epochs)]
    total = sum(len(epoch) for epoch in plan)
    warm_up = max(1, total // 10)

    def embed(texts: list[str]):
        features = model.tokenize(texts)
        return torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=-1)

    step, started = 0, time.time()
    for epoch in plan:
        for batch in epoch:
            questions, answers = (list(side) for side in zip(*batch))
            logits = embed(questions) @ embed(answers).T * SCALE
            labels = torch.arange(len(batch))
            loss = (torch.nn.functional.cross_entropy(logits, labels)
                    + torch.nn.functional.cross_entropy(logits.T, labels)) / 2
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
            for group in optimiser.param_groups:
                group["lr"] = LEARNING_RATE * min(step / warm_up, max(0.0, (total - step) / max(1, total - warm_up)))
        print(f"step {step}/{total}, loss {loss.item():.3f}, {time.time() - started:.0f} s", file=sys.stderr)
    model.eval()
    model.save(str(out))


def report(name: str, engine: Engine) -> None:
    answered, answerable = 0.0, 0
    cells = []
    for set_name in SETS:
        path = PROJECT_ROOT / "eval" / f"{set_name}.jsonl"
        if not path.exists():
            continue
        questions = load_questions(path)
        s = score(set_name, questions, run_engine(engine, questions))
        count = sum(q.answerable for q in questions)
        answered += s.answer_accuracy * count
        answerable += count
        cells.append(f"{s.hit3:.3f} / {s.mrr:.3f} / {s.answer_accuracy:.3f} / {s.refused_unanswerable:.3f} / "
                     f"{s.refused_answerable:.3f}")
    print(f"| {name} | " + " | ".join(cells) + f" | {round(answered)} / {answerable} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", action="store_true", help="also train on eval/tuning/*.jsonl")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="save the tuned model here instead of a temporary folder")
    args = parser.parse_args()

    say = lambda text: print(text, file=sys.stderr)  # noqa: E731
    shipped = Engine.open(Settings.from_env(), build="stale", say=say)
    pairs = training_pairs(args.extra)
    say(f"fine-tuning on {len(pairs)} pairs, {args.epochs} epoch(s), seed {args.seed}")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.keep or Path(tmp) / "model"
        fine_tune(pairs, args.epochs, args.seed, model_dir)
        settings = Settings.from_env().replace(model=str(model_dir), index_dir=Path(tmp) / "index")
        tuned = Engine.open(settings, build="missing", say=say)
        fit = fit_refusal(tuned, load_questions(PROJECT_ROOT / "eval" / "questions.jsonl"))
        say(f"refusal refitted on eval/questions.jsonl: weights {fit.weights}, bar {fit.bar}")
        tuned = Engine(settings.replace(answerable_weights=fit.weights, answerable_bar=fit.bar),
                       tuned.embedder, tuned.index)
        print("hit@3 / MRR / answer accuracy / unanswerable refused / answerable wrongly refused\n")
        print("| engine | " + " | ".join(SETS) + " | answers, pooled |")
        print("| --- | " + " | ".join("---" for _ in SETS) + " | --- |")
        report("shipped", shipped)
        report(f"tuned ({len(pairs)} pairs, {args.epochs} epoch(s), seed {args.seed})", tuned)


if __name__ == "__main__":
    main()
