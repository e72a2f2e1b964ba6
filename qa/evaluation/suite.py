"""The calibration suite: corpora in different styles, each fresh and grown, engine and baselines in one run.

Owns `python -m qa eval --suite`. The engine is judged on corpora it was not
written for, because those are what a maintainer adds; one corpus tells
little (refusal fitted on SQuAD alone learned SQuAD's style: issue 24), so
the suite holds several, and the figure that counts is the worst corpus's.

Corpora (`CORPORA`), each built with the product's own build:

- "squad": Wikipedia, SQuAD 2.0's dev half (`../shared/benchmarks/squad2-dev-half.json`),
  its "report" half as qa/evaluation/benchmark.py splits it (refusal was fitted on the other half),
  two articles held out; crowd-written questions, the benchmark's unanswerable ones, and
  questions about the held-out articles (off-topic);
- "medquad": NIH consumer-health pages (`../shared/benchmarks/medquad/medquad-dev.json`):
  `MEDQUAD_PAGES` pages drawn with the seed, some held out; each page laid out as its site
  would (`medquad_page`: the focus as title, a heading per part, named from the part's
  qtype, never from the question), its own questions asked; a passage answers when it lies
  inside the gold part, the answer when it is a sentence of it (qa.evaluation.evaluate, `section`);
- "web": the three saved pages of `tests/fixtures/web/` (HTML as saved from a browser) with
  the blind set written for them, `eval/sets/health-web.jsonl` (a check set: nothing is
  fitted on it here). Its last eight unanswerable questions are off the pages' topics
  (`WEB_OFF_TOPIC`), the other twelve near them;
- "webdev" (only when asked for: `--corpora ...,webdev`): the same pages with a second blind
  set, `eval/sets/health-web-dev.jsonl`, written independently by another helper shown only the
  pages' text, laid out as the first (w073-w080 off the topics). Also a check set here: fitting
  refusal on it lowered the other corpora's off-topic refusal more than it helped the pages'
  (docs/QUALITY.md). It asks the web pages' own indexes (`SuiteCorpus.folder`).

Setups (`SETUPS`): "fresh", the corpus alone in a new folder with no example questions
(a maintainer's first folder), and "grown", the corpus added to the product's own five
articles and their example questions (a maintainer adding articles to the seed corpus).
"product", the seed corpus as it is, scores the six ketamine question sets; a grown setup
scores them too, to see that the added articles do not disturb them.

Every table has the engine and the baselines of qa.evaluation.evaluate (BM25 over the engine's
passages, dense search over fixed windows, their reciprocal-rank fusion), in the same run
on the same questions: MRR, answer accuracy, answerable questions wrongly refused, the
benchmark's unanswerable questions refused, off-topic questions refused, and per label of
the engine's answers ("strong match", "partial match") the share of questions given it and
how often an answer so labelled is right.

Sizes are kept small so the whole suite runs in minutes on 2 cores: `SQUAD_SIZES`,
`MEDQUAD_PAGES` and the sample sizes below, all drawn with one fixed seed, so two runs
ask the same questions. Built corpora and indexes are kept in `--work DIR` and reused by
later runs (an unchanged corpus rebuilds nothing); tuned models go to `tuned_dir`
(QA_TUNED_DIR), so the grown setups share one tuned copy.

Limits: samples of 60-80 answerable questions per corpus, so a share moves by about
0.015 per question; MedQuAD's questions are templated ("What are the symptoms of X ?"),
SQuAD's written with the paragraph in view: neither is how a worried person types.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from qa.evaluation.benchmark import (ANSWERABLE, OFF_TOPIC, UNANSWERABLE, load_benchmark, sample, split_halves,
                          write_corpus)
from qa.serving.engine import Engine
from qa.evaluation.evaluate import (PRODUCT_SETS, QUESTION_SETS, Question, Scores, _letters, load_questions, records,
                         run_baselines, run_engine, score)
from qa.models.question_bank import BANK_FOLDER
from qa.models.refusal import RefusalModel
from qa.settings import PROJECT_ROOT, Settings
from qa.models.tuning import tuned_root

SHARED = PROJECT_ROOT.parent / "shared"
SQUAD_FILE = SHARED / "benchmarks" / "squad2-dev-half.json"
MEDQUAD_FILE = SHARED / "benchmarks" / "medquad" / "medquad-dev.json"
WEB_PAGES = PROJECT_ROOT / "tests" / "fixtures" / "web"
WEB_QUESTIONS = QUESTION_SETS / "health-web.jsonl"
# health-web.jsonl's unanswerable questions h073-h080 are off the three pages' topics
# (boiled eggs, strep throat, the capital of Australia ...); h061-h072 are near them (eval/README.md).
WEB_OFF_TOPIC = frozenset(f"h{n:03d}" for n in range(73, 81))
WEB_DEV_QUESTIONS = QUESTION_SETS / "health-web-dev.jsonl"
WEB_DEV_OFF_TOPIC = frozenset(f"w{n:03d}" for n in range(73, 81))

CORPORA = ("squad", "medquad", "web")
# Corpora the suite can run beside CORPORA when asked for (--corpora).
EXTRA_CORPORA = ("webdev",)
# Corpora whose questions only check: neither refusal nor the label bars are ever fitted on them (`fitting_groups`;
# the web pages' set, eval/sets/health-web.jsonl, is a blind check set; eval/README.md). Reports still cover them.
CHECK_ONLY = ("web", "webdev")
# ... and of those, the blind one: nothing chooses anything by it either (choose_precision reads webdev, the web
# style's development set, as a corpus never fitted on).
BLIND = ("web",)
# The product's question set fitted on (refusal and the label bars); its other five only check.
TUNE_SET = "dev"
# Groups of the product's own questions: on the seed corpus as it is, and without its example questions.
PRODUCT_GROUPS = ("product", "plain")
SETUPS = ("fresh", "grown")
SEED = 0
# SQuAD: the report half (8 articles), 2 held out; answerable, unanswerable, off-topic questions asked.
SQUAD_SIZES = {"held_out": 2, "answerable": 60, "unanswerable": 20, "off_topic": 20}
# MedQuAD: pages drawn, of which held out; answerable questions over the rest, off-topic over those held out.
MEDQUAD_PAGES, MEDQUAD_HELD_OUT, MEDQUAD_ANSWERABLE, MEDQUAD_OFF_TOPIC = 30, 6, 60, 20

# A page's parts as its site heads them: MedQuAD's qtype names the part, not the wording of the page.
QTYPE_HEADINGS = {
    "information": "About {focus}", "symptoms": "Symptoms", "causes": "Causes", "treatment": "Treatment",
    "exams and tests": "Diagnosis", "susceptibility": "Who is at risk", "inheritance": "Inheritance",
    "frequency": "How common it is", "genetic changes": "Genetic changes", "research": "Research",
    "prevention": "Prevention", "outlook": "Outlook", "stages": "Stages", "complications": "Complications",
    "considerations": "Things to consider", "support groups": "Support and resources",
}


@dataclass(frozen=True)
class SuiteCorpus:
    """One corpus of the suite: the files a maintainer would drop in, and the questions asked of them."""

    name: str
    style: str
    files: tuple[tuple[str, bytes], ...]  # (file name, content)
    questions: tuple[Question, ...]
    # The folder of work/ its indexes are built in: another question set on the same files asks the same indexes.
    folder: str = ""

    def __post_init__(self) -> None:
        if not self.folder:
            object.__setattr__(self, "folder", self.name)

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for q in self.questions:
            counts[_kind(q)] = counts.get(_kind(q), 0) + 1
        return counts


def _kind(question: Question) -> str:
    if question.answerable:
        return ANSWERABLE
    return OFF_TOPIC if question.kind == OFF_TOPIC else UNANSWERABLE


# ----------------------------------------------------------------------------- the corpora


def squad_corpus(path: Path = SQUAD_FILE, seed: int = SEED, sizes: dict | None = None,
                 articles: int | None = None) -> SuiteCorpus:
    """`articles`: only the first few of the half (the small suite of the tests)."""
    pool = split_halves(load_benchmark(path), seed)["report"][:articles]
    drawn = sample(pool, seed, **(sizes or SQUAD_SIZES))
    return SuiteCorpus("squad", "Wikipedia (SQuAD 2.0 report half)",
                       tuple((a.file_name, a.text().encode("utf-8")) for a in drawn.corpus), drawn.questions)


def _answer_lines(answer: str) -> list[str]:
    """A MedQuAD answer as Markdown lines: paragraphs, and its inline "  - item" lists as list lines."""
    lines = []
    for raw in answer.splitlines():
        parts = [p.strip() for p in re.split(r"\s{2,}-\s+|^\s*-\s+", raw)]
        head, items = parts[0], [p for p in parts[1:] if p]
        if head:
            lines += ["", head]
        if items:
            lines += [""] + [f"- {item}" for item in items]
    return lines


def medquad_page(document: dict) -> str:
    """The page as its site lays it out: the focus as title, then each part under a heading named by its qtype."""
    focus = " ".join(document["focus"].split())
    lines = [f"# {focus}"]
    for part in document["qa"]:
        heading = QTYPE_HEADINGS.get(part["qtype"], part["qtype"].capitalize()).format(focus=focus)
        lines += ["", f"## {heading}"] + _answer_lines(part["answer"])
    return "\n".join(lines) + "\n"


def _page_file(document: dict) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", document["focus"]).strip("-").lower()[:60] + f"-{document['id']}.md"


def medquad_corpus(path: Path = MEDQUAD_FILE, seed: int = SEED, pages: int = MEDQUAD_PAGES,
                   held_out: int = MEDQUAD_HELD_OUT, answerable: int = MEDQUAD_ANSWERABLE,
                   off_topic: int = MEDQUAD_OFF_TOPIC) -> SuiteCorpus:
    documents = sorted(json.loads(Path(path).read_text(encoding="utf-8"))["documents"], key=lambda d: d["id"])
    rng = random.Random(seed)
    drawn = rng.sample(documents, min(pages, len(documents)))
    out, kept = drawn[:held_out], sorted(drawn[held_out:], key=lambda d: d["id"])
    questions: list[Question] = []
    for document, share in zip(kept, _spread(answerable, len(kept))):
        # One question per distinct wording; its gold is every part asked so (a page may repeat a qtype).
        by_question: dict[str, list[str]] = {}
        for part in document["qa"]:
            by_question.setdefault(" ".join(part["question"].split()), []).append(part["answer"])
        for number, text in enumerate(rng.sample(sorted(by_question), min(share, len(by_question)))):
            section = "|".join(_letters(a) for a in by_question[text])
            questions.append(Question(f"{document['id']}-{number}", ANSWERABLE, text, (), _page_file(document),
                                      (), section))
    for document, share in zip(sorted(out, key=lambda d: d["id"]), _spread(off_topic, len(out))):
        wordings = sorted({" ".join(p["question"].split()) for p in document["qa"]})
        for number, text in enumerate(rng.sample(wordings, min(share, len(wordings)))):
            questions.append(Question(f"{document['id']}-off{number}", OFF_TOPIC, text, (), None, ()))
    files = tuple((_page_file(d), medquad_page(d).encode("utf-8")) for d in kept)
    return SuiteCorpus("medquad", "NIH consumer-health pages (MedQuAD)", files, tuple(questions))


def _spread(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)] if parts else []


def web_corpus(pages: Path = WEB_PAGES, questions: Path = WEB_QUESTIONS, off_topic: frozenset[str] = WEB_OFF_TOPIC,
               name: str = "web") -> SuiteCorpus:
    files = tuple((p.name, p.read_bytes()) for p in sorted(Path(pages).glob("*.html")))
    asked = tuple(q if q.answerable or q.id not in off_topic else
                  Question(q.id, OFF_TOPIC, q.question, q.history, None, ())
                  for q in load_questions(questions))
    return SuiteCorpus(name, "saved health web pages (HTML)", files, asked, folder="web")


# The small suite of the tests (tests/test_suite.py): a few articles of each style, a few dozen questions.
SMALL = {"squad": {"articles": 3, "sizes": {"held_out": 1, "answerable": 20, "unanswerable": 6, "off_topic": 8}},
         "medquad": {"pages": 5, "held_out": 1, "answerable": 16, "off_topic": 6}}


def load_corpora(names: Sequence[str] = CORPORA, seed: int = SEED, small: bool = False) -> list[SuiteCorpus]:
    """The suite's corpora; `small`: the small suite of the tests (SMALL; the web pages are three already)."""
    makers = {"squad": lambda: squad_corpus(seed=seed, **(SMALL["squad"] if small else {})),
              "medquad": lambda: medquad_corpus(seed=seed, **(SMALL["medquad"] if small else {})),
              "web": web_corpus,
              "webdev": lambda: web_corpus(questions=WEB_DEV_QUESTIONS, off_topic=WEB_DEV_OFF_TOPIC, name="webdev")}
    unknown = sorted(set(names) - set(makers))
    if unknown:
        raise ValueError(f"unknown suite corpus {', '.join(unknown)}: one of {', '.join(CORPORA + EXTRA_CORPORA)}")
    return [makers[name]() for name in names]


