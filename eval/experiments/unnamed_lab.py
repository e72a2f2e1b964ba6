"""Workbench for an "unknown specific name" refusal signal: what is missing from the answer's article, not how much.

Not part of the product. Reads the records of a fitting run (`python -m qa eval --suite --fit-refusal --work DIR`
writes DIR/fitting-records.json; each record carries its question and the answer's article), opens the suite's
built indexes in DIR, and computes for every answered question the words of the question that the answer's article
never uses, each with its salience (rarity in general English, qa/answering/subject.py), whether a word of the
article is within a small edit distance (a misspelling, a variant spelling) and its best token-vector cosine with the
article's passages. Then it prints the distributions per corpus and kind, and refits the plain regime with candidate
signals built from them, leave one corpus out (qa/evaluation/calibration.py), as eval/experiments/subject_lab.py does:

    PYTHONPATH=. python eval/experiments/unnamed_lab.py --work DIR --dump words.json --explore
    PYTHONPATH=. python eval/experiments/unnamed_lab.py --work DIR --dump words.json --prefix 0.5 \
        --variant 0.5,1,lex,max,u0.25,g0.05      # min salience, edit distance, lex|cos, max|share|sum, [u<contrast
                                                 # scale>] [g<gate budget>: a gate instead of a weight] [corpus]

The product's rule (qa/answering/subject.py, `unnamed`) is the variant 0.5,1,lex,max,u0.25 with --prefix 0.5.

Refusal decides only whether the chosen sentence is given, so the figures are the engine's.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from qa.answering.subject import article_terms, salience
from qa.evaluation import calibration
from qa.models import refusal
from qa.models.refusal import load_labels, load_model
from qa.reading.text import STOPWORDS, _stemmer, words
from qa.settings import Settings


def edit_distance_at_most(a: str, b: str, limit: int) -> bool:
    if abs(len(a) - len(b)) > limit:
        return False
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
        if min(current) > limit:
            return False
        previous = current
    return previous[-1] <= limit


def index_of(group: str) -> str:
    parts = group.split("/")
    return "product" if parts[0] == "product" else "plain" if parts[0] == "plain" else f"{parts[0]}/{parts[1]}"


def open_engine(name: str, settings: Settings, work: Path):
    from qa.evaluation import suite

    say = lambda *_: None  # noqa: E731
    if name == "product":
        return suite.open_suite_setup(None, "product", settings, work, None, say)
    if name == "plain":
        return suite.open_plain_seed(settings, work, None, say)
    corpus, setup = name.split("/")
    made = suite.load_corpora(["webdev" if corpus == "web" else corpus])[0]
    return suite.open_suite_setup(made, setup, settings, work, None, say)


def word_details(engine, question: str, article: str, settings: Settings, cache: dict) -> list[dict]:
    index = engine.index
    if article not in cache:
        chunks = [i for i, c in enumerate(index.chunks) if c.source == article]
        raw = {w for i in chunks for w in words(index.chunks[i].index_text) if w.isalpha()}
        rows = []
        if index.tokens is not None:
            rows = [index.tokens.subject(c) for c in chunks] + [index.tokens.sentence(s) for c in chunks
                                                                for s in index.chunk_sentence_ids[c]]
        cache[article] = (article_terms(index.chunks, article), raw,
                          np.concatenate(rows).astype(np.float32) if rows else None)
    held, raw, rows = cache[article]
    live = engine._current()
    _, tokens = engine._embed(live.embedder, [question], question)
    out = []
    by_word: dict[str, np.ndarray] = {}
    if tokens is not None:
        for row, w in enumerate(tokens.words):
            by_word.setdefault(w, []).append(row)
    kept = [w.split("'")[0] for w in words(question) if w not in STOPWORDS]
    kept = [w for w in kept if len(w) > 1 and w not in STOPWORDS]
    for w, stem in zip(kept, _stemmer().stemWords(kept)):
        cos = None
        if tokens is not None and rows is not None and w in by_word:
            cos = float((tokens.vectors[by_word[w]] @ rows.T).max())
        near = None
        if stem not in held:
            near = min((d for d in (1, 2) if any(edit_distance_at_most(w, x, d) for x in raw
                                                 if abs(len(x) - len(w)) <= d and x[:1] == w[:1])), default=9)
        prefix, abbreviates = 0, False
        if stem not in held:
            for x in raw:
                k = 0
                for a, b in zip(w, x):
                    if a != b:
                        break
                    k += 1
                prefix = max(prefix, k)
                abbreviates = abbreviates or (len(w) >= 3 and x.startswith(w) and x != w)
        out.append({"word": w, "stem": stem, "held": stem in held, "prefix": prefix, "abbreviates": abbreviates, "corpus": stem in index.vocabulary,
                    "salience": salience(w, settings.subject_common_rank), "near": near, "cos": cos,
                    "digit": any(ch.isdigit() for ch in w)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--dump", help="write the per-word details here (and read them when it exists)")
    parser.add_argument("--corpora", default="squad,medquad,webdev")
    parser.add_argument("--explore", action="store_true", help="print the candidates' distributions")
    parser.add_argument("--variant", action="append", default=[],
                        help="min_salience,near_limit,cos|lex,share|max|sum[,corpus]: refit with it as 'unnamed'")
    parser.add_argument("--signals", default="sentence,coverage,contrast,unnamed", help="the plain regime's")
    parser.add_argument("--prefix", type=float, default=0.0)
    args = parser.parse_args()
    global PREFIX
    PREFIX = args.prefix
    settings = Settings()
    work = Path(args.work)
    groups = json.loads((work / "fitting-records.json").read_text(encoding="utf-8"))
    dump = Path(args.dump) if args.dump else None
    if dump and dump.exists():
        details = json.loads(dump.read_text(encoding="utf-8"))
    else:
        details = {}
        by_index: dict[str, list[str]] = {}
        for group in groups:
            by_index.setdefault(index_of(group), []).append(group)
        for name, members in by_index.items():
            engine = open_engine(name, settings, work)
            cache: dict = {}
            for group in members:
                details[group] = [word_details(engine, r["question"], r["article"], settings, cache)
                                  if r.get("article") else None for r in groups[group]]
            print(f"{name}: done", flush=True)
        if dump:
            dump.write_text(json.dumps(details), encoding="utf-8")
    if args.explore:
        explore(groups, details, settings, args.corpora.split(","))
    for spec in args.variant:
        refit(groups, details, settings, args.corpora.split(","), spec, args.signals)


def unnamed_value(ws: list[dict] | None, min_salience: float, near_limit: int, cos_weight: bool,
                  how: str, corpus_only: bool = False) -> float:
    if not ws:
        return 0.0
    total = sum(w["salience"] for w in ws)
    values = []
    for w in ws:
        if w["held"] or w["digit"] or w["salience"] < min_salience:
            continue
        if corpus_only and w["corpus"]:
            continue
        if w["near"] is not None and w["near"] <= (near_limit if len(w["word"]) > 4 else min(near_limit, 1)):
            continue
        if PREFIX and (w.get("abbreviates") or w.get("prefix", 0) >= max(4, PREFIX * len(w["word"]))):
            continue
        gap = max(0.0, 1.0 - w["cos"]) if cos_weight and w["cos"] is not None else 1.0
        values.append(w["salience"] * gap)
    if not values:
        return 0.0
    if how == "max":
        return max(values) / math.log(22688 / settings_rank())
    if how == "share":
        return sum(values) / total if total else 0.0
    return sum(values)


def fmt(f) -> str:
    lab = f.get("labels", {})
    strong = lab.get("strong match")
    cell = lambda v: "-" if v != v else f"{v:.3f}"  # noqa: E731
    return (f"{cell(f['answer accuracy'])} / {cell(f['wrongly refused'])} / {cell(f['off-topic refused'])}"
            + (f"; strong {strong['share']:.2f}/{strong['precision']:.2f}" if strong else "; strong 0")
            + (f"; may help {lab['may help']['share']:.2f}" if "may help" in lab else ""))


def refit(groups, details, settings, corpora, spec, signals) -> None:
    parts = spec.split(",")
    ms, nl, how = float(parts[0]), int(parts[1]), parts[3]
    cw = parts[2] == "cos"
    corpus_only = "corpus" in parts[4:]
    unclear = next((float(p[1:]) for p in parts[4:] if p.startswith("u")), None)
    gate_share = next((float(p[1:]) for p in parts[4:] if p.startswith("g")), None)
    if "unnamed" not in refusal.SIGNALS:
        refusal.SIGNALS = refusal.SIGNALS + ("unnamed",)
    at = refusal.SIGNALS.index("unnamed")
    mine = {}
    for g, rows in groups.items():
        out = []
        for r, d in zip(rows, details[g]):
            r = dict(r)
            if r.get("signals") is not None:
                v = unnamed_value(d, ms, nl, cw, how, corpus_only)
                if unclear:
                    v *= float(np.clip(1 - r["signals"][refusal.SIGNALS.index("contrast")] / unclear, 0, 1))
                r["signals"] = list(r["signals"][:at]) + [v]
            out.append(r)
        mine[g] = out
    before = load_model(settings.refusal_model_file, settings.model)
    bars = load_labels(settings.labels_file, before)
    knobs = (settings.model, settings.refusal_wrongly_refused, settings.strong_match_precision,
             settings.may_help_off_topic)
    keeping = dict(keep=before, keep_regimes=("examples",), keep_bars=bars,
                   subject_at_most=settings.strong_match_subject)
    refusal.REGIME_SIGNALS["plain"] = tuple(signals.split(","))
    if gate_share is not None:
        return gated(mine, at, gate_share, settings, knobs, keeping, corpora, spec)
    loo = calibration.leave_one_out(mine, *knobs, corpora=corpora, **keeping)
    fitted = calibration.fit_both(mine, *knobs, **keeping)
    named = {"fit": fitted}
    corpora_report = calibration.report_under(mine, named, False, settings.strong_match_subject)["fit"]
    product = calibration.report_under(mine, named, True, settings.strong_match_subject)["fit"]
    print(f"\n### {spec} [{signals}]: fitted {fitted[0].regimes['plain']}")
    for g in sorted(loo):
        print(f"  {g:<16} loo {fmt(loo[g])}   | fit {fmt(corpora_report[g])}")
    worst = {}
    for g, f in product.items():
        print(f"  {g:<26} {fmt(f)}") if g.startswith("product/") or g.startswith("plain") else None


def fit_gate(fitting, at: int, share: float) -> float:
    """The lowest value of the signal at which no fitting group (of 20 answerable or more, plain regime) has more
    than `share` of its answerable questions at or above it."""
    bars = []
    for g, rows in fitting.items():
        values = np.sort([r["signals"][at] for r in rows if r["answerable"] and r.get("signals") is not None
                          and r["regime"] == "plain"])
        if len(values) >= 20:
            k = int(share * len(values))  # at most k of them may reach the gate
            bars.append(float(values[len(values) - 1 - k]) + 1e-9 if k < len(values) else 0.0)
    return max(bars) if bars else math.inf


def gate_rows(rows, t: float, at: int):
    out = []
    for r in rows:
        if r.get("signals") is not None and r["regime"] == "plain" and r["signals"][at] >= t:
            r = {**r, "found": False, "right": False, "margin": -math.inf}
        out.append(r)
    return out


def gated(mine, at, share, settings, knobs, keeping, corpora, spec) -> None:
    from qa.evaluation.suite import corpus_of, fitting_groups

    refusal.REGIME_SIGNALS["plain"] = ("sentence", "coverage", "contrast")
    print(f"\n### gate {spec}")
    for corpus in corpora:
        model, bars = calibration.fit_both(mine, *knobs, leave_out=corpus, **keeping)
        t = fit_gate(fitting_groups(mine, corpus), at, share)
        for g, rows in sorted(mine.items()):
            if corpus_of(g) == corpus and g.count("/") == 1:
                f = calibration.figures(gate_rows(calibration.under(rows, model), t, at), bars,
                                        settings.strong_match_subject)
                print(f"  {g:<16} loo gate {t:.3f}: {fmt(f)}")
    model, bars = calibration.fit_both(mine, *knobs, **keeping)
    t = fit_gate(fitting_groups(mine), at, share)
    for g, rows in sorted(mine.items()):
        if corpus_of(g) in corpora and g.count("/") == 1 or g.startswith(("product/", "plain/")):
            f = calibration.figures(gate_rows(calibration.under(rows, model), t, at), bars,
                                    settings.strong_match_subject)
            print(f"  {g:<16} fit gate {t:.3f}: {fmt(f)}")


PREFIX = 0.0  # a missing word sharing this share of its letters (at least 4) as a prefix with an article word is
# a variant of it ("nauseous", "nausea"), and so is a word that begins an article word ("ket", "ketamine")


def settings_rank() -> int:
    return Settings().subject_common_rank


def explore(groups, details, settings, corpora) -> None:
    variants = {}
    for ms in (0.0, 0.5, 1.0):
        for nl in (0, 1, 2):
            for cw in (False, True):
                for how in ("share", "max"):
                    variants[f"s{ms}/n{nl}/{'cos' if cw else 'lex'}/{how}"] = (ms, nl, cw, how)
    # distributions per corpus (fresh) and kind
    print("variant | " + " | ".join(f"{c} ans / off" for c in ("squad/fresh", "medquad/fresh", "webdev/fresh",
                                                                  "plain/dev")))
    for name, v in variants.items():
        cells = []
        for g in ("squad/fresh", "medquad/fresh", "webdev/fresh", "plain/dev"):
            rows, ds = groups[g], details[g]
            a = [unnamed_value(d, *v) for r, d in zip(rows, ds) if r["answerable"] and d is not None]
            o = [unnamed_value(d, *v) for r, d in zip(rows, ds) if not r["answerable"] and r["kind"] != "unanswerable"
                 and d is not None]
            q = lambda x: "/".join(f"{p:.2f}" for p in np.percentile(x, [50, 90])) if x else "-"  # noqa: E731
            cells.append(f"{q(a)} | {q(o)}")
        print(name, "|", " || ".join(cells))


if __name__ == "__main__":
    main()
