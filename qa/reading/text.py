"""Small text tools shared by the stages: sentence splitting and word tokens.

Owns: where a sentence ends (so chunks never cut one and answers quote one
whole), and the word tokens used by the lexical index, by follow-up
detection and by answer scoring, so all three agree on what a "word" is.

Limits: the splitter is rule-based English. It knows common abbreviations
("e.g.", "et al.", "Dr."), initials ("C.J.A.M.") and decimals ("0.5 mg/kg"),
and splits only before a capital, digit or opening quote. A sentence that
ends without punctuation ends with its line.
"""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

_ABBREVIATIONS = {
    "e.g", "i.e", "al", "etc", "vs", "dr", "mr", "mrs", "ms", "st", "no", "fig",
    "approx", "u.s", "u.k", "jr", "sr", "prof", "inc", "ltd", "co", "ca",
}

# A sentence end: terminal punctuation, optional closing quotes/brackets,
# whitespace, then something that can open a sentence.
_BOUNDARY = re.compile(r"([.!?…]+[\"”’)\]]*)(\s+)(?=[A-Z0-9“\"(‘•\-])")


def split_sentences(text: str) -> list[str]:
    """Split one line of prose into sentences, keeping their exact text."""
    text = text.strip()
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end(1)
        before = text[start:match.start(1)]
        last_word = before.rsplit(None, 1)[-1].lower() if before.split() else ""
        last_word = last_word.lstrip("(“\"")
        if match.group(1).startswith(".") and (
            last_word in _ABBREVIATIONS
            or re.fullmatch(r"(?:[a-z]\.)*[a-z]", last_word)  # initials: "C.J.A.M"
        ):
            continue
        sentences.append(text[start:end].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


# Function words: dropped from lexical matching. Negations are kept out of
# this list on purpose: they carry the answer to yes/no questions.
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been
before being below between both but by can could did do does doing down during
each few for from further had has have having he her here hers herself him
himself his how i if in into is it its itself just let me more most my myself
of off on once only or other our ours ourselves out over own same she should so
some such than that the their theirs them themselves then there these they this
those through to too under until up very was we were what when where which while
who whom why will with would you your yours yourself yourselves also may might
must shall s t d ll m re ve get got make many much one ones
""".split())

# Words that point back at an earlier turn of the conversation.
ANAPHORA = frozenset("it its it's this that these those they them their there he she one".split())

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """Lower-case word tokens, apostrophes normalised, nothing removed."""
    return _WORD.findall(text.lower().replace("’", "'").replace("‘", "'"))


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def content_terms(text: str) -> list[str]:
    """Stemmed content words: the tokens of the lexical index and overlap scores."""
    kept = [w.split("'")[0] for w in words(text) if w not in STOPWORDS]
    kept = [w for w in kept if len(w) > 1 and w not in STOPWORDS]
    return _stemmer().stemWords(kept)


def normalise_space(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
