"""Quality, measured: the engine and two baselines on a labelled question set.

Owns the evaluation behind `python -m qa eval`. Each labelled question
(eval/sets/dev.jsonl) names its source article and one or more verbatim
evidence fragments of the sentence(s) that answer it. Then:

- a passage is relevant when it comes from the source and contains a fragment;
- hit@k: a relevant passage among the first k; MRR: mean of 1/rank of the
  first relevant passage (0 when none of the shown passages is);
- answer accuracy: the answer sentence contains a fragment (answerable only);
- refused: share of unanswerable questions answered "not found";
- wrongly refused: share of answerable questions answered "not found".

Baselines, built here over the same articles so one run compares all three:
- "bm25": BM25 alone over the engine's chunks; the answer is the sentence of
  the top passage sharing most question terms; refuses when no term matches;
- "dense-1000": plain dense search over fixed 1,000-character windows (200
  overlap) of each article's text as its reader gives it (boilerplate gone,
  so a saved page or a PDF works too); the answer is the window's sentence most
  similar to the question; refuses when that sentence's cosine is below
  0.55 (the cosine bar the engine itself used before its refusal weighed
  several signals);
- "rrf": reciprocal-rank fusion (k = 60) of dense search and BM25, both over
  those same windows; it answers and refuses as "dense-1000" does.

`qa/evaluation/benchmark.py` runs the same scoring on a SQuAD-format benchmark, on
corpora the engine was never tuned on.

Refusal is fitted in qa/evaluation/benchmark.py (`python -m qa eval --fit-refusal`),
on these questions and a benchmark together.

Limits: a fragment-based judge; an answer that is right but not listed in
the evidence counts as wrong (so figures are, if anything, low).
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import bm25s
import numpy as np

from qa.answering.answer import resolve_query
from qa.reading.chunking import chunk_articles
from qa.reading.corpus import load_corpus
from qa.models.embedding import Embedder
from qa.models.question_bank import bank_sources, load_bank
from qa.models.tuning import tuned_root
from qa.serving.engine import Engine
from qa.models.refusal import relative_signals
from qa.settings import PROJECT_ROOT, Settings
from qa.reading.text import content_terms, normalise_space, split_sentences

QUESTION_SETS = PROJECT_ROOT / "eval" / "sets"  # eval/README.md says who wrote each and what for
DEFAULT_QUESTIONS = QUESTION_SETS / "dev.jsonl"
DENSE_BASELINE_BAR = 0.55  # the dense baseline refuses below this answer cosine
# Reciprocal-rank fusion as usually defined (Cormack et al. 2009): k = 60 over each list's first 100.
RRF_K, RRF_DEPTH = 60, 100
# The product's labelled question sets, by name: dev is tuned on, the others only check.
PRODUCT_SETS = {name: QUESTION_SETS / f"{name}.jsonl" for name in (
    "dev", "heldout", "fresh", "unseen", "sealed", "sealed2")}


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    question: str
    history: tuple[str, ...]
    source: str | None
    evidence: tuple[str, ...]
    # The gold section's text, for corpora whose answers are whole sections (MedQuAD, qa/evaluation/suite.py):
    # a passage is relevant when it lies inside it, an answer right when it is a sentence of it.
    # Empty: judged by the evidence fragments.
    section: str = ""

    @property
    def answerable(self) -> bool:
        return self.source is not None


@dataclass
class Outcome:
    """What a system did with one question: its passages (source, text) in order, answer, found."""

    passages: list[tuple[str, str]]
    answer: str | None
    found: bool
    label: str | None = None  # the engine's label of the answer's passage ("strong match", ...); None: none
    margin: float | None = None  # the engine's refusal margin (negative: refused); what labels are fitted on
    regime: str | None = None  # the refusal regime of the answer's article ("examples" or "plain")
    answer_score: float | None = None  # the engine's cosine of question and answer sentence
    # refusal's signals, read against the answer's article's background (qa.refusal.relative_signals):
    # what refusal is refitted on (qa/suite.py)
    signals: tuple[float, ...] | None = None
    article: str | None = None  # the article the answer comes from (its refusal signals are that article's)


@dataclass
class Scores:
    system: str
    hit1: float = 0.0
    hit3: float = 0.0
    mrr: float = 0.0
    answer_accuracy: float = 0.0
    refused_unanswerable: float = 0.0
    refused_answerable: float = 0.0  # not answered: refused flatly or offered passages as "may help"
    # ... of which refused flatly: no answer and no passage offered (a "may help" shows passages, not an answer,
    # so it counts in refused_answerable, the product's target, and not here)
    refused_answerable_flatly: float = 0.0
    by_kind: dict[str, float] = field(default_factory=dict)  # answer accuracy (or refusal) per kind
    # Per label of the answer ("strong match", "partial match", ...): {"share": of all questions,
    # "precision": share of those answers that are right (an answer to an unanswerable question is wrong)}.
    labels: dict[str, dict[str, float]] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)


def load_questions(path: Path = DEFAULT_QUESTIONS) -> list[Question]:
    questions = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            questions.append(Question(row["id"], row["kind"], row["question"], tuple(row.get("history", ())),
                                      row.get("source"), tuple(row.get("evidence", ()))))
    return questions


def _norm(text: str) -> str:
    return normalise_space(text).lower()


def _letters(text: str) -> str:
    """Letters and digits only, lower case: how a passage is compared with a gold section whatever the
    reader did to its spacing, bullets and punctuation."""
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _inside(section: str, text: str) -> bool:
    """Whether a passage lies inside a gold section: at least half of its sentences are sentences of it."""
    sentences = [_letters(s) for line in text.split("\n") for s in split_sentences(line)]
    sentences = [s for s in sentences if len(s) >= 20]
    return bool(sentences) and sum(s in section for s in sentences) * 2 >= len(sentences)


def _relevant(question: Question, source: str, text: str) -> bool:
    if source != question.source:
        return False
    if question.section:
        return _inside(question.section, text)
    body = _norm(text)
    return any(_norm(e) in body for e in question.evidence)


def _right(question: Question, answer: str) -> bool:
    if question.section:
        letters = _letters(answer)
        return len(letters) >= 10 and letters in question.section
    return any(_norm(e) in _norm(answer) for e in question.evidence)


def records(questions: list[Question], outcomes: list[Outcome]) -> list[dict]:
    """Per question, what labels are fitted on: its kind, whether it was answered and rightly, whether the first
    passage is relevant, and the engine's margin and regime."""
    rows = []
    for q, o in zip(questions, outcomes):
        first = o.passages[0] if o.passages else None
        rows.append({"id": q.id, "kind": q.kind, "answerable": q.answerable, "found": o.found,
                     "right": bool(q.answerable and o.found and o.answer is not None and _right(q, o.answer)),
                     "first_relevant": bool(q.answerable and first is not None and _relevant(q, *first)),
                     "margin": o.margin, "regime": o.regime, "label": o.label, "answer_score": o.answer_score,
                     "signals": list(o.signals) if o.signals is not None else None,
                     "question": q.question, "article": o.article})
    return rows


