"""Reader of plain text (`.txt`) and Markdown (`.md`) articles.

Owns: decoding (UTF-8 only; binary files are refused), web boilerplate
removal (calls to action, comment forms, category footers, phone numbers,
bare URLs: patterns seen in pages saved as text), re-flowing hard-wrapped
lines into paragraphs, and finding the title and section headings by the
shape of a line. The rules shared with the other readers (metadata lines,
reference lists) are applied by `qa.reading.article.ArticleBuilder`.

Web text has one paragraph per line: a heading is a short title-like line
or a question line, bullets start with "•", "-" or "*". Text copied out of a
PDF or a mailing list is hard-wrapped instead (a line break every ~70-100
characters, mid-sentence): such a file is recognised because most of its
long lines stop in mid-sentence, and its lines are joined into paragraphs
before headings are looked for. Markdown headings are `#` lines.

Limits: heading detection is a heuristic on line shape (short, no closing
full stop). A long heading is read as a paragraph; a short slogan-like line
as a heading. Re-flowing counts characters, so a proportional-font copy
with very uneven lines can keep a break inside a paragraph where the next
line starts with a capital. Boilerplate removal is a list of patterns seen
in such pages, not a general web-page cleaner.
"""

from __future__ import annotations

import re
import unicodedata

from qa.reading.article import Article, ArticleBuilder, is_metadata_line, starts_with_label
from qa.reading.text import split_sentences
from qa.settings import Settings

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
BULLET = re.compile(r"^\s*(?:[•●▪◦‣∙·*+]|-(?=\s)|–(?=\s))\s*")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_NUMBERED = re.compile(r"^\d{1,2}[.)]\s+")
_SENTENCE_END = (".", "!", "?", ":", ";", '"', "”", "'", "’")
# Characters of a file scanned for NUL bytes and control characters: enough to tell (time, not answers).
_SNIFF_CHARS = 65536


