"""Quality on corpora the engine was not tuned on: a SQuAD-format benchmark, built with the product's own build.

Owns `python -m qa eval --benchmark FILE`. A SQuAD file (version 2 adds
unanswerable questions, `is_impossible`) holds articles: a title and its
paragraphs, each with crowd-written questions and their gold answer spans.
From it:

- the articles are split with a fixed seed into two halves, "fit" and
  "report": whatever is learned from the benchmark is learned on the first
  and reported on the second (`--half`);
- in the chosen half, some articles are held out of the corpus (fixed seed):
  questions about them are off-topic for that corpus, the commonest kind of
  question a folder of articles cannot answer;
- the other articles are written as `.txt` files (title line, then one
  paragraph per line) into a temporary corpus and built with `qa.indexing.build.build`
  like any maintainer's corpus;
- a fixed-seed sample is asked: answerable questions spread evenly over the
  corpus articles, the benchmark's own unanswerable questions about them
  (written to look answerable), and questions about the held-out articles.

Two setups:
- fresh: the benchmark's articles alone;
- grown: the product's own corpus (articles and example questions) plus the
  benchmark's articles; the product's labelled question sets are scored on
  that bigger index too, to see that neither corpus disturbs the other.

Scores (qa.evaluation.evaluate.score): a passage hits when it comes from the question's
article and holds a gold span; the answer is right when the answer sentence
holds one. Refusal is reported per kind: answerable (wrongly refused), the
benchmark's unanswerable questions, and the held-out articles' questions.
The baselines of qa.evaluation.evaluate run in the same build: BM25 alone, dense search
over fixed 1,000/200-character windows, and their reciprocal-rank fusion.

Limits: gold spans are short ("France", "1066"), so a passage can hold one
by chance, for every system alike. The benchmark's unanswerable questions
are written to look answerable from the very paragraph they were written
on; telling those apart needs a reader model, which this engine does not
have, so their refusal is reported, not targeted.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from qa.serving.engine import Engine
from qa.evaluation.evaluate import (PRODUCT_SETS, Question, Scores, load_questions, run_baselines, run_engine, score)
from qa.models.question_bank import BANK_FOLDER
from qa.models.refusal import LabelledSignals, RefusalModel, answer_everything, fit, relative_signals
from qa.settings import Settings
from qa.models.tuning import tuned_root

HALVES = ("fit", "report", "all")
# Refusal is fitted to refuse at most this share of each fitting group's answerable questions (why: Settings).
WRONGLY_REFUSED = Settings.refusal_wrongly_refused
SETUPS = ("product", "plain", "fresh", "grown")
ANSWERABLE, UNANSWERABLE, OFF_TOPIC = "answerable", "unanswerable", "off-topic"


@dataclass(frozen=True)
class BenchmarkArticle:
    title: str
    paragraphs: tuple[str, ...]
    questions: tuple[dict, ...]  # the SQuAD rows: question, id, answers, is_impossible

    @property
    def file_name(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", self.title).strip("-").lower() + ".txt"

    def text(self) -> str:
        """The article as a maintainer would drop it in: its title on the first line, then its paragraphs."""
        return self.title.replace("_", " ") + "\n\n" + "\n\n".join(self.paragraphs) + "\n"


@dataclass(frozen=True)
class Sample:
    """One benchmark run's corpus and questions."""

    corpus: tuple[BenchmarkArticle, ...]
    held_out: tuple[BenchmarkArticle, ...]
    questions: tuple[Question, ...]


