"""Refusal: do these articles answer the question at all? Judged against unrelated questions.

Owns the decision that makes the engine say "I couldn't find that in the
articles", and the two things it is made from:

- a **background**: 600 questions on every kind of topic
  (`qa/background_questions.txt`, written for this purpose from general
  knowledge, not from any article or benchmark). Every build asks them of
  every article, with plain vector and BM25 arithmetic, and keeps per
  article the median and spread of how well such unrelated questions match
  it (`background_statistics`, stored in the index generation). A
  question's signals are then read as "how many spreads above unrelated
  questions" (`relative_signals`): a long article matches anything a little,
  a tuned model pulls everything closer, a corpus of one topic makes every
  passage alike, and the background moves with all of that;
- a **refusal model**: per regime, weights on those relative signals and a
  bar, fitted by logistic regression on labelled questions of several
  corpora (the calibration suite's, leave one corpus out: `python -m qa eval
  --suite --fit-refusal`, qa/evaluation/calibration.py), written to
  a versioned JSON file (`qa/fitted/refusal.json`) that records what it was
  fitted on and for which model, and is checked when loaded. Two regimes,
  because example questions (qa/models/question_bank.py) change what an answerable
  question looks like: "examples" when the answer's article has example
  questions (the closest one is a signal), "plain" when it has none.

The signals are those of the article the answer comes from, so example
questions or passages of one article never vouch for an answer in another.

Limits: similarity, not understanding. A question written to look
answerable from an article that does not answer it (SQuAD 2.0's
unanswerable questions) matches that article as well as answerable ones do;
telling them apart needs a reader model, which does not run here. The
background is English and general; a corpus on general topics (cooking,
say) is compared with questions close to its own.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from qa.errors import IndexCorruptError, RefusalModelError
from qa.settings import PROJECT_ROOT, Settings

# The refusal model's file format; bump when the signals or their reading change.
MODEL_FORMAT = 1
DEFAULT_MODEL_FILE = PROJECT_ROOT / "qa" / "fitted" / "refusal.json"
FIT_COMMAND = "python -m qa eval --suite --fit-refusal --refit-regimes plain --write --work DIR"
# What refusal weighs, in this order (Confidence.features). The first two are
# similarities, read against the background; "coverage" is the idf-weighted
# share of the question's words that the answer's passage holds, "unknown" the
# share the articles never use: both are shares of the question itself, so they
# need no background, nor does "contrast", a difference of two cosines. (Passage and answer cosines and the BM25 score were tried
# as well and transferred worse between corpora: docs/DESIGN.md, Refusal.)
#
# "contrast" is the answer's article's best sentence cosine minus the best other article's among the
# candidates (0 when every candidate is from that article): a question about a subject the corpus does
# not hold matches a neighbouring article about as well as the next one.
#
# "subject" is the share of the question's salient words (rare in general English) that the answer's article never
# uses (qa/answering/subject.py). No regime reads it (a question of a lay reader names things in words the pages do
# not use, and reading it refused those: docs/QUALITY.md, "Subject coverage"); the "strong match" label does.
#
# "unnamed" is what the plain regime's gate reads (REGIME_GATES): the most salient question word that names
# something the answer's article does not (no common word, misspelling or variant of the article's words), read
# only as far as the article does not stand out from the next (qa/answering/subject.py, `unnamed`). A question
# about a disease the corpus does not hold matches a neighbouring page sentence by sentence, which the weighed
# signals take for an answer; the gate refuses it whatever they say. A gate, not a weight: weighed beside the
# others, it moved the bar and SQuAD's off-topic questions were answered far more often, leave one corpus out
# (docs/QUALITY.md, "Unnamed subjects").
SIGNALS = ("sentence", "example", "coverage", "unknown", "contrast", "subject", "unnamed")
# What each regime reads. "plain" (articles nobody wrote example questions for: what a maintainer adds)
# reads contrast, not "unknown": unknown reads the question's wording, and people's questions use words
# the articles do not while crowd-written and templated ones do, so it did not transfer between corpora;
# contrast did (docs/QUALITY.md, refusal). "examples" (the seed articles, which overlap: contrast says
# little between them) keeps its signals.
REGIME_SIGNALS = {"examples": ("sentence", "example", "coverage", "unknown"),
                  "plain": ("sentence", "coverage", "contrast")}
# Per regime, the signal a gate reads: at or above the regime's fitted gate, refused (flatly: nothing on the
# subject), whatever the weighed signals say.
REGIME_GATES = {"plain": "unnamed"}
BACKGROUND_SIGNALS = ("sentence", "example")
REGIMES = ("examples", "plain")
# A group of labelled questions places the bar only with at least this many answerable ones.
MIN_ANSWERABLE_FOR_BAR = 20
# A spread below this would turn noise into many "spreads": an article of a few
# sentences, or one nothing resembles. Cosines lie in [-1, 1].
MIN_SPREAD = 0.02


@dataclass(frozen=True)
class Confidence:
    """How well the answer's article matches the question: the raw signals refusal reads."""

    article: str  # the article the chosen answer comes from
    sentence: float  # best sentence cosine among that article's candidate passages
    example: float  # closest example question answered in that article (0 without one)
    coverage: float  # idf-weighted share of the question's words the answer's passage holds
    unknown: float  # idf-weighted share of the question's words the articles never use
    has_examples: bool  # the article has example questions: the "examples" regime

    contrast: float = 0.0  # best sentence cosine over the best other article's among the candidates
    subject: float = 0.0  # salience-weighted share of the question's rare words the answer's article does not hold
    unnamed: float = 0.0  # a specific name the article does not hold, where it does not stand out (0 - 1)

    def features(self) -> list[float]:
        return [self.sentence, self.example, self.coverage, self.unknown, self.contrast, self.subject, self.unnamed]

    @property
    def regime(self) -> str:
        return "examples" if self.has_examples else "plain"


