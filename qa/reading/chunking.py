"""Stage 2: articles -> chunks, the passages that are embedded and searched.

Owns the rules of what a passage is:
- a chunk never cuts a sentence and never spans two sections;
- a bullet list stays with its lead-in line (a list too long for one chunk is
  split between items, each part repeating the lead-in);
- neighbouring chunks of a section overlap by `overlap_sentences` units, so
  an answer at a boundary is whole in one chunk;
- the article title and section heading travel with every chunk and are part
  of the text that is embedded and lexically indexed (`Chunk.index_text`);
- a section shorter than `section_min_chars` (a structured abstract's
  "Setting: England and Wales.", an FAQ's one-line answer) shares a passage
  with its neighbouring sections while they fit in one: alone, its passage is
  mostly the title and heading every passage of the article carries, so every
  question on the article matches all of them alike. Each section after the
  first keeps its heading as a line of the passage, and each sentence knows
  its own section (`Chunk.section_of`). Not in an article with example
  questions (`keep_sections`): its questions point at sections, and a
  passage of several would be lifted by any of theirs (measured: the seed
  question sets lost up to 2 answers of 52 when theirs shared passages).

Each chunk also lists its sentences: the answer stage picks one of them.

Limits: sizes are in characters, not model tokens; a single sentence longer
than `chunk_chars` becomes a chunk of its own rather than being cut. Only
whole sections share a passage: a short section beside a long one that
fills its passages stays alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

from qa.reading.article import Article, Block, Section  # not qa/reading/corpus.py: its readers load only to read
from qa.settings import Settings
from qa.reading.text import split_sentences


@dataclass(frozen=True)
class Chunk:
    source: str
    title: str
    section: str
    text: str  # the passage as shown: lines of the article, verbatim
    sentences: tuple[str, ...]  # answer candidates, each verbatim in `text`
    # Each sentence's own section heading, when the passage holds several short sections (`section` is
    # the first's; the others' headings are lines of `text`); empty when every sentence is `section`'s.
    sentence_sections: tuple[str, ...] = ()

    @property
    def index_text(self) -> str:
        """What is embedded and lexically indexed: title and section give context."""
        return f"{self.title}\n{self.section}\n{self.text}"

    def section_of(self, sentence: str) -> str:
        """The heading of the section `sentence` (one of `sentences`) is in."""
        if self.sentence_sections and sentence in self.sentences:
            return self.sentence_sections[self.sentences.index(sentence)]
        return self.section


@dataclass(frozen=True)
class _Unit:
    """The smallest piece a chunk is built from: a sentence, or a list item."""

    text: str
    block: int  # index of the block it came from: units of one block share a line
    kind: str  # "sentence" | "lead" | "item" | "heading" (a later section's, in a passage of short sections)


def chunk_articles(articles: list[Article] | tuple[Article, ...], settings: Settings,
                   keep_sections: Collection[str] = ()) -> list[Chunk]:
    """Every article's chunks; `keep_sections`: the articles (by source) whose sections never share a passage,
    those with example questions (qa/models/question_bank.py: `bank_sources`)."""
    return [chunk for article in articles
            for chunk in chunk_article(article, settings, article.source in keep_sections)]


def chunk_article(article: Article, settings: Settings, keep_sections: bool = False) -> list[Chunk]:
    chunks: list[Chunk] = []
    runs = [[section] for section in article.sections] if keep_sections else _runs(article.sections, settings)
    for run in runs:
        if len(run) == 1:
            for units in _pack(_section_groups(run[0]), settings):
                chunks.append(_make_chunk(article, run[0], units))
            continue
        units, block = [], 0  # whole sections, each after the first opening with its heading
        for position, section in enumerate(run):
            if position:
                units.append(_Unit(section.heading, block, "heading"))
                block += 1
            groups = _section_groups(section, first_block=block)
            units += [u for group in groups for u in group]
            block += len(section.blocks)
        chunks.append(_make_chunk(article, run[0], units))
    return chunks


def _runs(sections: tuple[Section, ...], settings: Settings) -> list[list[Section]]:
    """The sections in runs that share a passage: a section joins the run before it when either is shorter
    than `section_min_chars` and the two fit in one passage (the heading as a line of it)."""
    runs: list[list[Section]] = []
    sizes: list[int] = []
    for section in sections:
        size = _size([u for group in _section_groups(section) for u in group])
        if runs and (sizes[-1] < settings.section_min_chars or size < settings.section_min_chars) \
                and sizes[-1] + len(section.heading) + 1 + size <= settings.chunk_chars:
            runs[-1].append(section)
            sizes[-1] += len(section.heading) + 1 + size
        else:
            runs.append([section])
            sizes.append(size)
    return runs


def _section_groups(section: Section, first_block: int = 0) -> list[list[_Unit]]:
    """Units in groups that should stay together: one sentence, or a list with its lead-in."""
    groups: list[list[_Unit]] = []
    for number, block in enumerate(section.blocks, first_block):
        if block.is_list:
            group = [_Unit(block.lead, number, "lead")] if block.lead else []
            group += [_Unit(item, number, "item") for item in block.items]
            groups.append(group)
        else:
            groups.extend([_Unit(s, number, "sentence")] for s in split_sentences(block.lead))
    return groups


def _size(units: list[_Unit]) -> int:
    """Characters the units take in the chunk's text: a list item is shown as "• item" on its own line."""
    return sum(len(u.text) + (3 if u.kind == "item" else 1) for u in units)