def load_benchmark(path: Path) -> list[BenchmarkArticle]:
    """The articles of a SQuAD-format file, in file order."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        articles = []
        for entry in data["data"]:
            paragraphs = tuple(" ".join(p["context"].split()) for p in entry["paragraphs"])
            questions = tuple(q for p in entry["paragraphs"] for q in p["qas"])
            articles.append(BenchmarkArticle(entry["title"], paragraphs, questions))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a SQuAD-format benchmark file ({exc})") from exc
    return articles


def split_halves(articles: list[BenchmarkArticle], seed: int) -> dict[str, list[BenchmarkArticle]]:
    """The articles in two fixed halves (by title, shuffled with `seed`): "fit" and "report"."""
    ordered = sorted(articles, key=lambda a: a.title)
    random.Random(seed).shuffle(ordered)
    middle = len(ordered) // 2
    return {"fit": ordered[:middle], "report": ordered[middle:], "all": ordered}


def sample(articles: list[BenchmarkArticle], seed: int, held_out: int, answerable: int, unanswerable: int,
           off_topic: int) -> Sample:
    """Hold `held_out` articles out and draw the questions, all with `seed`.

    Answerable and unanswerable questions are spread evenly over the corpus articles;
    off-topic ones over the held-out articles (answerable or not there: none is answered here).
    """
    rng = random.Random(seed)
    shuffled = sorted(articles, key=lambda a: a.title)
    rng.shuffle(shuffled)
    out, kept = shuffled[:held_out], sorted(shuffled[held_out:], key=lambda a: a.title)
    if not kept:
        raise ValueError("no benchmark article is left in the corpus; hold fewer out")
    questions: list[Question] = []
    for count, pool_of, kind in ((answerable, lambda a: [q for q in a.questions if not q.get("is_impossible")],
                                  ANSWERABLE),
                                 (unanswerable, lambda a: [q for q in a.questions if q.get("is_impossible")],
                                  UNANSWERABLE)):
        for article, share in zip(kept, _spread(count, len(kept))):
            pool = sorted(pool_of(article), key=lambda q: q["id"])
            for row in rng.sample(pool, min(share, len(pool))):
                answers = tuple(sorted({a["text"] for a in row.get("answers", []) if a["text"].strip()}))
                questions.append(Question(row["id"], kind, row["question"], (),
                                          article.file_name if kind == ANSWERABLE else None,
                                          answers if kind == ANSWERABLE else ()))
    for article, share in zip(sorted(out, key=lambda a: a.title), _spread(off_topic, len(out))):
        pool = sorted(article.questions, key=lambda q: q["id"])
        questions += [Question(row["id"], OFF_TOPIC, row["question"], (), None, ())
                      for row in rng.sample(pool, min(share, len(pool)))]
    return Sample(tuple(kept), tuple(sorted(out, key=lambda a: a.title)), tuple(questions))


def _spread(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)] if parts else []


def write_corpus(folder: Path, articles: tuple[BenchmarkArticle, ...], product_corpus: Path | None = None) -> Path:
    """The benchmark articles as .txt files in `folder`, beside a copy of the product's corpus when given."""
    if product_corpus is not None:
        shutil.copytree(product_corpus, folder)
    folder.mkdir(parents=True, exist_ok=True)
    for article in articles:
        (folder / article.file_name).write_text(article.text(), encoding="utf-8")
    return folder


@dataclass
class SetupResult:
    setup: str
    benchmark: list[Scores]  # engine first, then the baselines
    product_sets: dict[str, Scores]  # grown only: the product's question sets on the bigger index
    articles: int
    chunks: int


def open_setup(setup: str, bench_sample: Sample, settings: Settings, work: Path, refusal: RefusalModel | None = None,
               say: Callable[[str], None] = print) -> Engine:
    """The engine of one setup, built in `work/<setup>/` with the product's build (reused when there).

    - "product": the product's corpus as it is (articles and example questions);
    - "plain": the product's articles alone, no example questions and no fine-tuning: a folder
      of health articles as a maintainer first drops it in;
    - "fresh": the benchmark's corpus articles alone;
    - "grown": the product's corpus plus the benchmark's corpus articles.
    """
    if setup not in SETUPS:
        raise ValueError(f"unknown setup {setup!r}: one of {', '.join(SETUPS)}")
    folder = work / setup
    corpus = folder / "corpus"
    if not corpus.exists():
        with_product = setup in ("product", "plain", "grown")
        write_corpus(corpus, () if setup in ("product", "plain") else bench_sample.corpus,
                     settings.corpus_dir if with_product else None)
        if setup in ("fresh", "plain"):  # no example questions: a maintainer's new folder
            shutil.rmtree(corpus / BANK_FOLDER, ignore_errors=True)
    trial = settings.replace(corpus_dir=corpus, index_dir=folder / "index", tuned_dir=tuned_root(settings))
    if setup == "plain":
        trial = trial.replace(tune_epochs=0)
    return Engine.open(trial, build="stale", say=say, refusal=refusal)


def run_setup(setup: str, bench_sample: Sample, settings: Settings, work: Path, baselines: bool = True,
              say: Callable[[str], None] = print) -> SetupResult:
    """Build the setup's corpus with the product's build and score the engine (and baselines) on it."""
    engine = open_setup(setup, bench_sample, settings, work, say=say)
    questions = list(bench_sample.questions) if setup in ("fresh", "grown") else []
    results = []
    if questions:
        say(f"{setup}: asking {len(questions)} benchmark questions")
        results.append(score("engine", questions, run_engine(engine, questions)))
        if baselines:
            results += run_baselines(engine.settings, engine.base_embedder, questions)
    product: dict[str, Scores] = {}
    if setup != "fresh":  # the product's labelled sets, on a corpus that holds their articles
        for name, path in PRODUCT_SETS.items():
            product[name] = score("engine", load_questions(path), run_engine(engine, load_questions(path)))
    manifest = engine.index.manifest
    return SetupResult(setup, results, product, manifest["counts"]["articles"], manifest["counts"]["chunks"])


def run_benchmark(path: Path, settings: Settings, setups: tuple[str, ...] = ("fresh", "grown", "plain"),
                  half: str = "report",
                  seed: int = 0, held_out: int = 2, answerable: int = 240, unanswerable: int = 90,
                  off_topic: int = 80, baselines: bool = True, work: Path | None = None,
                  say: Callable[[str], None] = print) -> tuple[Sample, list[SetupResult]]:
    if half not in HALVES:
        raise ValueError(f"unknown half {half!r}: one of {', '.join(HALVES)}")
    articles = split_halves(load_benchmark(path), seed)[half]
    bench_sample = sample(articles, seed, held_out, answerable, unanswerable, off_topic)
    say(f"benchmark {Path(path).name}, half {half!r}: corpus {[a.title for a in bench_sample.corpus]}, "
        f"held out {[a.title for a in bench_sample.held_out]}")
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        root = Path(work) if work is not None else Path(tmp)
        results = [run_setup(setup, bench_sample, settings, root, baselines, say) for setup in setups]
    return bench_sample, results


