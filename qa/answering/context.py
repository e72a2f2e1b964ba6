"""What a reply shows around its answer sentence, so the quote can be read on its own.

Owns two rules, both on the passages of the index (the article's structure as
chunking kept it: a list is its lead-in line followed by "• item" lines, a
paragraph is one line; qa/reading/chunking.py):

- **the whole list**: when the answer is an item of a list, or the sentence
  that leads into one ("Common symptoms include:"), the reply shows the
  lead-in and every item, not one item of ten. (An answer that is an earlier
  sentence of the lead-in's paragraph stands on its own: "The short answer
  is no; ... Here's why:" shows the answer, not the list.) A list too long for one passage was
  split into parts that each repeat the lead-in, in passages that follow one
  another: the parts are joined again here;
- **the sentence before**: when the answer opens with a word that points back
  ("This increases the risk ...", "It", "They", "These"), the sentence before
  it in the same paragraph is shown too.

Everything returned is text of the article, verbatim: the reply stays a
quote. The answer itself is unchanged; this only adds what surrounds it.

It also says which sentences may be quoted together with an answer
(`neighbours`): the one just before and the one just after it in the same
section, in paragraph lines (a list's lines are shown as a whole list
instead), with no heading between; and whether the one after opens with a
caveat ("However, ...": `opens_with_caveat`). Answer choice
(qa/answering/answer.py) decides whether one of them is quoted.

Limits: one sentence back, never across a heading, a list or a paragraph
break (the sentence before a paragraph's first sentence is another topic as
often as not). A list without a lead-in that was split in parts is joined
only when the parts are neighbours in the same section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from qa.reading.chunking import Chunk
from qa.reading.text import split_sentences

BULLET = "• "  # how a passage writes a list item (qa/reading/chunking.py)
# Words that open a sentence which leans on the one before it.
_POINTS_BACK = re.compile(r"^[\"“‘(]?(?:this|that|these|those|it|its|it's|they|their|them|such|he|she|his|her)\b",
                          re.IGNORECASE)

# Words that open a sentence which qualifies or contradicts the one before it.
_CAVEAT = re.compile(r"^[\"“‘(]?(?:however|but|nevertheless|nonetheless|yet|still|that said|even so)\b", re.IGNORECASE)


@dataclass(frozen=True)
class ArticleList:
    """A list of the article: the sentence leading into it (None when it has none) and its items, verbatim."""

    lead: str | None
    items: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"lead": self.lead, "items": list(self.items)}


@dataclass(frozen=True)
class AnswerContext:
    """The article's text around an answer sentence, shown with it."""

    before: str | None = None  # the sentence the answer points back to
    list: ArticleList | None = None  # the whole list the answer is an item of, or leads into

    def __bool__(self) -> bool:
        return self.before is not None or self.list is not None

    def to_dict(self) -> dict:
        return {"before": self.before, "list": self.list.to_dict() if self.list else None}


def opens_with_caveat(sentence: str) -> bool:
    """Whether a sentence opens by qualifying the one before it ("However, ...", "But ...", "Nevertheless, ...")."""
    return bool(_CAVEAT.match(sentence.strip()))


def points_back(sentence: str) -> bool:
    """Whether a sentence opens with a word that refers to what came before ("This", "It", "They" ...)."""
    return bool(_POINTS_BACK.match(sentence.strip()))


def answer_context(chunks: Sequence[Chunk], position: int, sentence: str) -> AnswerContext:
    """The context of `sentence`, an answer taken from `chunks[position]`."""
    lines = chunks[position].text.split("\n")
    at = next((i for i, line in enumerate(lines) if sentence in line), None)
    if at is None:
        return AnswerContext()
    if lines[at].startswith(BULLET) or (_leads_into_list(lines, at) and sentence.rstrip().endswith(":")):
        return AnswerContext(list=_whole_list(chunks, position, at))
    if points_back(sentence):
        return AnswerContext(before=_sentence_before(chunks, position, lines[at], sentence))
    return AnswerContext()


def neighbours(chunk: Chunk, sentence: str) -> tuple[str | None, str | None]:
    """(before, after): the sentences next to `sentence` in `chunk` that can be quoted with it as one passage:
    of the same section, both in paragraph lines (neither a list's lead-in nor an item: a list answer shows
    its whole list), with no other line (a heading, a dropped line) between them. None where there is none."""
    sentences = chunk.sentences
    if sentence not in sentences:
        return None, None
    lines = chunk.text.split("\n")
    places = _line_of_each(lines, sentences)
    at = sentences.index(sentence)

    def joins(other: int) -> bool:
        if not 0 <= other < len(sentences):
            return False
        first, last = sorted((places[at], places[other]))
        return (first >= 0 and last - first <= 1 and not _list_line(lines, first) and not _list_line(lines, last)
                and chunk.section_of(sentences[other]) == chunk.section_of(sentence))
    return (sentences[at - 1] if joins(at - 1) else None), (sentences[at + 1] if joins(at + 1) else None)