# ---------------------------------------------------------------------------- the background


def read_background(path: Path) -> list[str]:
    """The background questions, one per line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RefusalModelError(f"cannot read the background questions {path}: {exc}") from exc
    questions = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if len(questions) < 50:
        raise RefusalModelError(f"{path} holds {len(questions)} background questions; refusal needs at least 50")
    return questions


def _spans(owners: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Rows of each article, which come contiguous (articles are chunked one after the other)."""
    spans: dict[str, tuple[int, int]] = {}
    for row, owner in enumerate(owners):
        start, _ = spans.get(owner, (row, row))
        if owner in spans and spans[owner][1] != row:
            raise ValueError(f"rows of {owner} are not contiguous")
        spans[owner] = (start, row + 1)
    return spans


def _best_per_article(queries: np.ndarray, rows: np.ndarray, owners: Sequence[str],
                      block: int = 8192) -> dict[str, np.ndarray]:
    """Per article: each query's highest inner product with that article's rows."""
    best = {article: np.full(len(queries), -np.inf, dtype=np.float32) for article in dict.fromkeys(owners)}
    order = sorted(range(len(owners)), key=lambda row: owners[row])  # each article's rows together
    rows, owners = np.asarray(rows)[order], [owners[row] for row in order]
    spans = _spans(owners)
    for start in range(0, len(rows), block):  # blocks keep the product small at 100k passages
        scores = queries @ rows[start:start + block].T
        for article, (first, last) in spans.items():
            lo, hi = max(first, start), min(last, start + block)
            if lo < hi:
                np.maximum(best[article], scores[:, lo - start:hi - start].max(axis=1), out=best[article])
    return best


def _summary(values: np.ndarray) -> list[float]:
    """Median and a robust spread (the 10-90% range of a normal distribution is 2.563 sigmas)."""
    low, median, high = np.percentile(values, [10, 50, 90])
    return [round(float(median), 5), round(max(float(high - low) / 2.563, MIN_SPREAD), 5)]