def score(system: str, questions: list[Question], outcomes: list[Outcome]) -> Scores:
    result = Scores(system)
    answerable = [(q, o) for q, o in zip(questions, outcomes) if q.answerable]
    unanswerable = [(q, o) for q, o in zip(questions, outcomes) if not q.answerable]
    kind_hits: dict[str, list[bool]] = {}
    labelled: dict[str, list[bool]] = {}
    for q, o in answerable:
        ranks = [r for r, (source, text) in enumerate(o.passages, 1) if _relevant(q, source, text)]
        first = ranks[0] if ranks else None
        result.hit1 += first == 1
        result.hit3 += first is not None and first <= 3
        result.mrr += 1 / first if first else 0.0
        correct = o.found and o.answer is not None and _right(q, o.answer)
        result.answer_accuracy += correct
        if o.found and o.label:
            labelled.setdefault(o.label, []).append(correct)
        elif not o.found and o.label == "may help":  # right when the passage offered first is relevant
            labelled.setdefault(o.label, []).append(first == 1)
        result.refused_answerable += not o.found
        result.refused_answerable_flatly += not o.found and o.label != "may help"
        kind_hits.setdefault(q.kind, []).append(correct)
        if not correct:
            result.misses.append(f"{q.id} [{q.kind}] {q.question!r} -> {'REFUSED' if not o.found else repr(o.answer)}")
    for q, o in unanswerable:
        result.refused_unanswerable += not o.found
        kind_hits.setdefault(q.kind, []).append(not o.found)
        if o.found:
            result.misses.append(f"{q.id} [unanswerable] {q.question!r} -> {o.answer!r}")
        if o.label:  # an answer, or passages offered, to a question the articles do not answer: wrong
            labelled.setdefault(o.label, []).append(False)
    n, m = max(1, len(answerable)), max(1, len(unanswerable))
    result.hit1, result.hit3, result.mrr = result.hit1 / n, result.hit3 / n, result.mrr / n
    result.answer_accuracy /= n
    result.refused_answerable /= n
    result.refused_answerable_flatly /= n
    result.refused_unanswerable /= m
    result.by_kind = {k: sum(v) / len(v) for k, v in sorted(kind_hits.items())}
    result.labels = {label: {"share": len(v) / max(1, len(questions)), "precision": sum(v) / len(v),
                             "count": len(v)} for label, v in sorted(labelled.items())}
    return result


