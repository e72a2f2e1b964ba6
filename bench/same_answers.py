"""Answers of two versions of the code, or of two stores, on every question set, compared: the same product?

    python -m bench.same_answers --reference DIR [--workdir DIR]
    python -m bench.same_answers --stores faiss,milvus [--workdir DIR]

DIR is another checkout of the code (e.g. `git archive <commit> | tar -x -C DIR`
for the code before questions were embedded with ONNX). For each version,
in its own folder: `python -m qa build` of a copy of corpus/ (and of the
saved web pages of tests/fixtures/web, which health-web.jsonl is about), then
`python -m qa ask --jsonl` on every question (with its history) of every
set in eval/sets/. Both use
one models folder (QA_TUNED_DIR), so both embed with the same tuned model
(trained once: its key does not depend on the code) and differ only in how
the model runs. --stores compares this code on two stores instead
(Settings.store, QA_STORE): the same code, vectors searched in FAISS or Milvus.

Per set: questions whose answer (found or refused, and the sentence) is the
same, whose passages are the same (article, section, text, in order), whose
labels are (the kind of reply, each passage's match label), and the largest
difference of a passage score; then every question that differs: with both
answers on the sets ideas are tuned on (TUNE_SETS), by its id and what
changed only on the check sets, so that running this bench does not show
anyone a check set's questions (eval/README.md's roles).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from bench import common

ROOT = Path(__file__).resolve().parent.parent
# The sets a change may be chosen on (eval/README.md); every other set only judges.
TUNE_SETS = ("dev", "health-web-dev")


def answers(code: Path, work: Path, models: Path, store: str = "faiss") -> dict[str, list[dict]]:
    """Build with the code in `code` (corpus/, and the saved web pages), then its answers to every set, by set."""
    env = {**common.child_env(), "QA_TUNED_DIR": str(models), "PYTHONPATH": str(code), "QA_STORE": store}
    sets = common.question_sets()
    out = {}
    for which in sorted(set(sets.values())):
        # A fresh copy of the articles each run; an index left by an earlier run with the same
        # --workdir is rebuilt in place, so nothing unchanged is embedded again.
        shutil.rmtree(work / which / "corpus", ignore_errors=True)
        corpus = common.copy_corpus(which, work / which / "corpus")
        index = work / which / "index"
        common.note(f"building {which} with {code}")
        subprocess.run([sys.executable, "-m", "qa", "build", "--corpus", str(corpus), "--index", str(index)],
                       cwd=code, env=env, check=True, stdout=subprocess.DEVNULL)
        for name in (n for n, w in sets.items() if w == which):
            batch = "".join(json.dumps({"question": q.question, "history": list(q.history)}) + "\n"
                            for q in common.load_set(name))
            done = subprocess.run([sys.executable, "-m", "qa", "ask", "--jsonl", "--corpus", str(corpus), "--index",
                                   str(index)], cwd=code, env=env, input=batch, capture_output=True, text=True,
                                  check=True)
            out[name] = [json.loads(line) for line in done.stdout.splitlines()]
    return out


def passages(row: dict) -> list[tuple[str, str, str]]:
    return [(p["source"], p["section"], p["text"]) for p in row.get("passages", [])]


def labels(row: dict) -> tuple:
    """What the reader is told of how well it matches: the kind of reply and each passage's label."""
    return row.get("kind"), tuple(p["match"] for p in row.get("passages", []))


def difference(name: str, question_id: str, before: dict, now: dict) -> str:
    """One changed question: both answers on a tune set; on a check set its id and what changed, no text."""
    if name in TUNE_SETS:
        shown = f"{name}: {before['question']!r}\n    before: {before['answer']}\n    now:    {now['answer']}"
        if labels(before) != labels(now):
            shown += f"\n    labels before: {labels(before)}\n    labels now:    {labels(now)}"
        return shown
    changed = [part for part, same in (("found", before["found"] == now["found"]),
                                       ("answer", before["answer"] == now["answer"]),
                                       ("passages", passages(before) == passages(now)),
                                       ("labels", labels(before) == labels(now))) if not same]
    return f"{name}: {question_id} (a check set: text not shown) changed: {', '.join(changed)}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Answers of two versions of the code, compared.")
    side = parser.add_mutually_exclusive_group(required=True)
    side.add_argument("--reference", help="the other checkout (the code before)")
    side.add_argument("--stores", help="two stores to compare this code on, e.g. faiss,milvus")
    parser.add_argument("--workdir", help="folder for the builds (default: a new temp folder)")
    parser.add_argument("--models", help="models folder to use (QA_TUNED_DIR; default: a new one in the work folder, "
                                         "where the tuned model is trained first)")
    args = parser.parse_args(argv)
    if args.reference:
        sides = [(Path(args.reference).resolve(), "faiss", "reference"), (ROOT, "faiss", "this")]
    else:
        first, second = args.stores.split(",")
        sides = [(ROOT, first, first), (ROOT, second, second)]
    common.print_header("same_answers.py", [f"{sides[0][2]}: {sides[0][0]} on {sides[0][1]}; {sides[1][2]}: "
                                            f"{sides[1][0]} on {sides[1][1]}; sets: {', '.join(common.question_sets())}"])
    with common.scratch(args.workdir) as work:
        models = Path(args.models) if args.models else work / "models"
        before = answers(sides[0][0], work / sides[0][2], models, sides[0][1])
        after = answers(sides[1][0], work / sides[1][2], models, sides[1][1])
    rows, differences = [], []
    for name in before:
        pairs = list(zip(before[name], after[name]))
        same_answer = sum(a["found"] == b["found"] and a["answer"] == b["answer"] for a, b in pairs)
        same_passages = sum(passages(a) == passages(b) for a, b in pairs)
        same_labels = sum(labels(a) == labels(b) for a, b in pairs)
        deltas = [abs(p["score"] - q["score"]) for a, b in pairs if passages(a) == passages(b)
                  for p, q in zip(a["passages"], b["passages"])]
        rows.append([name, len(pairs), same_answer, same_passages, same_labels, max(deltas, default=0.0),
                     sum(a["found"] for a, _ in pairs), sum(b["found"] for _, b in pairs)])
        ids = [q.id for q in common.load_set(name)]
        differences += [difference(name, question_id, a, b) for question_id, (a, b) in zip(ids, pairs)
                        if (a["found"], a["answer"], passages(a), labels(a))
                        != (b["found"], b["answer"], passages(b), labels(b))]
    common.say(common.table(f"{sides[0][2]}'s answers (before) against {sides[1][2]}'s (now)", [
        "set", "questions", "same answer", "same passages", "same labels", "max score diff", "answered before",
        "answered now"],
        rows, digits=6))
    common.say("== questions that differ\n" + ("\n".join(differences) if differences else "(none)"))
    common.print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