def refusal_signals(engine: Engine, questions: list[Question], group: str) -> list[LabelledSignals]:
    """Each question's relative signals (what refusal weighs) and whether it is answerable."""
    rows = []
    for q in questions:
        result = engine.ask(q.question, list(q.history))
        if result.confidence is not None:
            rows.append(LabelledSignals(group, result.confidence.regime,
                                        tuple(relative_signals(result.confidence, engine.index.background)),
                                        q.answerable))
    return rows


def fit_refusal(path: Path, settings: Settings, seed: int = 0, work: Path | None = None,
                wrongly_refused: float = WRONGLY_REFUSED, say: Callable[[str], None] = print) -> RefusalModel:
    """The refusal model fitted on the benchmark's "fit" half and the product's dev questions.

    Groups, each weighing the same in the fit: the dev questions on the product's corpus
    ("examples" regime) and on its articles without example questions ("plain"), and the
    benchmark's sample on its articles alone and beside the product's corpus.
    """
    articles = split_halves(load_benchmark(path), seed)["fit"]
    bench_sample = sample(articles, seed, 2, 240, 90, 80)
    dev = load_questions(PRODUCT_SETS["dev"])
    provisional = answer_everything(settings.model)
    rows: list[LabelledSignals] = []
    with tempfile.TemporaryDirectory(prefix="qa-fit-") as tmp:
        root = Path(work) if work is not None else Path(tmp)
        for setup in SETUPS:
            engine = open_setup(setup, bench_sample, settings, root, provisional, say)
            if setup in ("fresh", "grown"):
                rows += refusal_signals(engine, list(bench_sample.questions), f"{setup}/benchmark")
            if setup in ("product", "plain", "grown"):
                rows += refusal_signals(engine, dev, f"{setup}/dev")
            say(f"{setup}: {len(rows)} labelled questions so far")
    return fit(rows, settings.model, wrongly_refused)


def format_benchmark(bench_sample: Sample, results: list[SetupResult]) -> str:
    kinds = {kind: sum(q.kind == kind for q in bench_sample.questions) for kind in (ANSWERABLE, UNANSWERABLE,
                                                                                   OFF_TOPIC)}
    lines = [f"questions: {kinds[ANSWERABLE]} answerable, {kinds[UNANSWERABLE]} unanswerable (the benchmark's), "
             f"{kinds[OFF_TOPIC]} off-topic (held-out articles)"]
    header = (f"{'system':<14}{'hit@1':>7}{'hit@3':>7}{'MRR':>7}{'answer':>8}{'wrongly':>9}"
              f"{'refused':>9}{'refused':>10}")
    sub = f"{'':<14}{'':>7}{'':>7}{'':>7}{'acc.':>8}{'refused':>9}{'unansw.':>9}{'off-topic':>10}"
    for result in results:
        lines += ["", f"{result.setup}: {result.articles} articles, {result.chunks} passages"]
        if result.benchmark:
            lines += [header, sub]
        for s in result.benchmark:
            lines.append(f"{s.system:<14}{s.hit1:>7.3f}{s.hit3:>7.3f}{s.mrr:>7.3f}{s.answer_accuracy:>8.3f}"
                         f"{s.refused_answerable:>9.3f}{s.by_kind.get(UNANSWERABLE, 0.0):>9.3f}"
                         f"{s.by_kind.get(OFF_TOPIC, 0.0):>10.3f}")
        if result.product_sets:
            lines += ["", f"{result.setup}: the product's question sets on this index (engine)",
                      f"{'set':<14}{'hit@1':>7}{'hit@3':>7}{'MRR':>7}{'answer':>8}{'wrongly':>9}{'refused':>9}"]
            for name, s in result.product_sets.items():
                lines.append(f"{name:<14}{s.hit1:>7.3f}{s.hit3:>7.3f}{s.mrr:>7.3f}{s.answer_accuracy:>8.3f}"
                             f"{s.refused_answerable:>9.3f}{s.refused_unanswerable:>9.3f}")
    return "\n".join(lines)


def benchmark_json(bench_sample: Sample, results: list[SetupResult]) -> dict:
    return {
        "corpus": [a.title for a in bench_sample.corpus],
        "held_out": [a.title for a in bench_sample.held_out],
        "setups": {r.setup: {"articles": r.articles, "chunks": r.chunks,
                             "benchmark": [vars(s) for s in r.benchmark],
                             "product_sets": {name: vars(s) for name, s in r.product_sets.items()}}
                   for r in results},
    }


__all__ = ["load_benchmark", "split_halves", "sample", "run_benchmark", "format_benchmark", "benchmark_json"]