# ----------------------------------------------------------------------------- systems


def run_engine(engine: Engine, questions: Iterable[Question]) -> list[Outcome]:
    outcomes = []
    for q in questions:
        r = engine.ask(q.question, list(q.history))
        label = (r.answer_source.match if r.found and r.answer_source is not None
                 else "may help" if getattr(r, "may_help", False) else None)
        outcomes.append(Outcome([(p.source, p.text) for p in r.passages], r.answer, r.found, label,
                                r.margin if r.confidence is not None else None,
                                r.confidence.regime if r.confidence is not None else None, r.answer_score,
                                tuple(relative_signals(r.confidence, engine.index.background))
                                if r.confidence is not None else None,
                                r.confidence.article if r.confidence is not None else None))
    return outcomes


def run_bm25_baseline(settings: Settings, questions: list[Question]) -> list[Outcome]:
    chunks = chunk_articles(load_corpus(settings.corpus_dir, settings).articles, settings,
                            bank_sources(load_bank(settings.corpus_dir)[0]))  # the engine's passages
    retriever = bm25s.BM25()
    retriever.index([content_terms(c.index_text) or ["_empty_"] for c in chunks], show_progress=False)
    vocabulary = set(retriever.vocab_dict)
    outcomes = []
    for q in questions:
        query = resolve_query(q.question, list(q.history), settings)
        terms = [t for t in content_terms(query) if t in vocabulary]
        if not terms:
            outcomes.append(Outcome([], None, False))
            continue
        scores = retriever.get_scores(terms)
        order = [int(i) for i in np.argsort(-scores, kind="stable")[:settings.top_k] if scores[i] > 0]
        if not order:
            outcomes.append(Outcome([], None, False))
            continue
        top = chunks[order[0]]
        answer = max(top.sentences, key=lambda s: len(set(content_terms(s)) & set(terms)), default=None)
        outcomes.append(Outcome([(chunks[i].source, chunks[i].text) for i in order], answer, answer is not None))
    return outcomes


def fixed_windows(text: str, size: int = 1000, overlap: int = 200) -> list[str]:
    step = size - overlap
    return [text[start:start + size] for start in range(0, max(1, len(text) - overlap), step)]


@dataclass
class WindowIndex:
    """The baselines' own passages: fixed 1,000-character windows (200 overlap) of each article's text."""

    windows: list[tuple[str, str]]  # (source, text)
    vectors: np.ndarray  # one unit row per window, with the model as it ships
    lexical: bm25s.BM25  # over the windows' stemmed content words
    vocabulary: frozenset[str]
    sentence_vectors: dict[str, np.ndarray] = field(default_factory=dict)  # filled as questions need them


def window_index(settings: Settings, embedder: Embedder) -> WindowIndex:
    # Windows over each article's text as its reader gives it (so pages and PDFs too), not the raw file.
    windows: list[tuple[str, str]] = []
    for article in load_corpus(settings.corpus_dir, settings).articles:
        windows += [(article.source, w) for w in fixed_windows(article.plain_text())]
    lexical = bm25s.BM25()
    lexical.index([content_terms(w) or ["_empty_"] for _, w in windows], show_progress=False)
    return WindowIndex(windows, embedder.encode([w for _, w in windows]), lexical,
                       frozenset(lexical.vocab_dict))


def _window_answer(embedder: Embedder, window: str, query_vector: np.ndarray,
                   known: dict[str, np.ndarray]) -> Outcome:
    """The window's sentence closest to the question; refused below DENSE_BASELINE_BAR.

    `known`: sentence vectors embedded for earlier questions (windows recur across questions).
    """
    sentences = [s for line in window.split("\n") for s in split_sentences(line)]
    answer, best = None, -1.0
    if sentences:
        new = [s for s in dict.fromkeys(sentences) if s not in known]
        known.update(zip(new, embedder.encode(new)))
        sims = np.stack([known[s] for s in sentences]) @ query_vector
        answer, best = sentences[int(np.argmax(sims))], float(np.max(sims))
    found = best >= DENSE_BASELINE_BAR
    return Outcome([], answer if found else None, found)


