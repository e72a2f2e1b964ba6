"""The maintainer's loop on a realistic day of questions: votes -> report -> promote -> rebuild -> ask again.

    python eval/experiments/feedback_loop.py [--with-liked] [--workdir DIR] [--no-blind-sets]

eval/sets/feedback-day.jsonl holds the day: 37 questions people asked (48 times in
all, some by several people), written for this from the articles alone (none
is in another question set of eval/sets/ or in the question bank), each with the
sentence of the article that answers it, or none when the articles do not
say; plus 13 questions asked "tomorrow": the same needs in other words, which
are never promoted. Everything runs on a copy of corpus/ in a temporary
folder, with a temporary feedback database: the real corpus/questions/ is
never touched.

1. Build the index of the copy; ask the day's questions in order, as the
   chat page does (qa.feedback.store): each refusal logged, each answer voted 👍
   when it is right and 👎 (with the person's comment, if any) when it is not.
2. Print the maintainer's report: `python -m qa feedback`.
3. Promote each unanswered or disliked question that the articles do
   answer, with its sentence: `python -m qa feedback promote ID ... --answer
   "..." --article NAME`. Questions the articles do not answer stay as they are.
   With --with-liked, the liked answers are promoted too (`promote ID`).
4. Rebuild: `python -m qa build` (the bank changed, so the model is tuned again).
5. Ask everything again, and compare: the promoted questions, the other
   questions of the day, tomorrow's; and the blind question sets of eval/sets/sets/
   (all but the dev set), to see what else moved.

Set QA_TUNED_DIR to reuse the model tuned on the unchanged bank across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from qa import cli
from qa.serving.engine import Engine
from qa.evaluation.evaluate import QUESTION_SETS, load_questions, run_engine, score
from qa.feedback.store import FeedbackStore, RecentReplies, Reply
from qa.feedback.review import question_key
from qa.settings import PROJECT_ROOT, Settings
from qa.reading.text import normalise_space

DAY = QUESTION_SETS / "feedback-day.jsonl"
BLIND_SETS = ("heldout", "fresh", "unseen", "sealed", "sealed2")
START = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)  # the simulated day's first question


@dataclass(frozen=True)
class Item:
    id: str
    when: str  # "today" | "tomorrow"
    question: str
    history: tuple[str, ...]
    asked: int  # by how many people
    source: str | None  # None: the articles do not say
    answer: str | None  # the sentence that answers it, verbatim
    evidence: tuple[str, ...]  # fragments any right answer contains
    comment: str | None

    @property
    def answerable(self) -> bool:
        return self.answer is not None


def load_day(path: Path = DAY) -> list[Item]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        items.append(Item(row["id"], row["when"], row["question"], tuple(row["history"]), row["asked"],
                          row["source"], row["answer"], tuple(row["evidence"]), row.get("comment")))
    return items


def outcome(item: Item, result) -> str:
    """'right', 'refused' or 'wrong' (for a question the articles do not answer, refusing is right)."""
    if not result.found:
        return "refused" if item.answerable else "right"
    answer = normalise_space(result.answer or "").lower()
    if item.answerable and any(normalise_space(e).lower() in answer for e in item.evidence):
        return "right"
    return "wrong"


def run_cli(*argv: str) -> str:
    """`python -m qa ...` in this process; its standard output (errors fail the run)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(list(argv))
    if code != 0:
        raise SystemExit(f"python -m qa {' '.join(argv)} failed with exit code {code}")
    return out.getvalue()


def the_day(items: list[Item]) -> list[Item]:
    """Every ask of the day in order: each round takes the next asking of every question still asked."""
    order, round_ = [], 0
    while any(item.asked > round_ for item in items):
        order += [item for item in items if item.asked > round_]
        round_ += 1
    return order


def live_the_day(engine: Engine, store: FeedbackStore, items: list[Item]) -> dict[str, int]:
    """Ask as the page does: refusals logged, answers voted by whether they are right."""
    replies = RecentReplies()
    counts = {"asks": 0, "refusals": 0, "likes": 0, "dislikes": 0}
    asks = the_day([i for i in items if i.when == "today"])
    for number, item in enumerate(asks):
        at = START + timedelta(minutes=720 * number / len(asks))
        result = engine.ask(item.question, list(item.history))
        generation = engine.generation()
        counts["asks"] += 1
        reply_id = replies.add(Reply.from_result(result, item.history, generation))
        if not result.found:
            store.log_refusal(result.question, generation, at=at)
            counts["refusals"] += 1
            continue
        liked = outcome(item, result) == "right"
        store.record_vote(reply_id, replies.get(reply_id), liked, None if liked else item.comment, at=at)
        counts["likes" if liked else "dislikes"] += 1
    return counts


def promote_what_the_articles_answer(settings: Settings, items: list[Item],
                                     with_liked: bool) -> tuple[list[Item], list[Item], list[Item]]:
    """The maintainer's step: each unanswered or disliked question with a known sentence is promoted,
    and with `with_liked` each liked one with the answer it got. (promoted, liked promoted, left)"""
    store = FeedbackStore(settings.feedback_db)
    where = ("--db", str(settings.feedback_db), "--corpus", str(settings.corpus_dir))
    by_question = {question_key(i.question): i for i in items if i.when == "today"}
    pending: dict[str, list[int]] = {}
    liked: dict[str, list[int]] = {}
    for entry in store.entries():
        rows = liked if entry.kind == "like" else pending
        rows.setdefault(question_key(entry.question), []).append(entry.id)
    promoted, left = [], []
    for key, ids in pending.items():
        item = by_question[key]
        if not item.answerable:
            left.append(item)
            continue
        run_cli("feedback", "promote", *map(str, ids), "--answer", item.answer, "--article", item.source, *where)
        promoted.append(item)
    for key, ids in liked.items() if with_liked else ():
        run_cli("feedback", "promote", *map(str, ids), *where)
    return promoted, [by_question[key] for key in liked] if with_liked else [], left