def background_statistics(background_vectors: np.ndarray, sentence_sources: Sequence[str],
                          answer_vectors: np.ndarray, question_sources: Sequence[str],
                          question_vectors: np.ndarray) -> dict[str, dict[str, list[float]]]:
    """Per article and signal: [median, spread] of how well the background questions match it.

    `answer_vectors`: the sentences' vectors as answer choice compares them, with the article of each.
    `question_sources`: the article of each example question. Articles without example questions
    get no "example" statistic.
    """
    sentence = _best_per_article(background_vectors, answer_vectors, sentence_sources)
    example = (_best_per_article(background_vectors, question_vectors, question_sources)
               if len(question_vectors) else {})
    stats = {}
    for article, best in sentence.items():
        stats[article] = {"sentence": _summary(best)}
        if article in example:
            stats[article]["example"] = _summary(np.maximum(example[article], 0.0))
    return stats


def relative_signals(confidence: Confidence, statistics: Mapping[str, Mapping[str, Sequence[float]]]) -> list[float]:
    """The signals in spreads above the background of the answer's article; the two shares as they are."""
    article = statistics.get(confidence.article)
    if article is None:
        raise IndexCorruptError(f"the index has no background statistics for {confidence.article}")
    out = []
    for name, value in zip(SIGNALS, confidence.features()):
        if name not in BACKGROUND_SIGNALS:
            out.append(value)
        elif name not in article:  # no example questions for this article
            out.append(0.0)
        else:
            median, spread = article[name]
            out.append((value - median) / spread)
    return out


# ---------------------------------------------------------------------------- the fitted model


@dataclass(frozen=True)
class RegimeModel:
    weights: dict[str, float]  # by signal name
    intercept: float
    bar: float  # answer when weights . signals + intercept reaches it
    gate: float = math.inf  # ... and the gate's signal (REGIME_GATES) stays below this

    def score(self, signals: Sequence[float]) -> float:
        return float(sum(self.weights.get(name, 0.0) * value for name, value in zip(SIGNALS, signals))
                     + self.intercept)

    def gated(self, signals: Sequence[float], regime: str) -> bool:
        """Refused by the regime's gate, whatever the score (False when the regime has none)."""
        name = REGIME_GATES.get(regime)
        at = SIGNALS.index(name) if name is not None else len(signals)
        return at < len(signals) and signals[at] >= self.gate

    def margin(self, signals: Sequence[float], regime: str) -> float:
        """The score over the bar; -inf when gated (a flat refusal: no "may help")."""
        return -math.inf if self.gated(signals, regime) else self.score(signals) - self.bar

    def to_json(self) -> dict:
        """As refusal.json holds it (and `refusal_key` hashes it): the gate only when the regime has one."""
        return {"weights": self.weights, "intercept": self.intercept, "bar": self.bar,
                **({"gate": self.gate} if math.isfinite(self.gate) else {})}


@dataclass(frozen=True)
class RefusalModel:
    model: str  # the embedding model it was fitted for (its tuned copies included)
    regimes: dict[str, RegimeModel]
    fitted_on: tuple[dict, ...]  # what each regime was fitted on
    path: Path | None = None

    def decide(self, confidence: Confidence, statistics) -> tuple[bool, float]:
        """(answer?, the margin over the bar: negative when refused)."""
        margin = self.regimes[confidence.regime].margin(relative_signals(confidence, statistics), confidence.regime)
        return margin >= 0, margin

    def to_json(self, extra: Mapping | None = None) -> dict:
        return {"format": MODEL_FORMAT, "signals": list(SIGNALS), "model": self.model,
                "regimes": {name: r.to_json() for name, r in self.regimes.items()},
                "fitted_on": list(self.fitted_on), "command": FIT_COMMAND, **(extra or {})}

    def save(self, path: Path, extra: Mapping | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(extra), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)


def answer_everything(model: str) -> RefusalModel:
    """A refusal model that never refuses: what fitting asks with, to see every question's signals."""
    return RefusalModel(model, {name: RegimeModel({}, 0.0, -np.inf) for name in REGIMES}, ())