# ----------------------------------------------------------------------------- running


def open_suite_setup(corpus: SuiteCorpus | None, setup: str, settings: Settings, work: Path,
                     refusal: RefusalModel | None = None, say: Callable[[str], None] = print) -> Engine:
    """The engine of a corpus in a setup, built in `work/<corpus>/<setup>/` (reused when there).

    corpus None with setup "product": the seed corpus as it is."""
    folder = work / "product" if corpus is None else work / corpus.folder / setup
    target = folder / "corpus"
    if not target.exists():
        tmp = folder / "corpus.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        write_corpus(tmp, (), settings.corpus_dir if setup in ("grown", "product") else None)
        if setup == "fresh":
            shutil.rmtree(tmp / BANK_FOLDER, ignore_errors=True)
        for name, content in (corpus.files if corpus is not None else ()):
            (tmp / name).write_bytes(content)
        tmp.rename(target)
    trial = settings.replace(corpus_dir=target, index_dir=folder / "index", tuned_dir=tuned_root(settings))
    return Engine.open(trial, build="stale", say=say, refusal=refusal)


def open_plain_seed(settings: Settings, work: Path, refusal: RefusalModel | None = None,
                    say: Callable[[str], None] = print) -> Engine:
    """The seed articles without their example questions or fine-tuning, in `work/plain/`: the product's
    questions in the "plain" regime (what refusal is fitted on beside the suite, qa/evaluation/calibration.py)."""
    folder = work / "plain"
    target = folder / "corpus"
    if not target.exists():
        tmp = folder / "corpus.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        write_corpus(tmp, (), settings.corpus_dir)
        shutil.rmtree(tmp / BANK_FOLDER, ignore_errors=True)
        tmp.rename(target)
    trial = settings.replace(corpus_dir=target, index_dir=folder / "index", tuned_dir=tuned_root(settings),
                             tune_epochs=0)
    return Engine.open(trial, build="stale", say=say, refusal=refusal)


