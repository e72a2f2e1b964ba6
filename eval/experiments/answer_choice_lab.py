"""Answer choice, offline: every candidate sentence of every question with the features answer choice has.

Not part of the product. Asks each question of the suite's groups (the built indexes of `--work`, opened as
eval/experiments/suite_lab.py opens them) through the engine, and records, per question, every candidate
sentence answer choice weighed (qa/answering/answer.py; recorded by eval/experiments/answer_recorder.py), with:
- the parts of its score: the hand-weighted score before the token match ("base": cosine, idf overlap,
  answer type, penalties), its cosine, its passage's place, the token match ("match": weighted, computed for
  every candidate, not only the best `token_match_candidates`; "match_flat": the same without the focus on
  what the passage's subject does not name), whether the engine read it ("read"), the example questions' lift;
- what it adds to the question ("novelty"): its content words that are neither the question's nor its
  passage's subject's, the share of the question's asked-for words (those its subject does not name) it
  holds, and how much of it its token vectors restate: "restated" (the product's restatement,
  QuestionReading.restatements: the mean over the sentence's pieces of each one's best cosine with the
  question's or the subject's pieces), "new_pieces" (the share of its pieces whose best such cosine is under
  NEW_PIECE), "to_question" (the mean of each piece's best cosine with the question's pieces alone) and
  "pieces"; all 0 without token vectors (a stand-in model, an index built before it stored them);
- whether the judge counts it right (qa.evaluation.evaluate._right), and what the engine answered;
- the recorder's own fields besides (answer_recorder.candidates: "own_section", "token_match", "fitted",
  "lift", "final").

    PYTHONPATH=.:eval/experiments python eval/experiments/answer_choice_lab.py dump --work /tmp/suite --out /tmp/choice
    PYTHONPATH=.:eval/experiments python eval/experiments/answer_choice_lab.py score --out /tmp/choice

(QA_TUNED_DIR set as for the suite run that built `--work`; `--groups` names some of GROUPS, one pickle a group.)
The dump asks with the restatement penalty and the heading fit off (`restatement_penalty` and
`heading_fit_weight` 0): the recorded parts are the score without them, and `score` adds the restatement back
as a variant (eval/experiments/heading_lab.py replays the heading fit). So its "as shipped (dumped)" line and
each row's "found" and "answered_right" are those of the engine with both off, not of today's settings; the
dump prints, per group, how many answered questions' best "final" score (the engine's own, from the recorder)
is not the engine's answer sentence (0 expected).

`score` replays the choice offline with variants of the score (argmax per question; a question counts right
when the engine answered it, not refused, and the variant's choice is right) and fits a logistic sentence
scorer leave one corpus out (squad, medquad, webdev; the product sets are never fitted on). It reads the
groups of `--groups` from `--out` (default: every group of GROUPS; dump them first); with fewer than two of
those corpora among them, the scorer is fitted on the one there and scored on the product sets only. Offline
figures hold refusal fixed: a choice from another article can change refusal's decision, so a variant worth
keeping is measured again through the engine (suite_lab.py). eval/experiments/answer_span_lab.py and
heading_lab.py read this dump (heading_lab's with fields of its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from qa.evaluation.evaluate import _right
from qa.reading.text import content_terms
from qa.settings import Settings

from answer_recorder import AnswerRecorder, Record, candidates, lab_commands, load_group, save_group
from suite_lab import open_groups

GROUPS = ("squad/fresh", "squad/grown", "medquad/fresh", "medquad/grown", "webdev/fresh", "webdev/grown",
          "product/dev", "product/heldout", "product/fresh", "product/unseen", "product/sealed", "product/sealed2")
NEW_PIECE = 0.5  # a sentence piece whose best cosine with the question's or the subject's pieces is under this is new


def dump_settings() -> Settings:
    """The settings the dump asks with: the score's parts are recorded without the restatement penalty, which
    `score` adds back as a variant, and without the heading fit (eval/experiments/heading_lab.py replays it)."""
    return Settings.from_env().replace(restatement_penalty=0.0, heading_fit_weight=0.0)


def novelty(record: Record, candidate: dict) -> dict:
    """The candidate's token rows against the question's and its passage's subject's: "restated", "new_pieces",
    "pieces", "to_question" (the module's docstring); 0 without token vectors."""
    reading = record.reading
    values = {"restated": 0.0, "new_pieces": 0.0, "pieces": 0, "to_question": 0.0}
    if reading is None or len(reading.question.vectors) == 0:
        return values
    tokens = reading.index.tokens
    rows = tokens.sentence_rows(candidate["sid"])
    if len(rows) == 0:
        return values
    question, subject = reading.question.vectors, tokens.subject_rows(candidate["chunk"])
    said = np.concatenate([question, subject]) if len(subject) else question
    to_said = (rows @ said.T).max(axis=1)
    values.update(restated=reading.restatements(candidate["chunk"], [candidate["sid"]])[0],
                  new_pieces=float((to_said < NEW_PIECE).mean()), pieces=len(rows),
                  to_question=float((rows @ question.T).max(axis=1).mean()))
    return values


def token_matches(record: Record, candidate: dict) -> dict:
    """The candidate's token match, weighted as the engine weighs it, read whether or not the engine read it:
    "match" (focused on what its passage's subject does not name, as the engine reads it) and "match_flat"
    (`token_match_focus` 0); 0 without token vectors."""
    reading, settings = record.reading, record.settings
    if reading is None or settings.token_match_weight == 0:
        return {"match": 0.0, "match_flat": 0.0}
    focused, flat = (reading.token_matches(candidate["chunk"], [candidate["sid"]], power)[0]
                     for power in (settings.token_match_focus, 0.0))
    return {"match": settings.token_match_weight * focused, "match_flat": settings.token_match_weight * flat}


def ask(recorder: AnswerRecorder, engine, q,
        extra: Callable[[object, Record, list[dict]], None] | None = None) -> tuple[dict, bool]:
    """One question's row of the dump, and whether the engine's answer sentence is not its best final score.
    `extra(q, record, candidates)` adds a lab's own fields to the candidates (eval/experiments/heading_lab.py)."""
    result, record = recorder.ask(engine, q.question, q.history)
    rows = candidates(record)
    for candidate in rows:
        candidate.update(token_matches(record, candidate), **novelty(record, candidate))
        candidate["right"] = bool(q.answerable and _right(q, candidate["sentence"]))
    if extra is not None and record is not None:
        extra(q, record, rows)
    mismatched = bool(rows and result.found
                      and rows[int(np.argmax([c["final"] for c in rows]))]["sentence"] != result.answer_sentence)
    index = engine.index
    words = sorted(set(record.reading.question.words)) if record is not None and record.reading is not None else []
    return {"id": q.id, "question": q.question, "answerable": q.answerable, "kind": q.kind,
            "found": result.found, "answer": result.answer, "answer_sentence": result.answer_sentence,
            "answered_right": bool(q.answerable and result.found and result.answer and _right(q, result.answer)),
            "idf": {t: index.idf.get(t, index.max_idf) for t in content_terms(result.query)},
            "candidates": rows, "lifts": [c["lift"] for c in rows], "question_words": words}, mismatched


def dump(work: Path, out: Path, groups: list[str], settings: Settings | None = None,
         extra: Callable[[object, Record, list[dict]], None] | None = None,
         opened: Callable[[object], None] | None = None) -> None:
    """Each group's rows (`ask`) pickled in `out`, one group at a time. `opened(engine)`: called with each
    group's engine before its questions are asked."""
    settings = settings or dump_settings()
    out.mkdir(parents=True, exist_ok=True)
    with AnswerRecorder() as recorder:
        for group in groups:
            engine, questions, _ = open_groups(settings, work, [group])[group]
            engine.settings = settings
            engine.forget()
            if opened is not None:
                opened(engine)
            rows, mismatched = [], 0
            for q in questions:
                row, off = ask(recorder, engine, q, extra)
                rows.append(row)
                mismatched += off
            save_group(out, group, rows, mismatched)


def as_shipped(row: dict, candidate: dict, lift: float) -> float:
    """The engine's score of a candidate as it was dumped: the token match only where it was read."""
    return candidate["base"] + (candidate["match"] if candidate["read"] else 0.0) + lift


def lexical(row: dict, candidate: dict) -> dict:
    """Novelty in words: the sentence's content words neither the question's nor its subject's, and the share
    (idf-weighted) of the question's asked-for words (not in its subject) the sentence holds."""
    said, asked_all = set(content_terms(candidate["sentence"])), set(row["idf"])
    subject = set(content_terms(candidate["title"] + " " + candidate["section"]))
    asked = asked_all - subject
    total = sum(row["idf"][t] for t in asked)
    return {"lex_new_share": len(said - asked_all - subject) / len(said) if said else 0.0,
            "asked_cov": sum(row["idf"][t] for t in asked if t in said) / total if total else 0.0}


def accuracy(data: dict, choose, groups) -> dict:
    """group -> answers right when each answered question's answer is the candidate `choose` scores best."""
    return accuracy_by_row(data, lambda r, lifts: [choose(r, c, l) for c, l in zip(r["candidates"], lifts)],
                           groups)


def accuracy_by_row(data: dict, scores, groups) -> dict:
    """group -> answers right when each answered question's answer is its best candidate by `scores(row, lifts)`
    (one score a candidate, for scores that read a row's candidates together)."""
    result = {}
    for group in groups:
        rows = [r for r in data[group] if r["answerable"]]
        right = 0
        for r in rows:
            candidates = r["candidates"]
            if not r["found"] or not candidates:
                continue
            lifts = r.get("lifts") or [0.0] * len(candidates)
            right += candidates[int(np.argmax(scores(r, lifts)))]["right"]
        result[group] = right / len(rows)
    return result


FEATURES = ("cosine", "nudges", "match", "position", "restated", "new_pieces", "to_question", "lex_new_share",
            "asked_cov")
FITTED = {"squad": ("squad/fresh", "squad/grown"), "medquad": ("medquad/fresh", "medquad/grown"),
          "webdev": ("webdev/fresh", "webdev/grown")}


def features(row: dict, c: dict, lift: float, names) -> np.ndarray:
    values = {"cosine": c["cosine"], "nudges": c["base"] - c["cosine"], "match": c["match"],
              "position": c["position"], "restated": c["restated"], "new_pieces": c["new_pieces"],
              "to_question": c["to_question"], **lexical(row, c)}
    return np.array([values[n] for n in names])


def fit_choice(data: dict, groups, names, l2: float) -> np.ndarray:
    """A conditional logit (softmax over each question's candidates, the right ones the target) on the answered
    questions of `groups`; the example lift is an offset weighted as the cosine. Returns the weights."""
    from scipy.optimize import minimize
    lists = []
    for group in groups:
        for r in data[group]:
            c = r["candidates"]
            if r["answerable"] and r["found"] and c and 0 < sum(x["right"] for x in c) < len(c):
                lifts = r.get("lifts") or [0.0] * len(c)
                lists.append((np.array([features(r, x, 0.0, names) for x in c]), np.array(lifts),
                              np.array([x["right"] for x in c], float)))

    def loss(w):
        total, grad = l2 * w @ w, 2 * l2 * w
        for X, lifts, y in lists:
            s = X @ w + w[0] * lifts
            p = np.exp(s - s.max())
            p /= p.sum()
            t = y / y.sum()
            total -= t @ np.log(p + 1e-12)
            grad -= X.T @ (t - p)
            grad[0] -= lifts @ (t - p)
        return total, grad
    return minimize(loss, np.zeros(len(names)), jac=True, method="L-BFGS-B").x


def score(out: Path, groups=GROUPS) -> None:
    """The variants' answers right a group of `groups` (dumped in `out`). The logistic scorer is fitted leave one
    corpus out on the corpora of FITTED among `groups` (their groups dumped), and fitted on all of them for the
    product sets; with fewer than two such corpora there is nothing to leave out, and only the product sets get
    the scorer's figures."""
    data = {g: load_group(out, g) for g in groups}
    fitted = {k: tuple(g for g in v if g in data) for k, v in FITTED.items()}
    fitted = {k: v for k, v in fitted.items() if v}
    product = [g for g in groups if g.startswith("product")]

    def line(name, result):
        print(f"{name:<34}" + " ".join(f"{g} {v:.3f}" for g, v in result.items()), flush=True)
    line("as shipped (dumped)", accuracy(data, as_shipped, groups))
    line("the best candidate (ceiling)", accuracy(data, lambda r, c, l: c["right"], groups))
    read_all = lambda c, l: c["base"] + c["match"] + l  # noqa: E731 - the token match read on every candidate
    for weight in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3):
        line(f"restated x {weight}", accuracy(data, lambda r, c, l: read_all(c, l) - weight * c["restated"], groups))
    for weight in (0.1, 0.2, 0.3):
        line(f"new pieces x {weight}", accuracy(data, lambda r, c, l: read_all(c, l) + weight * c["new_pieces"], groups))
        line(f"new words x {weight}",
             accuracy(data, lambda r, c, l: read_all(c, l) + weight * lexical(r, c)["lex_new_share"], groups))
        line(f"asked-for words x {weight}",
             accuracy(data, lambda r, c, l: read_all(c, l) + weight * lexical(r, c)["asked_cov"], groups))
    if not fitted:
        print("no group of squad, medquad or webdev dumped: no logistic scorer fitted")
        return
    for names in (FEATURES[:4], FEATURES[:5], FEATURES):
        for l2 in (0.1, 1.0):
            result = {}
            if len(fitted) > 1:
                for left_out, held in fitted.items():
                    w = fit_choice(data, [g for k, v in fitted.items() if k != left_out for g in v], names, l2)
                    result.update(accuracy(data, lambda r, c, l: features(r, c, 0.0, names) @ w + w[0] * l, held))
            w = fit_choice(data, [g for v in fitted.values() for g in v], names, l2)
            result.update(accuracy(data, lambda r, c, l: features(r, c, 0.0, names) @ w + w[0] * l, product))
            line(f"logit {len(names)} features, l2 {l2}", result)
            print(f"    weights (fitted on {', '.join(fitted)})", dict(zip(names, np.round(w, 2))))


def main() -> None:
    parser, sub = lab_commands(__doc__.splitlines()[0], GROUPS)
    s = sub.add_parser("score")
    s.add_argument("--out", required=True)
    s.add_argument("--groups", default=",".join(GROUPS), help="the dumped groups to score (default: all of GROUPS)")
    args = parser.parse_args()
    if args.command == "dump":
        dump(Path(args.work), Path(args.out), args.groups.split(","))
    else:
        score(Path(args.out), args.groups.split(","))


if __name__ == "__main__":
    main()