def load_model(path: Path, model: str) -> RefusalModel:
    """The fitted refusal model in `path`, checked: its format, its signals, and the embedding model."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        # Weights are read by name: a model fitted before a signal was added reads as weighing it 0.
        if data.get("format") != MODEL_FORMAT or not set(data.get("signals") or ["?"]) <= set(SIGNALS):
            raise RefusalModelError(
                f"the refusal model {path} has format {data.get('format')} with signals {data.get('signals')}; "
                f"this program reads format {MODEL_FORMAT} with {list(SIGNALS)}; refit it with: {FIT_COMMAND}")
        if data.get("model") != model:
            raise RefusalModelError(
                f"the refusal model {path} was fitted for the embedding model {data.get('model')!r}, not "
                f"{model!r}; refit it with: {FIT_COMMAND} --model {model}")
        regimes = {name: RegimeModel({k: float(v) for k, v in r["weights"].items()}, float(r["intercept"]),
                                     float(r["bar"]), float(r.get("gate", math.inf)))
                   for name, r in data["regimes"].items()}
    except FileNotFoundError:
        raise RefusalModelError(f"no refusal model at {path}; fit one with: {FIT_COMMAND}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RefusalModelError(f"the refusal model {path} cannot be read ({exc}); refit it with: "
                                f"{FIT_COMMAND}") from exc
    if set(regimes) != set(REGIMES) or any(set(r.weights) - set(SIGNALS) for r in regimes.values()):
        raise RefusalModelError(f"the refusal model {path} does not hold the regimes {REGIMES}; refit it with: "
                                f"{FIT_COMMAND}")
    return RefusalModel(data["model"], regimes, tuple(data.get("fitted_on", ())), Path(path))


# ---------------------------------------------------------------------------- the labels' bars

LABELS_FORMAT = 2
DEFAULT_LABELS_FILE = PROJECT_ROOT / "qa" / "fitted" / "labels.json"
LABELS_COMMAND = "python -m qa eval --suite --fit-labels --work DIR"


def refusal_key(model: RefusalModel) -> str:
    """A short hash of a refusal model's weights and bars: the label bars are in its margins' units."""
    from qa.files import sha256_bytes

    regimes = {name: r.to_json() for name, r in sorted(model.regimes.items())}
    return sha256_bytes(json.dumps(regimes, sort_keys=True).encode("utf-8"))[:16]


@dataclass(frozen=True)
class Agreement:
    """Signals independent of refusal's margin on how clearly one answer wins, for the "strong match" label.

    A margin says the answer's article matches the question; it does not say the sentence chosen is the one that
    answers (a page of one disease matches every question on it, and the wrong section's sentence can win).
    """

    lead: float  # the answer sentence's final score minus the best of any other passage's sentences
    dense_first: bool  # the answer's passage is the first candidate by cosine with the question
    lexical_first: bool  # ... and by BM25
    token_match: float  # the answer sentence's token match (qa/answering/token_match.py); 0 when not computed
    # how much better the answer's section heading (with its article's title) fits the question than the best other
    # section of the same article among the candidates (token late interaction); 0 when none other is a candidate
    heading: float = 0.0

    def features(self) -> tuple[float, ...]:
        """In AGREEMENT order: what a suite record keeps."""
        return (self.lead, float(self.dense_first), float(self.lexical_first), self.token_match, self.heading)


AGREEMENT = ("lead", "dense_first", "lexical_first", "token_match", "heading")
# The Agreement signals the "strong match" label has bars on (fitted: qa/evaluation/suite.py, fit_labels); the
# others are recorded for study. Why these: docs/QUALITY.md, "Strong match that transfers".
AGREEMENT_BARS = ("token_match", "heading")


@dataclass(frozen=True)
class LabelBars:
    """Where the plain labels change, per regime (fitted: qa/evaluation/suite.py, fit_labels).

    - strong: an answer's passage is a "strong match" when refusal's margin reaches it, the answer sentence's
      cosine reaches `strong_cosine` and each of the answer's Agreement signals named in `strong_agreement`
      reaches its bar; else a "partial match";
    - may_help: a refused question's closest passages are shown as "may help" at or above it
      (it is on the subject, no sentence answers it), else the refusal is flat.
    """

    strong: dict[str, float]
    may_help: dict[str, float]
    refusal: str = ""  # refusal_key of the model they were fitted with
    path: Path | None = None
    # ... and a "strong match" also needs the answer sentence's cosine with the question to reach this
    strong_cosine: dict[str, float] = field(default_factory=dict)
    # ... and each Agreement signal named (AGREEMENT_BARS) to reach its bar: {regime: {signal: bar}}
    strong_agreement: dict[str, dict[str, float]] = field(default_factory=dict)

    def is_strong(self, regime: str, margin: float, cosine: float, subject: float = 0.0,
                  subject_at_most: float = math.inf, agreement: "Agreement | None" = None) -> bool:
        """`subject`: the answer's Confidence.subject; a "strong match" also needs it at most `subject_at_most`
        (Settings.strong_match_subject: a choice, not fitted). `agreement`: the answer's Agreement; without one
        (no token vectors), no bar on it is reached."""
        bars = self.strong_agreement.get(regime, {})
        if any(bar > -math.inf for bar in bars.values()) and agreement is None:
            return False
        return (margin >= self.strong[regime] and cosine >= self.strong_cosine.get(regime, -1.0)
                and subject <= subject_at_most
                and all(getattr(agreement, name) >= bar for name, bar in bars.items() if bar > -math.inf))

    def to_json(self, extra: Mapping | None = None) -> dict:
        return {"format": LABELS_FORMAT, "refusal": self.refusal, "strong": self.strong,
                "strong_cosine": self.strong_cosine, "strong_agreement": _finite(self.strong_agreement),
                "may_help": self.may_help, "command": LABELS_COMMAND,
                **(extra or {})}

    def save(self, path: Path, extra: Mapping | None = None) -> None:
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(extra), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)


def load_labels(path: Path, refusal: RefusalModel) -> LabelBars | None:
    """The fitted label bars in `path`, or None when there are none or they were fitted with another refusal
    model (the labels then fall back to Settings.strong_match_margin and no "may help")."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != LABELS_FORMAT or data.get("refusal") != refusal_key(refusal):
            return None
        bars = LabelBars({k: float(v) for k, v in data["strong"].items()},
                         {k: float(v) for k, v in data["may_help"].items()}, data["refusal"], Path(path),
                         {k: float(v) for k, v in data.get("strong_cosine", {}).items()},
                         {k: {name: float(bar) for name, bar in bars.items()}
                          for k, bars in data.get("strong_agreement", {}).items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return bars if set(bars.strong) == set(REGIMES) and set(bars.may_help) == set(REGIMES) else None


def _finite(bars: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """The agreement bars as JSON holds them: a bar that asks nothing (-inf) is left out."""
    return {regime: {name: bar for name, bar in named.items() if bar > -math.inf} for regime, named in bars.items()}


@dataclass(frozen=True)
class LabelledSignals:
    """One labelled question's relative signals, for fitting."""

    group: str  # the question set and setup it came from: each group counts the same
    regime: str
    signals: tuple[float, ...]
    answerable: bool


def fit(rows: Iterable[LabelledSignals], model: str, wrongly_refused: float = Settings.refusal_wrongly_refused,
        regularisation: float = 1.0, keep: RefusalModel | None = None, keep_regimes: Sequence[str] = (),
        gate_wrongly_refused: float = Settings.refusal_gate_wrongly_refused) -> RefusalModel:
    """Per regime: a logistic regression of answerable on the signals, each group weighing the same;
    the bar placed so that no group refuses more than `wrongly_refused` of its answerable questions.
    `keep_regimes`: regimes taken as they are from `keep` instead of refitted. A regime with a gate
    (REGIME_GATES) gets it fitted to refuse at most `gate_wrongly_refused` of any group's answerable questions."""
    from sklearn.linear_model import LogisticRegression

    rows = list(rows)
    regimes, fitted_on = {}, []
    for regime in REGIMES:
        if regime in keep_regimes and keep is not None:
            regimes[regime] = keep.regimes[regime]
            fitted_on += [f for f in keep.fitted_on if isinstance(f, dict) and f.get("regime") == regime]
            continue
        mine = [r for r in rows if r.regime == regime]
        names = list(REGIME_SIGNALS[regime])
        columns = [SIGNALS.index(s) for s in names]
        features = np.array([[r.signals[i] for i in columns] for r in mine])
        labels = np.array([r.answerable for r in mine])
        if len(mine) == 0 or labels.all() or not labels.any():
            raise ValueError(f"fitting the {regime!r} regime needs answerable and unanswerable questions")
        groups = [r.group for r in mine]
        sizes = {g: groups.count(g) for g in set(groups)}
        weight = np.array([len(mine) / (len(sizes) * sizes[g]) for g in groups])
        fitted = LogisticRegression(C=regularisation, max_iter=10_000).fit(features, labels, sample_weight=weight)
        coefficients = {name: round(float(w), 4) for name, w in zip(names, fitted.coef_[0])}
        intercept = round(float(fitted.intercept_[0]), 4)
        regime_model = RegimeModel(coefficients, intercept, 0.0)
        bars = []
        for group in sorted(sizes):
            scores = np.sort([regime_model.score(r.signals) for r in mine if r.group == group and r.answerable])
            if len(scores) >= MIN_ANSWERABLE_FOR_BAR:  # a share of a handful is no estimate
                bars.append(float(scores[int(wrongly_refused * len(scores))]))
        bar = float(np.floor(min(bars) * 1000) / 1000)  # rounded down: the answerable question on it stays answered
        gate = fit_gate(mine, regime, gate_wrongly_refused)
        regimes[regime] = RegimeModel(coefficients, intercept, bar, gate)
        fitted_on.append({"regime": regime, "groups": {g: {"questions": sizes[g],
                                                           "answerable": sum(r.answerable for r in mine
                                                                             if r.group == g)}
                                                       for g in sorted(sizes)},
                          "wrongly_refused_at_most": wrongly_refused,
                          **({"gate_wrongly_refused_at_most": gate_wrongly_refused} if math.isfinite(gate) else {})})
    return RefusalModel(model, regimes, tuple(fitted_on))


def fit_gate(rows: Sequence[LabelledSignals], regime: str, wrongly_refused: float) -> float:
    """The regime's gate: the lowest value of its gate signal (REGIME_GATES) at which no group of at least
    MIN_ANSWERABLE_FOR_BAR answerable questions has more than `wrongly_refused` of them at or above it (the gate
    alone; the bar is placed on its own rule). inf when the regime has no gate."""
    name = REGIME_GATES.get(regime)
    if name is None:
        return math.inf
    at = SIGNALS.index(name)
    gates = []
    for group in sorted({r.group for r in rows}):
        # (records of a run before the signal existed lack it: never gated)
        values = np.sort([r.signals[at] if len(r.signals) > at else 0.0 for r in rows
                          if r.group == group and r.answerable])
        if len(values) >= MIN_ANSWERABLE_FOR_BAR:
            allowed = int(wrongly_refused * len(values))  # this many may reach the gate
            # just above the highest value that must stay answered, rounded up to the file's precision
            gates.append(float(np.ceil((values[len(values) - 1 - allowed] + 1e-6) * 1000) / 1000))
    return max(gates) if gates else math.inf


__all__ = ["Confidence", "RefusalModel", "RegimeModel", "LabelledSignals", "SIGNALS", "background_statistics",
           "relative_signals", "load_model", "answer_everything", "fit", "fit_gate", "read_background", "REGIME_GATES", "DEFAULT_MODEL_FILE",
           "FIT_COMMAND", "LabelBars", "load_labels", "refusal_key", "DEFAULT_LABELS_FILE"]