@dataclass
class SuiteResult:
    corpus: str
    setup: str
    questions: dict[str, int]  # by kind
    scores: list[Scores]  # engine first, then the baselines
    articles: int
    chunks: int
    product_sets: dict[str, Scores] = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)  # the engine's, per question (qa.evaluation.evaluate.records)
    product_records: dict[str, list[dict]] = field(default_factory=dict)


def run_suite(settings: Settings, work: Path, corpora: Sequence[str] = CORPORA, setups: Sequence[str] = SETUPS,
              baselines: bool = True, product: bool = True, seed: int = SEED,
              refusal: RefusalModel | None = None, say: Callable[[str], None] = print,
              small: bool = False) -> list[SuiteResult]:
    """Every corpus in every setup: engine and baselines on the same questions; the product's sets on
    the seed corpus (and on each grown setup) when `product`."""
    unknown = sorted(set(setups) - set(SETUPS))
    if unknown:
        raise ValueError(f"unknown suite setup {', '.join(unknown)}: one of {', '.join(SETUPS)}")
    results = []
    if product:
        engine = open_suite_setup(None, "product", settings, work, refusal, say)
        sets, set_records = _product_sets(engine)
        results.append(SuiteResult("product", "product", {}, [], *_counts(engine), sets, [], set_records))
    for corpus in load_corpora(corpora, seed, small):
        for setup in setups:
            engine = open_suite_setup(corpus, setup, settings, work, refusal, say)
            questions = list(corpus.questions)
            say(f"{corpus.name}/{setup}: asking {len(questions)} questions")
            outcomes = run_engine(engine, questions)
            scores = [score("engine", questions, outcomes)]
            if baselines:
                scores += run_baselines(engine.settings, engine.base_embedder, questions)
            for s in scores:
                s.by_kind = _by_kind(corpus, s)
            sets, set_records = _product_sets(engine) if product and setup == "grown" else ({}, {})
            results.append(SuiteResult(corpus.name, setup, corpus.kinds(), scores, *_counts(engine), sets,
                                       records(questions, outcomes), set_records))
    return results


