"""Stage 2: articles -> chunks, the passages that are embedded and searched.

Owns the rules of what a passage is:
- a chunk never cuts a sentence and never spans two sections;
- a bullet list stays with its lead-in line (a list too long for one chunk is
  split between items, each part repeating the lead-in);
- neighbouring chunks of a section overlap by `overlap_sentences` units, so
  an answer at a boundary is whole in one chunk;
- the article title and section heading travel with every chunk and are part
  of the text that is embedded and lexically indexed (`Chunk.index_text`).

Each chunk also lists its sentences: the answer stage picks one of them.

Limits: sizes are in characters, not model tokens; a single sentence longer
than `chunk_chars` becomes a chunk of its own rather than being cut.
"""

from __future__ import annotations

from dataclasses import dataclass

from qa.reading.corpus import Article, Block, Section
from qa.settings import Settings
from qa.reading.text import split_sentences


@dataclass(frozen=True)
class Chunk:
    source: str
    title: str
    section: str
    text: str  # the passage as shown: lines of the article, verbatim
    sentences: tuple[str, ...]  # answer candidates, each verbatim in `text`

    @property
    def index_text(self) -> str:
        """What is embedded and lexically indexed: title and section give context."""
        return f"{self.title}\n{self.section}\n{self.text}"


@dataclass(frozen=True)
class _Unit:
    """The smallest piece a chunk is built from: a sentence, or a list item."""

    text: str
    block: int  # index of the block it came from: units of one block share a line
    kind: str  # "sentence" | "lead" | "item"


def chunk_articles(articles: list[Article] | tuple[Article, ...], settings: Settings) -> list[Chunk]:
    return [chunk for article in articles for chunk in chunk_article(article, settings)]


def chunk_article(article: Article, settings: Settings) -> list[Chunk]:
    chunks: list[Chunk] = []
    for section in article.sections:
        for units in _pack(_section_groups(section), settings):
            chunks.append(_make_chunk(article, section, units))
    return chunks


def _section_groups(section: Section) -> list[list[_Unit]]:
    """Units in groups that should stay together: one sentence, or a list with its lead-in."""
    groups: list[list[_Unit]] = []
    for number, block in enumerate(section.blocks):
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
    sentences = tuple(s for unit in units for s in split_sentences(unit.text))
    return Chunk(article.source, article.title, section.heading, "\n".join(lines), sentences)


__all__ = ["Chunk", "chunk_articles", "chunk_article", "Block"]
