"""Query expansion: the words people type -> the words the articles use.

Owns reading a synonyms file (qa/answering/synonyms.txt by default, the `synonyms_file`
setting) and expanding a question with it. The file uses Solr's explicit
mapping syntax, one rule per line:

    narcan, kloxxado => naloxone
    special k, ket => ketamine

Wherever a left-side word or phrase occurs in a question as whole words
(case-insensitive, longest phrase first, hyphens and spaces alike), its right
side is added right after it: "will narcan help" -> "will narcan (naloxone)
help". Nothing is removed, so a question the file does not know is searched
exactly as typed.

Why: the articles say "naloxone", "ketamine", "opioid withdrawal"; people
ask about "narcan", "special k", "dope sickness". A small embedding model
and BM25 both miss those links; a maintained list fixes them cheaply and
visibly, the way search engines ship synonym files.

Limits: no word sense: a left side is expanded wherever it occurs, so the
file must skip variants that are ordinary words with other meanings. The
list is written by hand from domain knowledge; extend it when articles on
new topics arrive (no rebuild needed: it is read when the engine opens).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from qa.errors import SettingsError


@dataclass(frozen=True)
class Expansion:
    typed: str  # the words found in the question, as typed
    adds: tuple[str, ...]  # the articles' words added beside them


@dataclass(frozen=True)
class Synonyms:
    rules: dict[str, tuple[str, ...]]  # normalised left side -> right side
    _pattern: re.Pattern | None

    @classmethod
    def empty(cls) -> "Synonyms":
        return cls({}, None)

    @classmethod
    def parse(cls, text: str, origin: str = "synonyms") -> "Synonyms":
        rules: dict[str, tuple[str, ...]] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.count("=>") != 1:
                raise SettingsError(f"{origin} line {number}: expected 'variant, variant => article term', "
                                    f"got {raw.strip()!r}")
            left, right = (side.strip() for side in line.split("=>"))
            variants = [_normal(v) for v in left.split(",") if v.strip()]
            targets = tuple(t.strip() for t in right.split(",") if t.strip())
            if not variants or not targets:
                raise SettingsError(f"{origin} line {number}: both sides of '=>' need at least one term")
            for variant in variants:
                # Several rules may name one variant: their terms add up, first seen first.
                known = rules.get(variant, ())
                rules[variant] = known + tuple(t for t in targets if t not in known)
        if not rules:
            return cls.empty()
        # Longest first, so "special k" wins over "k"; whole words only.
        alternatives = sorted(rules, key=lambda v: (-len(v), v))
        pattern = re.compile(r"(?<![\w'])(" + "|".join(_flexible(v) for v in alternatives) + r")(?![\w'])",
                             re.IGNORECASE)
        return cls(rules, pattern)

    @classmethod
    def load(cls, path: Path | None) -> "Synonyms":
        """The rules in `path`; none for None. A missing or malformed file is a SettingsError."""
        if path is None:
            return cls.empty()
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"cannot read the synonyms file {path}: {exc}") from exc
        return cls.parse(text, origin=str(path))

    def expand(self, text: str) -> tuple[str, tuple[Expansion, ...]]:
        """The text with the articles' words added after each known variant, and what was added."""
        if self._pattern is None:
            return text, ()
        found: list[Expansion] = []
        lowered = text.lower()

        def add(match: re.Match) -> str:
            typed = match.group(0)
            adds = tuple(t for t in self.rules[_normal(typed)]
                         if not re.search(r"(?<!\w)" + re.escape(t.lower()) + r"(?!\w)", lowered))
            if not adds:
                return typed  # the question already says it
            found.append(Expansion(typed, adds))
            return f"{typed} ({', '.join(adds)})"

        return self._pattern.sub(add, text), tuple(found)

    def canonical(self, text: str) -> str:
        """The text with each known variant replaced by its first article word: "how long does narcan
        last" -> "how long does naloxone last". For comparing questions with each other (the feedback
        report groups them), not for searching: search keeps what was typed."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: self.rules[_normal(match.group(0))][0], text)

    def __len__(self) -> int:
        return len(self.rules)


def _normal(phrase: str) -> str:
    """Lower case, with hyphens and runs of spaces as single spaces: 'K-Hole' == 'k hole'."""
    return " ".join(phrase.lower().replace("-", " ").split())


def _flexible(variant: str) -> str:
    """A regex for a normalised variant that also matches its hyphenated spellings."""
    return r"[\s-]+".join(re.escape(word) for word in variant.split(" "))


__all__ = ["Synonyms", "Expansion"]