def _by_kind(corpus: SuiteCorpus, scores: Scores) -> dict[str, float]:
    """Refusal per kind of unanswerable question: the benchmark's own (near the topic) and off-topic."""
    kinds = dict(scores.by_kind)
    misses = {m.split(" ", 1)[0] for m in scores.misses if "[unanswerable]" in m}
    for kind in (UNANSWERABLE, OFF_TOPIC):
        ids = [q.id for q in corpus.questions if not q.answerable and _kind(q) == kind]
        kinds[f"refused {kind}"] = sum(i not in misses for i in ids) / len(ids) if ids else float("nan")
    return kinds


def _counts(engine: Engine) -> tuple[int, int]:
    counts = engine.index.manifest["counts"]
    return counts["articles"], counts["chunks"]


def _product_sets(engine: Engine) -> tuple[dict[str, Scores], dict[str, list[dict]]]:
    sets, rows = {}, {}
    for name, path in PRODUCT_SETS.items():
        questions = load_questions(path)
        outcomes = run_engine(engine, questions)
        sets[name], rows[name] = score("engine", questions, outcomes), records(questions, outcomes)
    return sets, rows


# ----------------------------------------------------------------------------- report

LABEL_ORDER = ("strong match", "partial match", "may help")


def _cell(value: float) -> str:
    return "    -" if value != value else f"{value:5.3f}"  # NaN: no such question in this corpus


