"""Refusal against a background in the corpus's own domain: measured on the calibration suite, leave one corpus out.

    QA_TUNED_DIR=/tmp/tuned python eval/experiments/refusal_domain.py --work /tmp/suite [--records FILE]

Refusal reads the answer's best sentence cosine as spreads above how well 600
general questions match the same article (qa/models/refusal.py). In a corpus of
one domain (every page medical) a question about a page the corpus does not hold
still matches a neighbouring page many spreads above general questions
(docs/QUALITY.md, "Why refusal transfers so little"). This script measures
backgrounds in the corpus's own domain, per article, each as [median, spread]
of the best match of:

- "others": other articles' sentences (at most 600, evenly spaced; none in a
  corpus of one article: the general background is used then);
- "headings": other articles' "title: section" lines, embedded as questions;
- "near_corpus_K": the K general background questions closest to the corpus's
  mean sentence vector (questions in the corpus's domain, about other subjects);
- "near_article_60": the 60 closest to the article's own mean sentence vector;

and two more signals of the question against article titles ("title": cosine
with the answer's article's title; "title_contrast": minus the best other
article's). Each is tried in the "plain" refusal regime beside or in place of
the shipped signals, refitted leave one corpus out exactly as
`python -m qa eval --suite --fit-refusal --refit-regimes plain` does
(qa/evaluation/calibration.py), and printed with the shipped signals' figures;
then the shipped signals fitted with the second web set (health-web-dev.jsonl)
as a fitting group. Last, how "may help" does under the shipped model.

The suite's indexes in --work are built first if missing (the same as the suite
command's); the records (about 2,500 questions, answered with refusal off) go to
--records and are reused when it exists. Writes nothing into the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from qa.evaluation import calibration, suite  # noqa: E402
from qa.evaluation.benchmark import OFF_TOPIC  # noqa: E402
from qa.evaluation.evaluate import PRODUCT_SETS, Outcome, load_questions, records  # noqa: E402
import qa.models.refusal as refusal_module  # noqa: E402
from qa.models.refusal import answer_everything, load_labels, load_model, relative_signals  # noqa: E402
from qa.settings import Settings  # noqa: E402

MAX_OTHERS = 600
NEAR = (30, 60, 120)
# appended to refusal's SIGNALS for the fits below; "title_domain": the title cosine in spreads above the
# general background questions' (or those near the corpus: `title_background` of with_candidates)
EXTRA = ("domain", "title", "title_contrast", "title_domain")


def _summary(values: np.ndarray) -> list[float]:
    low, median, high = np.percentile(values, [10, 50, 90])
    return [float(median), max(float(high - low) / 2.563, refusal_module.MIN_SPREAD)]


def backgrounds(engine, membership: str = "owner") -> tuple[dict[str, dict[str, list[float]]], dict[str, np.ndarray]]:
    """Per article, [median, spread] of each candidate background; and each article's title vector.

    `membership`: "owner", an article's sentences as the index files them (a sentence on several pages belongs
    to one: qa.indexing.features.sentence_owners, what refusal's statistics read); "chunks", every sentence
    of its passages (what a question's best sentence in that article is taken from)."""
    index, embedder = engine.index, engine._live.embedder
    answers = index.answer_vectors
    articles = list(index.article_sentences)
    sentences = dict(index.article_sentences)
    if membership == "chunks":
        held: dict[str, set[int]] = {a: set() for a in articles}
        for chunk, ids in zip(index.chunks, index.chunk_sentence_ids):
            held.setdefault(chunk.source, set()).update(ids)
        sentences = {a: np.array(sorted(ids), dtype=np.int64) for a, ids in held.items()}
    general = np.load(index.directory / "background_vectors.npy")
    titles = {c.source: c.title.strip() for c in reversed(index.chunks)}
    headings = {a: sorted({f"{c.title.strip()}: {c.section.strip()}" for c in index.chunks if c.source == a})
                for a in articles}
    texts = sorted({t for lines in headings.values() for t in lines} | set(titles.values()))
    vectors = dict(zip(texts, np.asarray(embedder.encode(texts))))
    centre = answers.mean(axis=0)
    near_corpus = {k: np.argsort(-(general @ (centre / np.linalg.norm(centre))))[:k] for k in NEAR}
    stats = {}
    for article in articles:
        mine = answers[sentences[article]]
        best_general = (general @ mine.T).max(axis=1)
        own = mine.mean(axis=0)
        entry = {f"near_corpus_{k}": _summary(best_general[rows]) for k, rows in near_corpus.items()}
        entry["near_article_60"] = _summary(best_general[np.argsort(-(general @ (own / np.linalg.norm(own))))[:60]])
        others = [sentences[b] for b in articles if b != article]
        if others:
            rows = np.concatenate(others)
            rows = rows[np.linspace(0, len(rows) - 1, min(MAX_OTHERS, len(rows))).astype(int)]
            entry["others"] = _summary((answers[rows] @ mine.T).max(axis=1))
            lines = [vectors[t] for b in articles if b != article for t in headings[b]]
            if len(lines) >= 3:
                entry["headings"] = _summary((np.array(lines) @ mine.T).max(axis=1))
        title = vectors[titles[article]]
        entry["title_general"] = _summary(general @ title)
        entry["title_near_corpus_60"] = _summary(general[near_corpus[60]] @ title)
        stats[article] = entry
    return stats, {a: vectors[t] for a, t in titles.items()}


def ask(engine, questions, stats, titles) -> tuple[list[dict], list[dict | None]]:
    """The records of an answer-everything run (qa.evaluation.evaluate.records) and each question's candidates."""
    outcomes, extras = [], []
    for q in questions:
        r = engine.ask(q.question, list(q.history))
        c = r.confidence
        label = r.answer_source.match if r.found and r.answer_source is not None else None
        outcomes.append(Outcome([(p.source, p.text) for p in r.passages], r.answer, r.found, label,
                                r.margin if c is not None else None, c.regime if c is not None else None,
                                r.answer_score,
                                tuple(relative_signals(c, engine.index.background)) if c is not None else None))
        if c is None:
            extras.append(None)
            continue
        vector = engine._live.embedder.encode_one(q.question)
        title = float(vector @ titles[c.article])
        others = [float(vector @ v) for a, v in titles.items() if a != c.article]
        extras.append({"sentence": c.sentence, "title": title,
                       "title_contrast": title - max(others) if others else 0.0,
                       "backgrounds": stats[c.article],
                       "general": engine.index.background[c.article]["sentence"]})
    return records(questions, outcomes), extras


def collect(settings: Settings, work: Path, membership: str = "owner") -> dict:
    everything = answer_everything(settings.model)
    groups, extras = {}, {}

    def run(engine, questions, group):
        stats, titles = backgrounds(engine, membership)
        groups[group], extras[group] = ask(engine, questions, stats, titles)

    product = suite.open_suite_setup(None, "product", settings, work, everything)
    for name, path in PRODUCT_SETS.items():
        run(product, load_questions(path), f"product/{name}")
    for corpus in suite.load_corpora(suite.CORPORA + ("webdev",)):
        for setup in suite.SETUPS:
            engine = suite.open_suite_setup(corpus, setup, settings, work, everything)
            run(engine, list(corpus.questions), f"{corpus.name}/{setup}")
            if setup == "grown" and corpus.name != "webdev":
                for name, path in PRODUCT_SETS.items():
                    run(engine, load_questions(path), f"{corpus.name}/{setup}/{name}")
    plain = suite.open_plain_seed(settings, work, everything)
    run(plain, load_questions(PRODUCT_SETS[calibration.TUNE_SET]), f"plain/{calibration.TUNE_SET}")
    return {"groups": groups, "extras": extras}


def with_candidates(data: dict, background: str, title_background: str = "title_general") -> dict[str, list[dict]]:
    """The records with the candidate signals appended: "domain" read against `background`."""
    out = {}
    for group, rows in data["groups"].items():
        out[group] = []
        for r, e in zip(rows, data["extras"][group]):
            r = dict(r)
            if r["signals"] is not None and e is not None:
                median, spread = e["backgrounds"].get(background, e["general"])
                title_median, title_spread = e["backgrounds"][title_background]
                r["signals"] = list(r["signals"]) + [(e["sentence"] - median) / spread, e["title"],
                                                     e["title_contrast"], (e["title"] - title_median) / title_spread]
            out[group].append(r)
    return out


def leave_one_out(groups, settings, plain_signals, fitted_extra=()) -> dict[str, dict]:
    """The suite's corpora, each under refusal (plain regime refitted on `plain_signals`) and label bars fitted
    without it; `fitted_extra`: check-only corpora fitted on all the same."""
    shipped = load_model(settings.refusal_model_file, settings.model)
    bars = load_labels(settings.labels_file, shipped)
    saved = refusal_module.SIGNALS, dict(refusal_module.REGIME_SIGNALS), suite.CHECK_ONLY
    refusal_module.SIGNALS = saved[0] + EXTRA
    refusal_module.REGIME_SIGNALS["plain"] = tuple(plain_signals)
    suite.CHECK_ONLY = tuple(c for c in saved[2] if c not in fitted_extra)  # read by suite.fitting_groups
    try:
        return calibration.leave_one_out(
            groups, settings.model, settings.refusal_wrongly_refused, settings.strong_match_precision,
            settings.may_help_off_topic, corpora=suite.CORPORA + ("webdev",), keep=shipped,
            keep_regimes=("examples",), keep_bars=bars)
    finally:
        refusal_module.SIGNALS, suite.CHECK_ONLY = saved[0], saved[2]
        refusal_module.REGIME_SIGNALS.clear()
        refusal_module.REGIME_SIGNALS.update(saved[1])


def _label(labels, name):
    v = labels.get(name)
    return f"{v['share']:.2f}/{v['precision']:.2f}" if v else "0/-"


def print_variant(title: str, report: dict[str, dict]) -> None:
    print(f"\n{title}")
    print(f"{'group':<15}{'answers':>8}{'wrongly':>8}{'off-top.':>9}{'strong':>11}{'may help':>10}")
    for group, f in sorted(report.items()):
        print(f"{group:<15}{f['answer accuracy']:>8.3f}{f['wrongly refused']:>8.3f}{f['off-topic refused']:>9.3f}"
              f"{_label(f['labels'], 'strong match'):>11}{_label(f['labels'], 'may help'):>10}")
    off = min(f["off-topic refused"] for f in report.values())
    wrong = max(f["wrongly refused"] for f in report.values())
    strong = [f["labels"]["strong match"]["precision"] for f in report.values() if "strong match" in f["labels"]]
    print(f"worst: off-topic refused {off:.3f}; wrongly refused {wrong:.3f}; "
          f"strong precision {min(strong) if strong else float('nan'):.2f}")


def distributions(data: dict) -> None:
    print("\nsignal per corpus, 10th / 50th / 90th percentile: answerable | off-topic (fresh setups; plain/dev: its"
          " unanswerable)")
    names = ["general", "others", "headings", "near_corpus_60", "near_article_60"]
    for group in ("squad/fresh", "medquad/fresh", "web/fresh", "webdev/fresh", "plain/dev"):
        for background in names:
            cells = []
            for answerable in (True, False):
                values = []
                for r, e in zip(data["groups"][group], data["extras"][group]):
                    if e is None or r["answerable"] != answerable:
                        continue
                    if not answerable and group.count("/") == 1 and not group.startswith("plain") \
                            and r["kind"] != OFF_TOPIC:
                        continue
                    median, spread = e["general"] if background == "general" else \
                        e["backgrounds"].get(background, e["general"])
                    values.append((e["sentence"] - median) / spread)
                cells.append("/".join(f"{v:.1f}" for v in np.percentile(values, [10, 50, 90])))
            print(f"{group:<15}{background:<17}{cells[0]:>16} | {cells[1]}")
        for background in ("title", "title_general", "title_near_corpus_60"):
            cells = []
            for answerable in (True, False):
                values = []
                for r, e in zip(data["groups"][group], data["extras"][group]):
                    if e is None or r["answerable"] != answerable or (
                            not answerable and group.count("/") == 1 and not group.startswith("plain")
                            and r["kind"] != OFF_TOPIC):
                        continue
                    median, spread = (0.0, 1.0) if background == "title" else e["backgrounds"][background]
                    values.append((e["title"] - median) / spread)
                cells.append("/".join(f"{v:.2f}" for v in np.percentile(values, [10, 50, 90])))
            print(f"{group:<15}{background:<17}{cells[0]:>16} | {cells[1]}")


def may_help(data: dict, settings: Settings) -> None:
    shipped = load_model(settings.refusal_model_file, settings.model)
    bars = load_labels(settings.labels_file, shipped)
    print("\n'may help' under the shipped model: refused answerable (first passage relevant) | may help offered"
          " (to answerable; first passage relevant) | off-topic offered")
    for group in ("squad/fresh", "squad/grown", "medquad/fresh", "medquad/grown", "web/fresh", "web/grown",
                  "webdev/fresh", "webdev/grown", "product/dev", "product/sealed"):
        rows = calibration.under(data["groups"][group], shipped)
        refused = [r for r in rows if r["answerable"] and not r["found"]]
        offered = [r for r in rows if not r["found"] and r["margin"] is not None
                   and r["margin"] >= bars.may_help[r["regime"]]]
        print(f"{group:<15}{len(refused):>3} ({sum(r['first_relevant'] for r in refused)}) | {len(offered):>2} "
              f"({sum(r['answerable'] for r in offered)}; {sum(r['first_relevant'] for r in offered)}) | "
              f"{sum(r['kind'] == OFF_TOPIC for r in offered)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", required=True, help="the suite's work folder (indexes built there if missing)")
    parser.add_argument("--records", help="where the answer-everything records are kept (reused when there)")
    parser.add_argument("--membership", choices=("owner", "chunks"), default="owner",
                        help="an article's sentences: as the index files them (default), or all of its passages'")
    args = parser.parse_args()
    settings = Settings.from_env()
    work = Path(args.work)
    cache = Path(args.records) if args.records else work / "refusal-domain-records.json"
    if cache.exists():
        data = json.loads(cache.read_text(encoding="utf-8"))
    else:
        data = collect(settings, work, args.membership)
        cache.write_text(json.dumps(data), encoding="utf-8")
    distributions(data)
    shipped_signals = refusal_module.REGIME_SIGNALS["plain"]
    print_variant(f"shipped signals {shipped_signals}, refitted leave one corpus out",
                  leave_one_out(with_candidates(data, "others"), settings, shipped_signals))
    for background in ("others", "headings", "near_corpus_30", "near_corpus_60", "near_corpus_120",
                       "near_article_60"):
        groups = with_candidates(data, background)
        for signals in (("domain",), ("domain", "coverage", "contrast"), ("sentence", "domain", "coverage", "contrast")):
            print_variant(f"domain = against '{background}', plain regime {signals}",
                          leave_one_out(groups, settings, signals))
    groups = with_candidates(data, "others")
    for signals in (("sentence", "coverage", "contrast", "title_contrast"), ("sentence", "coverage", "title")):
        print_variant(f"plain regime {signals}", leave_one_out(groups, settings, signals))
    for title_background in ("title_general", "title_near_corpus_60"):
        titled = with_candidates(data, "others", title_background)
        for signals in (("sentence", "coverage", "contrast", "title_domain"), ("sentence", "contrast", "title_domain"),
                        ("title_domain",)):
            print_variant(f"plain regime {signals}, title against '{title_background}'",
                          leave_one_out(titled, settings, signals))
    print_variant(f"shipped signals, the second web set (webdev) fitted on too",
                  leave_one_out(groups, settings, shipped_signals, fitted_extra=("webdev",)))
    print_variant("shipped signals and unknown, webdev fitted on too",
                  leave_one_out(groups, settings, shipped_signals + ("unknown",), fitted_extra=("webdev",)))
    may_help(data, settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
