"""Stage 1: raw article files -> clean, structured articles.

Owns: which files of the corpus folder are articles, decoding them, removing
web boilerplate (calls to action, comment forms, category footers, phone
numbers, bare URLs), and finding each article's title and section headings.
The files stay exactly as they were downloaded; all cleaning happens here,
in code, so a maintainer can drop new raw articles into the folder.

Input: `.txt` (web text: headings are short title-like lines or question
lines, bullets start with "•", "-" or "*") and `.md` (`#` headings). Any other
file, and any file that is not UTF-8 text, is skipped with a reason.

Limits: heading detection is a heuristic on line shape (short, no closing
full stop). A long heading is read as a paragraph; a short slogan-like line
as a heading. Boilerplate removal is a list of patterns seen in such pages,
not a general web-page cleaner.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from qa.errors import CorpusError
from qa.text import split_sentences

ARTICLE_SUFFIXES = (".txt", ".md")
INTRO_HEADING = "Introduction"

# Whole lines that are page furniture, not article text.
_BOILERPLATE_LINES = [re.compile(p, re.IGNORECASE) for p in (
    r"leave a (comment|reply)",
    r"verify (your )?insurance( now)?",
    r"get your free sample",
    r"your email address will not be published\.?.*",
    r"required fields are marked.*",
    r"this (article|post) is in the category\b.*",
    r"(share|tweet|print|email|pin)( (this|it))?( (article|post|page))?:?",
    r"(related (posts|articles)|read more|table of contents|skip to content)",
    r"(click here|subscribe|sign up)\b.*",
    r"(post comment|save my name, email.*)",
    r"(posted|published|updated|written|medically reviewed) (on|by)\b.{0,80}",
)]

# Sentences that point at a link or a sales line. Removed sentence by sentence
# so the rest of their paragraph survives.
_BOILERPLATE_SENTENCES = [re.compile(p, re.IGNORECASE) for p in (
    r".*\b(visit|check out|see|click|read) (this|here)\b( (resource|article|study|informative article|link|page|guide))?\W*$",
    r".*\bhelpline\b.*",
    r".*\b(call|dial|text|phone|contact) us\b.*",
)]

# A North-American style phone number: a line offering one is a call to action.
_PHONE = re.compile(r"(\+?1[\s.-]?)?\(?\b\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}\b")
_URL = re.compile(r"\s*\b(?:https?://|www\.)\S+")
_BULLET = re.compile(r"^\s*(?:[•●▪◦‣∙·*+]|-(?=\s)|–(?=\s))\s*")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_NUMBERED = re.compile(r"^\d{1,2}[.)]\s+")


@dataclass(frozen=True)
class Block:
    """A paragraph (`lead` only) or a list (optional `lead` line plus items)."""

    lead: str
    items: tuple[str, ...] = ()

    @property
    def is_list(self) -> bool:
        return bool(self.items)


@dataclass(frozen=True)
class Section:
    heading: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Article:
    source: str  # file name inside the corpus folder
    title: str
    sections: tuple[Section, ...]
    sha256: str  # of the raw bytes: the index's staleness check compares it


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


@dataclass(frozen=True)
class Corpus:
    articles: tuple[Article, ...]
    skipped: tuple[Skipped, ...]
    hashes: dict[str, str]  # every candidate file, read or skipped


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def corpus_files(folder: Path) -> list[Path]:
    """Every regular file of the folder (not hidden), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"corpus folder {folder} does not exist")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def corpus_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every article file, for the staleness check; unreadable files are left out."""
    hashes = {}
    for path in corpus_files(folder):
        if path.suffix.lower() in ARTICLE_SUFFIXES:
            try:
                hashes[path.name] = file_sha256(path.read_bytes())
            except OSError:
                continue
    return hashes


def load_corpus(folder: Path, max_bytes: int | None = None) -> Corpus:
    """Read every article of `folder`; files that cannot be used are skipped with a reason."""
    articles: list[Article] = []
    skipped: list[Skipped] = []
    hashes: dict[str, str] = {}
    seen_bodies: dict[str, str] = {}
    for path in corpus_files(folder):
        if path.suffix.lower() not in ARTICLE_SUFFIXES:
            skipped.append(Skipped(path.name, f"not an article file (only {', '.join(ARTICLE_SUFFIXES)} are read)"))
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            skipped.append(Skipped(path.name, f"cannot be read: {exc.strerror or exc}"))
            continue
        hashes[path.name] = file_sha256(data)
        if max_bytes is not None and len(data) > max_bytes:
            skipped.append(Skipped(path.name, f"{len(data) / 1e6:.1f} MB is over the {max_bytes / 1e6:.1f} MB limit "
                                              f"for one article (setting max_article_bytes)"))
            continue
        try:
            article = parse_article(decode(data), path.name, hashes[path.name])
        except ValueError as exc:
            skipped.append(Skipped(path.name, str(exc)))
            continue
        body = "\n".join(b.lead + "\n".join(b.items) for s in article.sections for b in s.blocks)
        body_hash = file_sha256(body.encode())
        if body_hash in seen_bodies:
            skipped.append(Skipped(path.name, f"same text as {seen_bodies[body_hash]}"))
            continue
        seen_bodies[body_hash] = path.name
        articles.append(article)
    return Corpus(tuple(articles), tuple(skipped), hashes)


def decode(data: bytes) -> str:
    """UTF-8 text or ValueError with the reason; binary files are refused."""
    if b"\x00" in data[:65536]:
        raise ValueError("binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (bad byte at offset {exc.start})") from None
    controls = sum(1 for ch in text[:65536] if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    if controls > 0.01 * max(1, min(len(text), 65536)):
        raise ValueError("binary file, not text (many control characters)")
    return text


def parse_article(text: str, source: str, sha256: str = "") -> Article:
    """Clean one article's text and cut it into titled sections of blocks."""
    markdown = source.lower().endswith(".md")
    lines = [clean_line(line) for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError("no article text after removing boilerplate")

    title = ""
    sections: list[tuple[str, list[Block]]] = [(INTRO_HEADING, [])]
    for line in lines:
        heading = _heading_text(line, markdown)
        if heading is not None:
            if not title:
                title = heading
                continue
            if _same(heading, title) and not any(blocks for _, blocks in sections):
                continue  # the title printed twice at the top of the page
            sections.append((heading, []))
            continue
        blocks = sections[-1][1]
        bullet = _BULLET.match(line)
        if bullet:
            item = line[bullet.end():].strip()
            if blocks and blocks[-1].is_list:
                blocks[-1] = Block(blocks[-1].lead, blocks[-1].items + (item,))
            elif blocks and not blocks[-1].is_list and blocks[-1].lead.endswith(":"):
                blocks[-1] = Block(blocks[-1].lead, (item,))  # the list keeps its lead-in
            else:
                blocks.append(Block("", (item,)))
        else:
            if not title:
                title = _title_from_name(source)
            blocks.append(Block(line))

    kept = tuple(Section(h, tuple(b)) for h, b in sections if b)
    if not kept:
        raise ValueError("no article text after removing boilerplate")
    return Article(source=source, title=title or _title_from_name(source), sections=kept, sha256=sha256)


def clean_line(line: str) -> str:
    """One line without URLs and boilerplate sentences; '' when nothing is left."""
    line = unicodedata.normalize("NFC", line)
    line = line.replace("\u00a0", " ").replace("\u200b", "").replace("\ufeff", "")
    line = "".join(ch for ch in line if ch == "\t" or unicodedata.category(ch) != "Cc")
    line = _URL.sub("", line)
    line = re.sub(r"[ \t]+", " ", line).strip()
    if not line or not re.search(r"\w", line):
        return ""
    bare = line.rstrip(".!").strip()
    if any(p.fullmatch(bare) for p in _BOILERPLATE_LINES) or _PHONE.search(line):
        return ""
    bullet = _BULLET.match(line)
    marker, body = (line[:bullet.end()], line[bullet.end():]) if bullet else ("", line)
    sentences = [s for s in split_sentences(body) if not any(p.fullmatch(s) for p in _BOILERPLATE_SENTENCES)]
    return (marker + " ".join(sentences)).strip() if sentences else ""


def _heading_text(line: str, markdown: bool) -> str | None:
    """The heading a line stands for, or None when it is body text."""
    if markdown:
        match = _MD_HEADING.match(line)
        return match.group(2).strip() if match and match.group(2).strip() else None
    if _BULLET.match(line) or len(line) > 110 or len(line.split()) > 16:
        return None
    if line[-1] in ".,;:!\"”'’" or not re.search(r"[A-Za-z]{2}", line):
        return None
    if len(split_sentences(_NUMBERED.sub("", line))) > 1:
        return None  # two sentences on one line: prose, however short
    return line


def _same(a: str, b: str) -> bool:
    norm = lambda s: re.sub(r"\W+", " ", s).strip().lower()  # noqa: E731
    return norm(a) == norm(b)


def _title_from_name(source: str) -> str:
    stem = Path(source).stem
    words = re.sub(r"[_\-]+", " ", stem).split()
    return " ".join(w if w.isupper() else w.capitalize() for w in words) or source