def format_suite(results: list[SuiteResult]) -> str:
    lines = []
    for r in results:
        if r.corpus == "product":
            continue
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(r.questions.items()))
        lines += ["", f"== {r.corpus} / {r.setup}: {r.articles} articles, {r.chunks} passages; {kinds}",
                  f"{'system':<12}{'hit@1':>7}{'MRR':>7}{'answer':>8}{'wrongly':>9}{'refused':>9}{'refused':>10}",
                  f"{'':<12}{'':>7}{'':>7}{'acc.':>8}{'refused':>9}{'unansw.':>9}{'off-topic':>10}"]
        for s in r.scores:
            lines.append(f"{s.system:<12}{s.hit1:>7.3f}{s.mrr:>7.3f}{s.answer_accuracy:>8.3f}"
                         f"{s.refused_answerable:>9.3f}  {_cell(s.by_kind.get('refused ' + UNANSWERABLE, float('nan')))}"
                         f"{'':>2}  {_cell(s.by_kind.get('refused ' + OFF_TOPIC, float('nan')))}")
        engine = r.scores[0] if r.scores else None
        if engine is not None:
            labels = [f"{label}: share {v['share']:.3f}, precision {v['precision']:.3f} (n={v['count']})"
                      for label, v in sorted(engine.labels.items(), key=lambda kv: _label_rank(kv[0]))]
            lines.append("engine labels: " + ("; ".join(labels) if labels else "none"))
    lines += _worst(results)
    for r in results:
        if r.product_sets:
            lines += ["", f"== the six product sets, {r.corpus if r.corpus == 'product' else r.corpus + ' / ' + r.setup}"
                      f" (engine)", f"{'set':<10}{'hit@1':>7}{'MRR':>7}{'answer':>8}{'wrongly':>9}{'refused':>9}"
                      f"   labels (share/precision)"]
            for name, s in r.product_sets.items():
                labels = " ".join(f"{label.split()[0]} {v['share']:.2f}/{v['precision']:.2f}"
                                  for label, v in sorted(s.labels.items(), key=lambda kv: _label_rank(kv[0])))
                lines.append(f"{name:<10}{s.hit1:>7.3f}{s.mrr:>7.3f}{s.answer_accuracy:>8.3f}"
                             f"{s.refused_answerable:>9.3f}{s.refused_unanswerable:>9.3f}   {labels}")
    return "\n".join(lines).lstrip("\n")


def _label_rank(label: str) -> int:
    return LABEL_ORDER.index(label) if label in LABEL_ORDER else len(LABEL_ORDER)


def worst_figures(results: list[SuiteResult]) -> dict[str, float]:
    """The figures that count: each the worst over corpora and setups (MRR as the margin over the best baseline)."""
    rows = [r for r in results if r.scores]
    if not rows:
        return {}
    nan = float("nan")

    def worst(values):
        values = [v for v in values if v == v]
        return min(values) if values else nan

    def strong(s: Scores) -> float:
        return s.labels.get("strong match", {}).get("precision", nan)

    return {
        "MRR minus best baseline": worst(r.scores[0].mrr - max(b.mrr for b in r.scores[1:])
                                         for r in rows if len(r.scores) > 1),
        "answer accuracy": worst(r.scores[0].answer_accuracy for r in rows),
        "answerable not wrongly refused": worst(1 - r.scores[0].refused_answerable for r in rows),
        "off-topic refused": worst(r.scores[0].by_kind.get("refused " + OFF_TOPIC, nan) for r in rows),
        "strong match precision": worst(strong(r.scores[0]) for r in rows),
    }


def _worst(results: list[SuiteResult]) -> list[str]:
    figures = worst_figures(results)
    if not figures:
        return []
    return ["", "worst corpus and setup (engine): " + "; ".join(f"{k} {_cell(v).strip()}" for k, v in figures.items())]