def table(title: str, rows: list[tuple], headers: tuple[str, ...]) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([f"== {title}", line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", help="keep the copy of the corpus, the index and the database here")
    parser.add_argument("--no-blind-sets", action="store_true", help="skip scoring eval/sets/'s blind sets")
    parser.add_argument("--with-liked", action="store_true", help="promote the liked answers too")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="qa-feedback-loop-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load = os.getloadavg()
    print(f"# eval/feedback_loop.py  {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, work folder {work}")
    try:
        shutil.copytree(PROJECT_ROOT / "corpus", work / "corpus", dirs_exist_ok=True)
        settings = Settings.from_env(corpus_dir=work / "corpus", index_dir=work / "index",
                                     feedback_db=work / "feedback.sqlite3")
        locations = ("--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir))
        items = load_day()
        today = [i for i in items if i.when == "today"]
        run_cli("build", *locations)
        before_engine = Engine.open(settings, build="never")
        before = {i.id: outcome(i, before_engine.ask(i.question, list(i.history))) for i in items}
        blind_before = {} if args.no_blind_sets else {
            name: score("before", qs, run_engine(before_engine, qs))
            for name, qs in ((n, load_questions(QUESTION_SETS / f"{n}.jsonl")) for n in BLIND_SETS)}

        # 1. the day
        counts = live_the_day(before_engine, FeedbackStore(settings.feedback_db), items)
        print(f"\n1. The day: {len(today)} questions asked {counts['asks']} times: {counts['refusals']} refused "
              f"(logged), {counts['likes']} answers liked, {counts['dislikes']} disliked.")
        # 2. the report
        print("\n2. The maintainer's report (python -m qa feedback):\n")
        print(run_cli("feedback", "--db", str(settings.feedback_db), *locations))
        # 3. promotion, 4. rebuild
        promoted, liked, left = promote_what_the_articles_answer(settings, items, args.with_liked)
        bank_lines = sum(len(p.read_text(encoding="utf-8").splitlines())
                         for p in (settings.corpus_dir / "questions").glob("*.jsonl"))
        print(f"3. Promoted {len(promoted)} unanswered or disliked questions with their sentences"
              + (f" and {len(liked)} liked ones" if args.with_liked else "")
              + f" (the bank now has {bank_lines} lines); left {len(left)} the articles do not answer.")
        rebuilt = time.perf_counter()
        build_output = run_cli("build", *locations)
        print(f"4. Rebuilt in {time.perf_counter() - rebuilt:.0f} s: "
              + " ".join(line.strip() for line in build_output.splitlines() if "example questions" in line))
        after_engine = Engine.open(settings, build="never")
        after = {i.id: outcome(i, after_engine.ask(i.question, list(i.history))) for i in items}

        # 5. what changed
        promoted_ids = {i.id for i in promoted}
        rest = "liked and promoted" if args.with_liked else "rest of the day, answerable"
        groups = [("promoted (unanswered or disliked)", [i for i in today if i.id in promoted_ids]),
                  (rest, [i for i in today if i.answerable and i.id not in promoted_ids]),
                  ("rest of the day, articles do not say", [i for i in today if not i.answerable]),
                  ("tomorrow, other words, answerable", [i for i in items if i.when == "tomorrow" and i.answerable]),
                  ("tomorrow, articles do not say", [i for i in items if i.when == "tomorrow" and not i.answerable])]
        rows = []
        for name, group in groups:
            def tally(outcomes):
                return "/".join(str(sum(outcomes[i.id] == kind for i in group)) for kind in ("right", "refused", "wrong"))
            rows.append((name, len(group), tally(before), tally(after)))
        print("\n5. Asked again after the rebuild (right/refused/wrong; refusing is right where the articles "
              "do not say):\n")
        print(table("questions", rows, ("group", "n", "before", "after")))
        print("\nEvery question whose outcome changed:")
        for item in items:
            if before[item.id] != after[item.id]:
                mark = "promoted" if item.id in promoted_ids else item.when
                print(f"  {item.id} [{mark}] {item.question!r}: {before[item.id]} -> {after[item.id]}")
        if blind_before:
            blind_rows = []
            for name in BLIND_SETS:
                qs = load_questions(QUESTION_SETS / f"{name}.jsonl")
                new = score("after", qs, run_engine(after_engine, qs))
                old = blind_before[name]
                blind_rows.append((name, len(qs), f"{old.answer_accuracy:.3f} -> {new.answer_accuracy:.3f}",
                                   f"{old.refused_answerable:.3f} -> {new.refused_answerable:.3f}",
                                   f"{old.refused_unanswerable:.3f} -> {new.refused_unanswerable:.3f}"))
            print()
            print(table("blind question sets, before -> after", blind_rows,
                        ("set", "n", "answers right", "wrongly refused", "unanswerable refused")))
        print(f"\n# {time.perf_counter() - started:.0f} s in all; load average at end "
              + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