def decode(data: bytes, settings: Settings) -> str:
    """UTF-8 text or ValueError with the reason; binary files are refused."""
    if b"\x00" in data[:_SNIFF_CHARS]:
        raise ValueError("binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (bad byte at offset {exc.start})") from None
    controls = sum(1 for ch in text[:_SNIFF_CHARS] if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    if controls > settings.binary_control_share * max(1, min(len(text), _SNIFF_CHARS)):
        raise ValueError("binary file, not text (many control characters)")
    return text


def read_text(data: bytes, source: str, settings: Settings) -> Article:
    return parse_article(decode(data, settings), source, settings)


def read_markdown(data: bytes, source: str, settings: Settings) -> Article:
    return parse_article(decode(data, settings), source, settings, markdown=True)


def parse_article(text: str, source: str, settings: Settings, markdown: bool | None = None) -> Article:
    """Clean one article's text and cut it into titled sections of blocks, by `settings`' reading rules."""
    if markdown is None:
        markdown = source.lower().endswith(".md")
    raw = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    width = None if markdown else wrap_width(raw, settings)
    if width:
        raw = reflow(raw, width, settings)
    builder = ArticleBuilder(source, settings)
    for line in raw:
        line = clean_line(line)
        if not line:
            continue
        heading = _heading_text(line, markdown, settings, first=not builder.title and not builder.seen_text)
        if heading is not None:
            builder.heading(heading)
            continue
        bullet = BULLET.match(line)
        if bullet:
            builder.item(line[bullet.end():].strip())
        else:
            builder.paragraph(line)
    return builder.build()


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
    bullet = BULLET.match(line)
    marker, body = (line[:bullet.end()], line[bullet.end():]) if bullet else ("", line)
    sentences = [s for s in split_sentences(body) if not any(p.fullmatch(s) for p in _BOILERPLATE_SENTENCES)]
    return (marker + " ".join(sentences)).strip() if sentences else ""


def _heading_text(line: str, markdown: bool, settings: Settings, first: bool = False) -> str | None:
    """The heading a line stands for, or None when it is body text; `first`: it may be a long title."""
    if markdown:
        match = _MD_HEADING.match(line)
        return match.group(2).strip() if match and match.group(2).strip() else None
    chars, words = ((settings.title_max_chars, settings.title_max_words) if first
                    else (settings.heading_max_chars, settings.heading_max_words))
    if BULLET.match(line) or len(line) > chars or len(line.split()) > words:
        return None
    if line[-1] in ".,;:!\"”'’" or not re.search(r"[A-Za-z]{2}", line):
        return None
    if len(split_sentences(_NUMBERED.sub("", line))) > 1:
        return None  # two sentences on one line: prose, however short
    return line


# --------------------------------------------------------------------------- hard-wrapped text


def wrap_width(lines: list[str], settings: Settings) -> int | None:
    """The width a hard-wrapped text was wrapped at, or None for text with one paragraph per line.

    Hard-wrapped: most lines near the longest stop in mid-sentence (no closing punctuation),
    which one-paragraph-per-line text, where long lines end sentences, never does.
    """
    body = [line.strip() for line in lines if line.strip() and not BULLET.match(line)]
    if len(body) < settings.wrap_min_lines:
        return None
    lengths = sorted(len(line) for line in body)
    width = lengths[int(settings.wrap_width_percentile * (len(lengths) - 1))]
    if width < settings.wrap_min_width:
        return None
    long = [line for line in body if len(line) >= settings.wrap_long_share * width]
    open_ended = [line for line in long if not line.endswith(_SENTENCE_END)]
    return width if len(open_ended) >= settings.wrap_min_open_lines and 2 * len(open_ended) >= len(long) else None


def reflow(lines: list[str], width: int, settings: Settings) -> list[str]:
    """Hard-wrapped lines joined into paragraphs; blank lines, bullets and short lines end one."""
    document = "\n".join(lines)
    out: list[str] = []
    current, last = "", ""  # the paragraph so far, and its last physical line
    for raw in lines:
        line = raw.strip()
        if not line:
            if current:
                out.append(current)
            out.append("")
            current = last = ""
            continue
        if current and continues(last, line, width, settings):
            current = join_lines(current, line, document)
        else:
            if current:
                out.append(current)
            current = line
        last = line
    if current:
        out.append(current)
    return out


def continues(last: str, line: str, width: int, settings: Settings) -> bool:
    """Whether `line` goes on with the paragraph whose last physical line is `last`."""
    if BULLET.match(line) or starts_with_label(line) or is_metadata_line(last, settings) or starts_with_label(last):
        return False
    if last.endswith("-") or line[:1].islower() or line[:1] in ",;)":
        return True  # a word or a sentence goes on
    first_word = line.split()[0]
    if last.endswith((".", "!", "?", ":")):
        if len(line) <= settings.wrap_short_share * width and not line.endswith(_SENTENCE_END):
            return False  # a short open line after a sentence: a heading
        return len(last) + 1 + len(first_word) > width  # the next word would have fit: the break was meant
    return len(last) > settings.wrap_short_share * width  # a short open line is a heading or a label


def join_lines(text: str, line: str, document: str = "") -> str:
    """`text` + `line` with one space, or none across a word hyphenated at the line end.

    The hyphen of "treat-" + "ment" goes; that of "dose-" + "dependent" stays: a compound the
    `document` writes with a hyphen elsewhere, or one of a known prefix or suffix, keeps it.
    """
    match = re.search(r"(\w+)-$", text)
    tail = re.match(r"[^\W\d_]+", line)
    if match and tail and line[:1].islower():
        if _keeps_hyphen(match.group(1), tail.group(0), document):
            return text + line
        return text[:-1] + line
    return text + " " + line


# Compounds whose hyphen is part of the word, not a line break ("dose-dependent", "self-reported").
_HYPHEN_PREFIXES = {"self", "well", "ill", "all", "ex", "cross", "half", "quasi", "non", "anti", "post", "pre",
                    "co", "long", "short", "high", "low", "first", "second", "third", "full", "part", "semi"}
_HYPHEN_SUFFIXES = {"based", "related", "dependent", "induced", "free", "like", "term", "year", "old", "specific",
                    "associated", "controlled", "blind", "reported", "wide", "level", "risk", "acting", "month",
                    "week", "day", "hour", "up", "care", "being", "life", "known", "onset", "effect", "effects"}


def _keeps_hyphen(head: str, tail: str, document: str) -> bool:
    lowered, head, tail = document.lower(), head.lower(), tail.lower()
    if re.search(rf"\b{re.escape(head + tail)}\b", lowered):
        return False  # the text writes the word whole elsewhere
    if re.search(rf"\b{re.escape(head)}-{re.escape(tail)}\b", lowered):
        return True  # ... or with its hyphen, on one line
    return head in _HYPHEN_PREFIXES or tail in _HYPHEN_SUFFIXES or head[:1].isdigit()