def suite_json(results: list[SuiteResult]) -> dict:
    return {"results": [{"corpus": r.corpus, "setup": r.setup, "questions": r.questions, "articles": r.articles,
                         "chunks": r.chunks, "scores": [_scores_json(s) for s in r.scores],
                         "product_sets": {n: _scores_json(s) for n, s in r.product_sets.items()},
                         "records": r.records, "product_records": r.product_records}
                        for r in results],
            "worst": worst_figures(results)}


def _scores_json(s: Scores) -> dict:
    return {k: v for k, v in vars(s).items() if k != "misses"}


__all__ = ["CORPORA", "SETUPS", "SuiteCorpus", "SuiteResult", "load_corpora", "medquad_page", "medquad_corpus",
           "squad_corpus", "web_corpus", "open_suite_setup", "run_suite", "format_suite", "suite_json",
           "worst_figures"]


# ----------------------------------------------------------------------------- the labels' bars, fitted

def record_groups(results: list[SuiteResult], tune_sets: Sequence[str] = (TUNE_SET,)) -> dict[str, list[dict]]:
    """The engine's per-question records by group ("<corpus>/<setup>"), with the product's tune set(s) on the
    seed corpus ("product/dev"): what the labels are fitted on."""
    groups = {f"{r.corpus}/{r.setup}": r.records for r in results if r.records}
    for r in results:
        if r.corpus == "product":
            groups.update({f"product/{name}": rows for name, rows in r.product_records.items() if name in tune_sets})
    return groups


def _precise_enough(rows: list[dict], target: float) -> bool:
    """Answers right at least `target` of the time, counting one more right answer than seen: a handful of
    answers all right is not yet evidence of 0.9 (Laplace's rule, one-sided)."""
    return not rows or (sum(r["right"] for r in rows) + 1) / (len(rows) + 1) >= target


def _subject(row: dict) -> float:
    """The record's Confidence.subject (qa.models.refusal.SIGNALS); 0 in records made before it was recorded."""
    from qa.models.refusal import SIGNALS

    signals, at = row.get("signals"), SIGNALS.index("subject")
    return float(signals[at]) if signals is not None and len(signals) > at else 0.0


def _agreement(row: dict, name: str) -> float:
    """The record's Agreement signal `name` (qa.models.refusal.AGREEMENT); -inf in records made before it was."""
    from qa.models.refusal import AGREEMENT

    values = row.get("agreement")
    return float(values[AGREEMENT.index(name)]) if values is not None else -math.inf