def _pack(groups: list[list[_Unit]], settings: Settings) -> list[list[_Unit]]:
    """Greedy packing of groups into chunks of at most `chunk_chars`."""
    limit = settings.chunk_chars
    chunks: list[list[_Unit]] = []
    current: list[_Unit] = []
    fresh = 0  # units in `current` that are not overlap from the previous chunk

    def close() -> None:
        nonlocal current, fresh
        if fresh:
            chunks.append(current)
            keep = settings.overlap_sentences
            current = current[-keep:] if keep else []
            # a list item carried over without its lead-in would read as a stray line
            current = [u for u in current if u.kind == "sentence"]
            fresh = 0

    for group in groups:
        for piece in _split_group(group, limit):
            if current and _size(current) + _size(piece) > limit:
                close()
                if current and _size(current) + _size(piece) > limit:
                    current = []  # the overlap alone would overflow: drop it
            current = current + piece
            fresh += len(piece)
    close()
    return chunks


def _split_group(group: list[_Unit], limit: int) -> list[list[_Unit]]:
    """A list too long for one chunk becomes parts, each starting with the lead-in."""
    if _size(group) <= limit or len(group) == 1:
        return [group]
    lead = [group[0]] if group[0].kind == "lead" else []
    items = group[len(lead):]
    parts: list[list[_Unit]] = []
    part: list[_Unit] = list(lead)
    for item in items:
        if len(part) > len(lead) and _size(part) + _size([item]) > limit:
            parts.append(part)
            part = list(lead)
        part.append(item)
    parts.append(part)
    return parts


def _make_chunk(article: Article, section: Section, units: list[_Unit]) -> Chunk:
    lines: list[str] = []
    last_block = None
    for unit in units:
        text = f"• {unit.text}" if unit.kind == "item" else unit.text
        if unit.kind == "sentence" and unit.block == last_block and lines:
            lines[-1] += " " + text  # sentences of one paragraph share its line
        else:
            lines.append(text)
        last_block = unit.block
    sentences: list[str] = []
    sections: list[str] = []
    heading = section.heading
    for unit in units:
        if unit.kind == "heading":
            heading = unit.text  # a heading is a line of the passage, never an answer
            continue
        for sentence in split_sentences(unit.text):
            sentences.append(sentence)
            sections.append(heading)
    several = any(h != section.heading for h in sections)
    return Chunk(article.source, article.title, section.heading, "\n".join(lines), tuple(sentences),
                 tuple(sections) if several else ())


__all__ = ["Chunk", "chunk_articles", "chunk_article", "Block"]
