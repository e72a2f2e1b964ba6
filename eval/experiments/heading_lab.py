"""Does the section heading's fit to the question pick the right section? Offline, on answer choice's candidates.

Not part of the product. The largest class of wrong answers on the web pages and MedQuAD is "another section
of the same article" (answer_span_lab.py classify; docs/QUALITY.md): a Background sentence restating the
study wins over the Results sentence; under MedQuAD's "What are the symptoms of X?" a sentence of another
section wins. This dumps every candidate as answer_choice_lab.py does, plus, per candidate, how well its own
section's heading (the sentence's section, `Chunk.section_of`: a passage of short sections holds several)
fits the question:
- "fit_stored": late interaction (qa/answering/token_match.py, the question's idf weights) of the question
  with the stored token vectors of its passage's subject (title and the passage's first section): what an
  index built today holds;
- "fit_own": the same with the subject of the sentence's own section (title and its own heading), embedded
  here by the index's model;
- "fit_heading": with its own heading alone (the title left out; equal to the title: no heading);
- "cos_heading": the pooled cosine of the typed question with its own heading alone.

    python eval/experiments/heading_lab.py dump --work /tmp/suite --out /tmp/heading
    python eval/experiments/heading_lab.py score --out /tmp/heading

`score` replays the choice (as answer_choice_lab.py does: the token match read on every candidate, the
restatement penalty added back, refusal held as the engine decided) with a bonus of weight w on a heading
lead: the candidate's section's fit relative to the other sections of its article among the candidates, so a
page whose sections all read alike (SQuAD's Wikipedia paragraphs under their title) is not moved; "plain"
variants touch only articles without example questions. The dump is made with the engine's own heading fit
off (`heading_fit_weight` 0, and the restatement penalty 0 as answer_choice_lab.py dumps), so the replay
starts from the choice without it. What shipped is "plain fit_stored gap" (qa.answering.answer._with_heading_fit);
offline figures hold refusal fixed, so a variant is measured again through the engine (suite_lab.py
--set heading_fit_weight=...). docs/QUALITY.md, "Heading fit".
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

import answer_choice_lab as lab
from answer_recorder import lab_commands
from qa.answering.token_match import late_interaction, stored
from qa.indexing.features import subject_of
from qa.settings import Settings

_embedder = {"live": None}
_tokens: dict[str, object] = {}
_pooled: dict[str, np.ndarray] = {}


def _token_vectors(text: str):
    if text not in _tokens:
        _tokens[text] = _embedder["live"].token_vectors([text])[0]
    return _tokens[text]


def _vector(text: str) -> np.ndarray:
    if text not in _pooled:
        _pooled[text] = _embedder["live"].encode_one(text)
    return _pooled[text]


def _heading_fields(q, record, rows: list[dict]) -> None:
    """The heading fits of each candidate (the module's docstring), added to answer_choice_lab's fields."""
    reading, index = record.reading, record.index
    if reading is None:
        return
    question = reading.question
    weights = reading.weights  # the question pieces' idf weights (token_match.question_weights)
    typed = _vector(q.question)
    for row in rows:
        chunk = index.chunks[row["chunk"]]
        own = chunk.section_of(row["sentence"])
        row["own_section"] = own
        row["has_examples"] = chunk.source in index.articles_with_examples
        row["fit_stored"] = late_interaction(question, weights, stored(index.tokens.subject_rows(row["chunk"])))
        row["fit_own"] = late_interaction(question, weights,
                                          stored(_token_vectors(subject_of(chunk.title, own)).vectors))
        informative = bool(own) and own != chunk.title
        row["fit_heading"] = (late_interaction(question, weights, stored(_token_vectors(own).vectors))
                              if informative else None)
        row["cos_heading"] = float(_vector(own) @ typed) if informative else None


def _opened(engine) -> None:
    _embedder["live"] = engine._current().embedder


def dump(work: Path, out: Path, groups: list[str]) -> None:
    """answer_choice_lab.dump (its settings: the restatement penalty and the heading fit off), with the heading
    fits recorded per candidate."""
    lab.dump(work, out, groups, extra=_heading_fields, opened=_opened)


def _lead(row: dict, key: str, mode: str, plain_only: bool = False) -> list[float]:
    """Per candidate: its section's fit (`key`) against the other sections of its article among the candidates.
    "max": minus the best other section's (the heading lead of the strong-match label); "mean": minus the mean of
    all its article's sections' fits; "top": 1 for the best-fitting section of an article of several, else 0;
    "gap": minus the best of all its article's sections' (its own too), so never above 0: the best-fitting
    section is not raised against other articles, the others of its article are lowered.
    0 where the article has one section among the candidates or the fit is missing (no informative heading)."""
    fits: dict[str, dict[str, float]] = defaultdict(dict)
    for c in row["candidates"]:
        value = c.get(key)
        if value is not None:
            fits[c["source"]].setdefault(c["own_section"], value)
    out = []
    for c in row["candidates"]:
        article = fits.get(c["source"], {})
        value = c.get(key)
        if value is None or len(article) < 2 or (plain_only and c.get("has_examples")):
            out.append(0.0)
            continue
        others = [v for s, v in article.items() if s != c["own_section"]]
        if mode == "max":
            out.append(value - max(others))
        elif mode == "gap":
            out.append(min(0.0, value - max(others)))
        elif mode == "mean":
            out.append(value - float(np.mean(list(article.values()))))
        else:
            out.append(1.0 if value > max(others) else 0.0)
    return out


def accuracy(data: dict, groups, weight: float, key: str | None, mode: str, penalty: float,
             clip: float | None = None, plain_only: bool = False) -> dict:
    def scores(r: dict, lifts: list[float]) -> list[float]:
        candidates = r["candidates"]
        leads = _lead(r, key, mode, plain_only) if key else [0.0] * len(candidates)
        if clip is not None:
            leads = [min(max(v, -clip), clip) for v in leads]
        return [c["base"] + c["match"] + l - penalty * c["restated"] + weight * h
                for c, l, h in zip(candidates, lifts, leads)]

    return lab.accuracy_by_row(data, scores, groups)


def score(out: Path, groups) -> None:
    data = {g: lab.load_group(out, g) for g in groups}
    penalty = Settings().restatement_penalty

    def line(name, result):
        print(f"{name:<30}" + " ".join(f"{g.replace('product/', '')} {v:.3f}" for g, v in result.items()), flush=True)
    line("as shipped (replayed)", accuracy(data, groups, 0.0, None, "max", penalty))
    line("ceiling", lab.accuracy(data, lambda r, c, l: c["right"], groups))
    for plain_only in (False, True):
        for key in ("fit_stored", "fit_own", "fit_heading", "cos_heading"):
            for mode in ("max", "gap", "mean"):
                for weight in (0.25, 0.5, 1.0, 2.0):
                    line(f"{'plain ' if plain_only else ''}{key} {mode} x {weight}",
                         accuracy(data, groups, weight, key, mode, penalty, plain_only=plain_only))


def main() -> None:
    parser, sub = lab_commands(__doc__.splitlines()[0], lab.GROUPS)
    s = sub.add_parser("score")
    s.add_argument("--out", required=True)
    s.add_argument("--groups", default=",".join(lab.GROUPS))
    args = parser.parse_args()
    if args.command == "dump":
        dump(Path(args.work), Path(args.out), args.groups.split(","))
    else:
        score(Path(args.out), args.groups.split(","))


if __name__ == "__main__":
    main()
