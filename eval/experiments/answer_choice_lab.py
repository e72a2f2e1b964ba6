"""Answer choice, offline: every candidate sentence of every question with the features answer choice has.

Not part of the product. Asks each question of the suite's groups (the built indexes of `--work`, opened as
eval/experiments/suite_lab.py opens them) through the engine as it is, and records, per question, every
candidate sentence answer choice weighed (qa/answering/answer.py), with:
- the parts of its score: the hand-weighted score before the token match ("base": cosine, idf overlap,
  answer type, penalties), its cosine, its passage's place, the token match (computed for every candidate,
  not only the best `token_match_candidates`), whether the engine read it, the example questions' lift;
- what it adds to the question ("novelty"): its content words that are neither the question's nor its
  passage's subject's, the share of the question's asked-for words (those its subject does not name) it
  holds, and how much of it its token vectors restate (each sentence piece's best cosine with the
  question's or the subject's pieces);
- whether the judge counts it right (qa.evaluation.evaluate._right), and what the engine answered.

    python eval/experiments/answer_choice_lab.py dump --work /tmp/suite --out /tmp/choice
    python eval/experiments/answer_choice_lab.py score --out /tmp/choice

`score` replays the choice offline with variants of the score (argmax per question; a question counts right
when the engine answered it, not refused, and the variant's choice is right) and fits a logistic sentence
scorer leave one corpus out (squad, medquad, webdev; the product sets are never fitted on). Offline figures
hold refusal fixed: a choice from another article can change refusal's decision, so a variant worth keeping
is measured again through the engine (suite_lab.py).
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

import qa.answering.answer as answer_module
from qa.evaluation.evaluate import _right
from qa.reading.text import content_terms
from qa.settings import Settings

from suite_lab import open_groups

GROUPS = ("squad/fresh", "squad/grown", "medquad/fresh", "medquad/grown", "webdev/fresh", "webdev/grown",
          "product/dev", "product/heldout", "product/fresh", "product/unseen", "product/sealed", "product/sealed2")

_calls: list[dict] = []
_original_match = answer_module._with_token_match
_original_lifts = answer_module.example_lifts


def _recording_match(index, hits, competing, settings, question):
    returned = _original_match(index, hits, competing, settings, question)
    rescored = returned[0]  # (the candidates rescored, the token match of those it read)
    record = {"candidates": []}
    _calls.append(record)
    every = _original_match(index, hits, competing, settings.replace(token_match_candidates=10 ** 6), question)[0]
    flat = _original_match(index, hits, competing,
                           settings.replace(token_match_candidates=10 ** 6, token_match_focus=0.0), question)[0]
    words_q = set(question.words) if question is not None else set()
    for c, r, e, f in zip(competing, rescored, every, flat):
        score, cosine, position, sentence_id, sentence = c
        chunk = index.chunks[hits[position].chunk]
        row = {"base": score, "cosine": cosine, "position": position, "sentence": sentence, "sid": sentence_id,
               "chunk": hits[position].chunk, "source": chunk.source, "title": chunk.title, "section": chunk.section,
               "read": r[0] != score, "match": e[0] - score, "match_flat": f[0] - score}
        if question is not None and index.tokens is not None and len(question.vectors):
            rows = index.tokens.sentence(sentence_id).astype(np.float32)
            subject = index.tokens.subject(hits[position].chunk).astype(np.float32)
            if len(rows):
                to_question = (rows @ question.vectors.T).max(axis=1)
                to_subject = (rows @ subject.T).max(axis=1) if len(subject) else np.zeros(len(rows))
                said = np.maximum(to_question, to_subject)
                row.update(restated=float(said.mean()), new_pieces=float((said < 0.5).mean()),
                           pieces=len(rows), to_question=float(to_question.mean()))
        rest = {"restated": 0.0, "new_pieces": 0.0, "pieces": 0, "to_question": 0.0}
        for k, v in rest.items():
            row.setdefault(k, v)
        record["candidates"].append(row)
    record["question_words"] = sorted(words_q)
    return returned


def _recording_lifts(*args, **kwargs):
    lifts = _original_lifts(*args, **kwargs)
    if _calls:
        _calls[-1]["lifts"] = list(lifts)
    return lifts


def dump(work: Path, out: Path, groups: list[str]) -> None:
    answer_module._with_token_match = _recording_match
    answer_module.example_lifts = _recording_lifts
    # The score's parts are recorded without the restatement penalty, which `score` adds back as a variant, and
    # without the heading fit (qa.answering.answer._with_heading_fit; eval/experiments/heading_lab.py replays it).
    settings = Settings.from_env().replace(restatement_penalty=0.0, heading_fit_weight=0.0)
    out.mkdir(parents=True, exist_ok=True)
    for group in groups:
        engine, questions, corpus = open_groups(settings, work, [group])[group]
        engine.settings = settings
        engine.forget()
        rows = []
        for q in questions:
            _calls.clear()
            result = engine.ask(q.question, list(q.history))
            record = _calls[-1] if _calls else {"candidates": [], "lifts": []}
            index = engine.index
            for cand in record["candidates"]:
                cand["right"] = bool(q.answerable and _right(q, cand["sentence"]))
            rows.append({"id": q.id, "question": q.question, "answerable": q.answerable, "kind": q.kind,
                         "found": result.found, "answer": result.answer,
                         "answered_right": bool(q.answerable and result.found and result.answer
                                                and _right(q, result.answer)),
                         "idf": {t: index.idf.get(t, index.max_idf) for t in content_terms(result.query)},
                         **record})
        with open(out / (group.replace("/", "_") + ".pkl"), "wb") as f:
            pickle.dump(rows, f)
        right = sum(r["answered_right"] for r in rows)
        answerable = sum(r["answerable"] for r in rows)
        print(f"{group}: {right}/{answerable} right", flush=True)


def load(out: Path, group: str) -> list[dict]:
    with open(out / (group.replace("/", "_") + ".pkl"), "rb") as f:
        return pickle.load(f)


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


def score(out: Path) -> None:
    data = {g: load(out, g) for g in GROUPS}

    def line(name, result):
        print(f"{name:<34}" + " ".join(f"{g} {v:.3f}" for g, v in result.items()), flush=True)
    line("as shipped (dumped)", accuracy(data, as_shipped, GROUPS))
    line("the best candidate (ceiling)", accuracy(data, lambda r, c, l: c["right"], GROUPS))
    read_all = lambda c, l: c["base"] + c["match"] + l  # noqa: E731 - the token match read on every candidate
    for weight in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3):
        line(f"restated x {weight}", accuracy(data, lambda r, c, l: read_all(c, l) - weight * c["restated"], GROUPS))
    for weight in (0.1, 0.2, 0.3):
        line(f"new pieces x {weight}", accuracy(data, lambda r, c, l: read_all(c, l) + weight * c["new_pieces"], GROUPS))
        line(f"new words x {weight}",
             accuracy(data, lambda r, c, l: read_all(c, l) + weight * lexical(r, c)["lex_new_share"], GROUPS))
        line(f"asked-for words x {weight}",
             accuracy(data, lambda r, c, l: read_all(c, l) + weight * lexical(r, c)["asked_cov"], GROUPS))
    for names in (FEATURES[:4], FEATURES[:5], FEATURES):
        for l2 in (0.1, 1.0):
            result = {}
            for left_out, groups in FITTED.items():
                w = fit_choice(data, [g for k, v in FITTED.items() if k != left_out for g in v], names, l2)
                result.update(accuracy(data, lambda r, c, l: features(r, c, 0.0, names) @ w + w[0] * l, groups))
            w = fit_choice(data, [g for v in FITTED.values() for g in v], names, l2)
            result.update(accuracy(data, lambda r, c, l: features(r, c, 0.0, names) @ w + w[0] * l,
                                   [g for g in GROUPS if g.startswith("product")]))
            line(f"logit {len(names)} features, l2 {l2}", result)
            print("    weights (fitted on all three)", dict(zip(names, np.round(w, 2))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--work", required=True)
    d.add_argument("--out", required=True)
    d.add_argument("--groups", default=",".join(GROUPS))
    sub.add_parser("score").add_argument("--out", required=True)
    args = parser.parse_args()
    if args.command == "dump":
        dump(Path(args.work), Path(args.out), args.groups.split(","))
    else:
        score(Path(args.out))


if __name__ == "__main__":
    main()