def run_dense_baseline(settings: Settings, embedder: Embedder, questions: list[Question],
                       windows: WindowIndex | None = None, fused: bool = False) -> list[Outcome]:
    """Dense search over the fixed windows; `fused`: its reciprocal-rank fusion with BM25 over the same windows."""
    windows = windows or window_index(settings, embedder)
    outcomes = []
    for q in questions:
        query = resolve_query(q.question, list(q.history), settings)
        qv = embedder.encode_one(query)
        dense_order = np.argsort(-(windows.vectors @ qv), kind="stable")
        if fused:
            terms = [t for t in content_terms(query) if t in windows.vocabulary]
            lexical = windows.lexical.get_scores(terms) if terms else np.zeros(len(windows.windows))
            lexical_order = [i for i in np.argsort(-lexical, kind="stable") if lexical[i] > 0]
            fusion: dict[int, float] = {}
            for ranking in (dense_order[:RRF_DEPTH], lexical_order[:RRF_DEPTH]):
                for rank, i in enumerate(ranking, 1):
                    fusion[int(i)] = fusion.get(int(i), 0.0) + 1.0 / (RRF_K + rank)
            order = sorted(fusion, key=lambda i: (-fusion[i], i))[:settings.top_k]
        else:
            order = [int(i) for i in dense_order[:settings.top_k]]
        outcome = _window_answer(embedder, windows.windows[order[0]][1], qv, windows.sentence_vectors)
        outcome.passages = [windows.windows[i] for i in order]
        outcomes.append(outcome)
    return outcomes


def run_baselines(settings: Settings, embedder: Embedder, questions: list[Question]) -> list[Scores]:
    """BM25 alone, dense over fixed windows, and their reciprocal-rank fusion, scored on the same questions."""
    windows = window_index(settings, embedder)
    return [score("bm25", questions, run_bm25_baseline(settings, questions)),
            score("dense-1000", questions, run_dense_baseline(settings, embedder, questions, windows)),
            score("rrf", questions, run_dense_baseline(settings, embedder, questions, windows, fused=True))]


# ----------------------------------------------------------------------------- report


def evaluate(settings: Settings, questions_path: Path = DEFAULT_QUESTIONS, baselines: bool = True,
             say: Callable[[str], None] = print, engine: Engine | None = None) -> list[Scores]:
    questions = load_questions(questions_path)
    engine = engine or Engine.open(settings, build="stale", say=say)
    results = [score("engine", questions, run_engine(engine, questions))]
    if baselines:
        results += run_baselines(settings, engine.base_embedder, questions)
    return results


def sweep_chunk_sizes(settings: Settings, sizes: list[int], questions_path: Path = DEFAULT_QUESTIONS,
                      say: Callable[[str], None] = print) -> list[tuple[int, Scores]]:
    """Engine scores per chunk size, each on a fresh temporary index."""
    questions = load_questions(questions_path)
    embedder = Embedder(settings.model, settings.batch_size, settings.threads)
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            # One tuned model for every size: it depends on the bank, not the chunks.
            trial = settings.replace(chunk_chars=size, index_dir=Path(tmp), tuned_dir=tuned_root(settings))
            engine = Engine.open(trial, build="missing", embedder=embedder)
            rows.append((size, score(f"chunk_chars={size}", questions, run_engine(engine, questions))))
            say(f"chunk_chars={size}: done")
    return rows


def format_table(results: list[Scores]) -> str:
    header = f"{'system':<18}{'hit@1':>7}{'hit@3':>7}{'MRR':>7}{'answer':>8}{'refused':>9}{'wrongly':>9}"
    sub = f"{'':<18}{'':>7}{'':>7}{'':>7}{'acc.':>8}{'unansw.':>9}{'refused':>9}"
    lines = [header, sub]
    for r in results:
        lines.append(f"{r.system:<18}{r.hit1:>7.3f}{r.hit3:>7.3f}{r.mrr:>7.3f}{r.answer_accuracy:>8.3f}"
                     f"{r.refused_unanswerable:>9.3f}{r.refused_answerable:>9.3f}")
    return "\n".join(lines)


def as_json(results: list[Scores]) -> list[dict]:
    return [{k: v for k, v in vars(r).items()} for r in results]


__all__ = ["evaluate", "sweep_chunk_sizes", "format_table", "load_questions", "score"]