def _levels(values: Sequence[float], count: int) -> list[float]:
    """Up to `count` candidate bars for one signal, spread over its fitting values: -inf (no bar) first."""
    finite = sorted({round(v, 2) for v in values if v > -math.inf})
    return [-math.inf] + finite[::max(1, len(finite) // count)]


def fit_labels(groups: dict[str, list[dict]], refusal: str, precision: float | Mapping[str, float], off_topic: float,
               subject_at_most: float = math.inf, regimes: Sequence[str] | None = None):
    """Per regime, the strong-match bars (refusal's margin, the answer's cosine and each Agreement signal of
    AGREEMENT_BARS: the most answers so labelled with every group's right at least `precision` of the time;
    answers whose subject is over `subject_at_most` are never strong) and the may-help bar (the lowest margin below
    refusal's bar at which at most `off_topic` of every group's off-topic questions would be offered passages
    instead of a flat refusal). `precision`: one target, or one per regime (choose_precision); `regimes`: only
    these are fitted (the others get bars that never give a strong match)."""
    from qa.models.refusal import AGREEMENT_BARS, REGIMES, LabelBars

    strong, strong_cosine, strong_agreement, may_help = {}, {}, {}, {}
    names = ("margin", "cosine") + AGREEMENT_BARS
    for regime in REGIMES:
        target = precision if isinstance(precision, (int, float)) else precision[regime]
        if regimes is not None and regime not in regimes:
            strong[regime], strong_cosine[regime], may_help[regime] = 99.0, -1.0, 0.0
            strong_agreement[regime] = {}
            continue
        mine = {g: [r for r in rows if r["regime"] == regime and r["margin"] is not None] for g, rows in groups.items()}
        answered = {g: [r for r in rows if r["found"] and _subject(r) <= subject_at_most] for g, rows in mine.items()}
        table = {g: (np.array([_label_signals(r, AGREEMENT_BARS) for r in rows], dtype=float).reshape(-1, len(names)),
                     np.array([bool(r["right"]) for r in rows], dtype=bool)) for g, rows in answered.items() if rows}
        pooled = np.concatenate([x for x, _ in table.values()]) if table else np.zeros((0, len(names)))
        grids = [_levels(pooled[:, 0], 20), _levels(pooled[:, 1], 12)] + [_levels(pooled[:, i], 10)
                                                                       for i in range(2, len(names))]
        if not table:
            grids = [[99.0], [-1.0]] + [[-math.inf]] * len(AGREEMENT_BARS)
        # Each signal's masks per bar, computed once: a combination of bars is their AND.
        masks = {g: [[x[:, i] >= bar for bar in grid] for i, grid in enumerate(grids)] for g, (x, _) in table.items()}
        # (strong answers, how cautious, bars): the most answers that stay precise; among bars that label the same
        # answers, the most cautious (where the fitting groups are silent, as SQuAD's pages without sections are
        # on the heading, a bar is not dropped for want of evidence against it).
        best = (0, -1, tuple(grid[0] if i > 1 else (99.0 if i == 0 else -1.0) for i, grid in enumerate(grids)))
        for combo in itertools.product(*(range(len(grid)) for grid in grids)):
            count, fine = 0, True
            for g, (_, right) in table.items():
                chosen = np.logical_and.reduce([masks[g][i][level] for i, level in enumerate(combo)])
                n = int(chosen.sum())
                if n and (int(right[chosen].sum()) + 1) / (n + 1) < target:
                    fine = False
                    break
                count += n
            if fine and (count, sum(combo)) > best[:2]:
                best = (count, sum(combo), tuple(grids[i][level] for i, level in enumerate(combo)))
        bars = best[2]
        strong[regime] = bars[0] if bars[0] > -math.inf else -99.0
        strong_cosine[regime] = bars[1] if bars[1] > -math.inf else -1.0
        strong_agreement[regime] = dict(zip(AGREEMENT_BARS, bars[2:]))
        refused_off = {g: [r["margin"] for r in rows if not r["found"] and r["kind"] == OFF_TOPIC]
                       for g, rows in mine.items()}
        totals = {g: sum(r["kind"] == OFF_TOPIC for r in rows) for g, rows in groups.items()}
        bar = 0.0
        for m in sorted({round(v, 3) for values in refused_off.values() for v in values}, reverse=True):
            if all(sum(v >= m for v in values) <= off_topic * totals[g] for g, values in refused_off.items() if totals[g]):
                bar = m
            else:
                break
        may_help[regime] = bar
    return LabelBars(strong, may_help, refusal, None, strong_cosine, strong_agreement)


# The precision the strong bars are fitted to, tried in this order from Settings.strong_match_precision up
# (choose_precision): a target the fitting corpora meet is not yet one a corpus never fitted on meets.
STRONG_TARGETS = (0.95, 0.97, 0.99)


def choose_precision(groups: Mapping[str, Sequence[dict]], refusal: str, first: float, promise: float,
                     off_topic: float, subject_at_most: float = math.inf) -> dict[str, float]:
    """Per regime, the precision the strong bars are fitted to: the first of `first` and STRONG_TARGETS above it at
    which bars fitted leaving each fitted suite corpus out (fitting_groups) keep that corpus's strong answers in the
    regime right at least `promise` of the time (Settings.strong_match_promise), and so do the bars fitted on every
    fitted corpus on a check-only corpus (never fitted on; the blind one, BLIND, is not read): the worst corpus
    left out chooses. When none does, the strictest."""
    from qa.models.refusal import REGIMES

    corpora = sorted({corpus_of(g) for g in groups} - set(PRODUCT_GROUPS) - set(BLIND))
    targets = [first] + [t for t in STRONG_TARGETS if t > first]
    chosen = {}
    for regime in REGIMES:
        for target in targets:
            chosen[regime] = target
            held = True
            for corpus in corpora:
                bars = fit_labels(fitting_groups(groups, leave_out=corpus), refusal, target, off_topic,
                                  subject_at_most, regimes=(regime,))
                for group, rows in groups.items():  # each setup of the corpus (fresh, grown) on its own
                    if corpus_of(group) != corpus or group.count("/") != 1:
                        continue
                    mine = [r for r in rows if r["regime"] == regime]
                    strong = apply_labels(mine, bars, subject_at_most).get("strong match")
                    held = held and (strong is None or strong["precision"] >= promise)
            if held:
                break
    return chosen


def _label_signals(row: dict, agreement: Sequence[str]) -> list[float]:
    return [row["margin"], row.get("answer_score") or 0.0] + [_agreement(row, name) for name in agreement]


def _row_agreement(row: dict):
    """The record's Agreement, or None in records made before it was recorded."""
    from qa.models.refusal import AGREEMENT, Agreement

    values = row.get("agreement")
    if values is None:
        return None
    named = dict(zip(AGREEMENT, values))
    return Agreement(named["lead"], bool(named["dense_first"]), bool(named["lexical_first"]), named["token_match"],
                     named.get("heading", 0.0))


def apply_labels(rows: list[dict], bars, subject_at_most: float = math.inf) -> dict[str, dict[str, float]]:
    """Share and precision per label, and off-topic questions refused flatly, of one group under `bars` (and
    Settings.strong_match_subject, `subject_at_most`)."""
    out: dict[str, list[bool]] = {}
    for r in rows:
        if r["margin"] is None or r["regime"] is None:
            continue
        if r["found"]:
            strong = bars.is_strong(r["regime"], r["margin"], r.get("answer_score") or 0.0, _subject(r),
                                    subject_at_most, _row_agreement(r))
            label = "strong match" if strong else "partial match"
            out.setdefault(label, []).append(r["right"])
        elif r["margin"] >= bars.may_help[r["regime"]]:
            out.setdefault("may help", []).append(r["first_relevant"])
    figures = {label: {"share": len(v) / max(1, len(rows)), "precision": sum(v) / len(v), "count": len(v)}
               for label, v in out.items()}
    off = [r for r in rows if r["kind"] == OFF_TOPIC]
    if off:
        flat = sum(not r["found"] and (r["margin"] is None or r["regime"] is None
                                       or r["margin"] < bars.may_help[r["regime"]]) for r in off)
        figures["off-topic refused flatly"] = {"share": flat / len(off), "precision": float("nan"), "count": flat}
    return figures


def corpus_of(group: str) -> str:
    """A group's corpus: "medquad/grown/dev" and "medquad/fresh" are both MedQuAD's."""
    return group.split("/")[0]


def fitting_groups(groups: Mapping[str, Sequence[dict]], leave_out: str | None = None) -> dict[str, Sequence[dict]]:
    """What refusal and the label bars are fitted on, the one definition: every suite corpus's groups but the
    check-only corpora's (CHECK_ONLY, read when called) and `leave_out`'s, and the product's tune set (on the seed
    corpus, without its example questions, and on each grown index)."""
    def fitted(group: str) -> bool:
        parts = group.split("/")
        if corpus_of(group) in CHECK_ONLY or corpus_of(group) == leave_out:
            return False
        return len(parts) == 2 and parts[0] not in PRODUCT_GROUPS or parts[-1] == TUNE_SET
    return {g: rows for g, rows in groups.items() if fitted(g)}


def leave_one_out(groups: dict[str, list[dict]], refusal: str, precision: float | Mapping[str, float],
                  off_topic: float, subject_at_most: float = math.inf) -> dict:
    """Each suite corpus's label figures under bars fitted without it (`fitting_groups`: never on a check-only
    corpus, so a check-only corpus is reported under bars fitted on every fitted corpus, as the shipped ones are)."""
    corpora = sorted({corpus_of(g) for g in groups} - set(PRODUCT_GROUPS))
    report = {}
    for corpus in corpora:
        fitting = fitting_groups(groups, leave_out=corpus)
        bars = fit_labels(fitting, refusal, precision, off_topic, subject_at_most)
        for group, rows in groups.items():
            if corpus_of(group) == corpus:
                report[group] = {"fitted_on": sorted(fitting),
                                 "bars": {"strong": bars.strong, "strong_cosine": bars.strong_cosine,
                                          "strong_agreement": bars.strong_agreement, "may_help": bars.may_help},
                                 "labels": apply_labels(rows, bars, subject_at_most)}
    return report


def format_labels(report: dict) -> str:
    lines = ["", "labels, each corpus under bars fitted on the others (leave one corpus out):",
             f"{'corpus/setup':<16}{'strong share/prec.':>20}{'partial share/prec.':>21}{'may help share/prec.':>22}"
             f"{'off-topic flat':>16}"]
    for group, entry in sorted(report.items()):
        labels = entry["labels"]

        def cell(name):
            v = labels.get(name)
            return f"{v['share']:.3f}/{v['precision']:.3f}" if v else "0/-"
        flat = labels.get("off-topic refused flatly")
        lines.append(f"{group:<16}{cell('strong match'):>20}{cell('partial match'):>21}{cell('may help'):>22}"
                     f"{(format(flat['share'], '.3f') if flat else '-'):>16}")
    return "\n".join(lines)