def _line_of_each(lines: list[str], sentences: Sequence[str]) -> list[int]:
    """The line each sentence (in order) is on, read forward through `lines`; -1 for one not found."""
    places, line = [], 0
    for sentence in sentences:
        found = next((i for i in range(line, len(lines)) if sentence in lines[i]), -1)
        places.append(found)
        line = found if found >= 0 else line
    return places


def _list_line(lines: list[str], at: int) -> bool:
    return lines[at].startswith(BULLET) or _leads_into_list(lines, at)


def _leads_into_list(lines: list[str], at: int) -> bool:
    return (not lines[at].startswith(BULLET) and lines[at].rstrip().endswith(":")
            and at + 1 < len(lines) and lines[at + 1].startswith(BULLET))


def _list_span(lines: list[str], at: int) -> tuple[str | None, int, int]:
    """(lead-in, first item line, end) of the list holding line `at` (an item, or the lead-in)."""
    if not lines[at].startswith(BULLET):
        at += 1  # the lead-in: its list starts on the next line
    first = at
    while first > 0 and lines[first - 1].startswith(BULLET):
        first -= 1
    end = at
    while end < len(lines) and lines[end].startswith(BULLET):
        end += 1
    lead = lines[first - 1] if first > 0 and _leads_into_list(lines, first - 1) else None
    return lead, first, end


def _lead_in(line: str | None) -> str | None:
    """The sentence of a lead-in line that leads into the list: its last one ("Here are some key points:")."""
    return split_sentences(line)[-1] if line else None


def _items(lines: list[str]) -> list[str]:
    return [line[len(BULLET):] for line in lines]


def _whole_list(chunks: Sequence[Chunk], position: int, at: int) -> ArticleList:
    """The list around line `at` of chunks[position], with its parts in the neighbouring passages."""
    lines = chunks[position].text.split("\n")
    lead, first, end = _list_span(lines, at)
    items = _items(lines[first:end])
    here = chunks[position]
    # Earlier parts: this part opens its passage, and the passage before ends with a part of the same list.
    opens = first == (1 if lead else 0)
    back = position - 1
    while opens and back >= 0 and _same_section(chunks[back], here):
        earlier = chunks[back].text.split("\n")
        if not earlier[-1].startswith(BULLET):
            break
        their_lead, their_first, _ = _list_span(earlier, len(earlier) - 1)
        if their_lead != lead:
            break
        items = _items(earlier[their_first:]) + items
        opens = their_first == (1 if lead else 0)
        back -= 1
    # Later parts: this part closes its passage, and the next passage opens with the same list.
    closes = end == len(lines)
    ahead = position + 1
    while closes and ahead < len(chunks) and _same_section(chunks[ahead], here):
        later = chunks[ahead].text.split("\n")
        start = 1 if lead else 0
        if (lead and later[0] != lead) or len(later) <= start or not later[start].startswith(BULLET):
            break
        _, their_first, their_end = _list_span(later, start)
        items += _items(later[their_first:their_end])
        closes = their_end == len(later)
        ahead += 1
    return ArticleList(_lead_in(lead), tuple(dict.fromkeys(items)))  # an item repeated by overlap is shown once


def _same_section(a: Chunk, b: Chunk) -> bool:
    return a.source == b.source and a.section == b.section


def _sentence_before(chunks: Sequence[Chunk], position: int, line: str, sentence: str) -> str | None:
    """The sentence just before `sentence` in its paragraph (`line`), looking into the passage before
    when the answer opens this one (neighbouring passages share a sentence at their seam)."""
    chunk = chunks[position]
    mine = [s for s in chunk.sentences if s in line]
    at = mine.index(sentence) if sentence in mine else -1
    if at > 0:
        return mine[at - 1]
    if at == 0 and position > 0 and _same_section(chunks[position - 1], chunk):
        previous = chunks[position - 1]
        last_line = previous.text.split("\n")[-1]
        if sentence in last_line and not last_line.startswith(BULLET):  # the same paragraph, carried over
            theirs = [s for s in previous.sentences if s in last_line]
            if sentence in theirs and theirs.index(sentence) > 0:
                return theirs[theirs.index(sentence) - 1]
    return None


__all__ = ["AnswerContext", "ArticleList", "answer_context", "neighbours", "opens_with_caveat", "points_back", "BULLET"]
