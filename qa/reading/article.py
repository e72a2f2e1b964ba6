"""What an article is, whatever file it came from, and the rules every reader shares.

Owns: the structured article (`Article` -> `Section`s with headings ->
`Block`s: paragraphs, or lists with their lead-in line) and `ArticleBuilder`,
through which every reader (`qa/reading/formats/`) hands over what it found, in
reading order: a title, headings, paragraphs, list items. The builder applies
the rules that do not depend on the file type:

- metadata lines (URL, DOI, licence, SHA and other identifiers, dates,
  author lists, "Keywords:", a bare "Abstract:" label, "nan") are neither
  headings nor text (`is_metadata_line`);
- a reference list is not text: a line that reads like a citation is dropped,
  and so is a references / bibliography section (`is_back_matter_heading`);
- the title printed again as the first heading is not a section; sections
  with no text are dropped; a list keeps the line that leads into it.

Limits: these are rules on the shape of a line, written for English health
and science articles. An author list is recognised by its shape (names,
initials, semicolons) and only before the article's first paragraph unless
it carries initials or semicolons; a reference by a DOI, or a leading number
with a year and "et al."/journal-style volume numbers.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from qa.settings import Settings

INTRO_HEADING = "Introduction"


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

    def plain_text(self) -> str:
        """Title, headings, paragraphs and list items, one per line: the article as plain text."""
        lines = [self.title]
        for section in self.sections:
            lines.append(section.heading)
            for block in section.blocks:
                lines += ([block.lead] if block.lead else []) + list(block.items)
        return "\n".join(lines)


# --------------------------------------------------------------------------- line rules

_DOI = re.compile(r"\b(?:doi:\s*|https?://(?:dx\.)?doi\.org/)?10\.\d{4,9}/[^\s\"<>]+", re.IGNORECASE)
_LABEL = (r"(?:url|link|source url|doi|pmid|pmcid|pmc|arxiv|isbn|issn|sha(?:1|256)?|md5|id|doc_?id|cord_?uid|"
          r"paper_?id|s2_?id|mag_?id|pubmed_?id|who_covidence_id|license|licence|copyright|journal|publisher|"
          r"volume|issue|pages|citation|cite as|how to cite|date|published|publish_time|publication date|"
          r"received|accepted|revised|first published|last updated|updated|posted|authors?|by|affiliations?|"
          r"correspondence|corresponding author|e-?mail|keywords?|key words|mesh terms|subjects?|"
          r"abstract|title|source_x|has_full_text|full_text_file)")
# "Label: value" where the label is bibliographic: the whole line is metadata,
# except "Abstract:" and "Title:", whose value is text (see strip_label).
_LABELLED = re.compile(rf"^{_LABEL}\s*[:=]\s*(.*)$", re.IGNORECASE)
_BYLINE = re.compile(r"^(?:written|reviewed|medically reviewed|fact[- ]checked|posted|published|updated|last updated)"
                     r"\s+(?:by|on)\b.{0,100}$", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_NAN = re.compile(r"^(?:nan|none|null|n/?a)$", re.IGNORECASE)
_HEX_ID = re.compile(r"^(?:[0-9a-f]{32,}|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})(?:\s*;\s*[0-9a-f]{32,})*$",
                     re.IGNORECASE)
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = re.compile(rf"^(?:\d{{4}}[-/.]\d{{1,2}}(?:[-/.]\d{{1,2}})?(?:[ T][\d:.]+Z?)?|\d{{1,2}}[-/.]\d{{1,2}}[-/.]\d{{2,4}}|"
                   rf"(?:\d{{1,2}}\s+)?{_MONTH}\s+(?:\d{{1,2}},?\s+)?\d{{4}}|\d{{4}})$", re.IGNORECASE)
_LICENCE = re.compile(r"^(?:cc[- ]?by(?:[- ](?:nc|nd|sa))*(?:[- ]\d\.\d)?|cc0|public domain|all rights reserved\.?|"
                      r"(?:©|\(c\)|copyright)\s*.{0,120})$", re.IGNORECASE)
_NAME_TOKEN = re.compile(r"^(?:[A-Z][\w'’\-]*\.?|[A-Z]\.(?:-?[A-Z]\.)*|van|von|de|der|del|da|di|le|la|du|dos|bin|al-?\w*|"
                         r"(?:jr|sr|ii|iii|iv|phd|md|mph|msc|rn)\.?|[\d,*†‡§]+)$")
_INITIAL = re.compile(r"^[A-Z]{1,3}\.?$|^[A-Z]\.(?:-?[A-Z]\.)+$")
# A reference: numbered ("12.", "[12]") or starting with an author ("Peasah SK,", "Smith, J."), with a
# journal volume ("2013;31:5339") or an APA-style year in brackets ("(2019).").
_REFERENCE_START = re.compile(r"^(?:\[\d{1,3}\]|\d{1,3}[.)]|\(\d{1,3}\))\s+\S|^[A-Z][\w'’\-]+,?\s+(?:[A-Z]{1,3}\b|[A-Z]\.)")
_JOURNAL_VOLUME = re.compile(r"\b(?:1[89]|20)\d{2}(?:\s+[A-Z][a-z]{2}(?:\s+\d{1,2})?)?\s*;\s*\d+\s*(?:\(\d+\))?\s*:\s*[A-Za-z]?\d+"
                             r"|\((?:1[89]|20)\d{2}[a-z]?\)\.")
_BACK_MATTER = re.compile(
    r"^(?:\d+\.?\s*)?(?:references?(?: list| cited)?|bibliography|works cited|literature cited|cited literature|"
    r"citations|sources|notes and references|references and notes|footnotes|acknowledge?ments?|"
    r"conflicts? of interests?|competing interests?|declaration of (?:competing )?interests?|disclosures?|"
    r"author contributions?|authors'? contributions?|author information|supplementary (?:material|information|data)|"
    r"author, article,? and disclosure information|article information|how we reviewed this article:?.*)\s*:?$",
    re.IGNORECASE)


def tidy(text: str) -> str:
    """NFC, no control or zero-width characters, single spaces."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\u00a0", " ").replace("\u200b", "").replace("\ufeff", "").replace("\u00ad", "")
    text = "".join(ch for ch in text if ch in "\t\n" or unicodedata.category(ch) != "Cc")
    return re.sub(r"\s+", " ", text).strip()


def remove_dois(text: str) -> str:
    """A DOI inside a sentence is a link, not words: it goes, like a URL, and the sentence stays."""
    text = _DOI.sub("", text)
    text = re.sub(r"\(\s*(?:doi:?)?\s*\)|\[\s*\]", "", text)
    return re.sub(r"\s{2,}", " ", text).strip()


def starts_with_label(line: str) -> bool:
    """Whether a line opens with a bibliographic label ("DOI:", "Authors:", "Abstract:"): a line of its own."""
    return bool(_LABELLED.match(line.strip()))


def strip_label(line: str) -> str:
    """The text of a "Title: ..." or "Abstract: ..." line without its label; other lines unchanged."""
    match = re.match(r"^(?:title|abstract)\s*:\s*(.+)$", line, re.IGNORECASE)
    return match.group(1).strip() if match and not _NAN.match(match.group(1).strip()) else line


def is_metadata_line(line: str, settings: Settings, before_text: bool = False) -> bool:
    """A line that describes the article (identifiers, dates, licence, authors) rather than telling anything.

    `before_text`: the line comes before the article's first paragraph, where a bare list of
    names is an author list; later, only one with initials or semicolons is. The words a contact or
    citation line may have, and a name's, are `settings`' (the reading group).
    """
    line = line.strip()
    bare = line.rstrip(".;,").strip()
    if not bare or _NAN.match(bare) or _HEX_ID.match(bare) or _DATE.match(bare) or _LICENCE.match(bare):
        return True
    if re.fullmatch(r"(?:abstract|summary|keywords?|key words)\s*:?", bare, re.IGNORECASE):
        return True
    labelled = _LABELLED.match(line)
    if labelled:
        label = line.split(":")[0].split("=")[0].strip().lower()
        value = labelled.group(1).strip()
        if label in ("abstract", "title"):
            return not value or bool(_NAN.match(value))
        return True
    if _BYLINE.match(bare) or (_EMAIL.search(line) and len(line.split()) <= settings.contact_max_words):
        return True
    if _DOI.fullmatch(bare) or (_DOI.search(line) and len(_DOI.sub("", line).split()) <= settings.doi_line_max_words):
        return True
    return is_author_list(bare, settings, before_text) or is_reference(line)


def is_author_list(line: str, settings: Settings, before_text: bool = False) -> bool:
    """Names separated by commas or semicolons ("Michael L Anderson; Carlos Dobkin", "Peasah SK, Breese J")."""
    if re.search(r"[.!?:]$", line) and not re.search(r"\b[A-Z]\.$", line):
        return False
    parts = [p.strip() for p in re.split(r"[;,]|\band\b|&", line) if p.strip()]
    if len(parts) < 2:
        return False
    initials = 0
    for part in parts:
        tokens = part.replace(".", ". ").split()
        if not 1 <= len(tokens) <= settings.author_name_max_tokens or not all(_NAME_TOKEN.match(t) for t in tokens):
            return False
        if not any(t[0].isupper() and len(t.rstrip(".")) > 1 for t in tokens):
            return False
        initials += any(_INITIAL.match(t) for t in tokens)
    if ";" in line or "et al" in line or initials * 2 >= len(parts):
        return True
    # before the text, a bare list of full names is the byline ("Jane Doe, John Smith"); "and" alone
    # is not enough: "Ketamine Therapy and Mental Health" is a title
    return before_text and "," in line and all(2 <= len(p.split()) <= settings.byline_name_max_words for p in parts)


def is_reference(line: str) -> bool:
    """A line of a reference list: numbered, with a year and a journal-style volume or "et al."."""
    return bool(_REFERENCE_START.match(line) and _JOURNAL_VOLUME.search(line))


def is_back_matter_heading(heading: str) -> bool:
    """References, acknowledgements, disclosures: what follows is about the article, not its topic."""
    return bool(_BACK_MATTER.match(heading.strip()))


def clean_heading(heading: str) -> str:
    """A heading without its trailing colon ("Background:" -> "Background")."""
    return re.sub(r"\s*[:：]\s*$", "", tidy(heading))


def same_text(a: str, b: str) -> bool:
    norm = lambda s: re.sub(r"\W+", " ", s).strip().lower()  # noqa: E731
    return norm(a) == norm(b)


def title_from_name(source: str) -> str:
    stem = Path(source).stem
    words = re.sub(r"[_\-]+", " ", stem).split()
    return " ".join(w if w.isupper() else w.capitalize() for w in words) or source


# --------------------------------------------------------------------------- builder


class ArticleBuilder:
    """Collects what a reader finds, in reading order, and applies the shared rules.

    `back_matter_ends_at_heading`: whether the next heading ends a references section
    (true where headings are marked up, as in HTML); plain text and PDF drop everything
    after it, because reference lines there look like headings. `settings`: the reading rules.
    """

    def __init__(self, source: str, settings: Settings, back_matter_ends_at_heading: bool = False):
        self.source = source
        self.settings = settings
        self.title = ""
        self._ends_at_heading = back_matter_ends_at_heading
        self._sections: list[tuple[str, list[Block]]] = [(INTRO_HEADING, [])]
        self._in_back_matter = False
        self._seen_text = False
        self._list_closed = False

    @property
    def seen_text(self) -> bool:
        """Whether a paragraph or list item has been kept yet."""
        return self._seen_text

    def set_title(self, title: str) -> None:
        self.title = clean_heading(title)

    def heading(self, text: str) -> None:
        heading = clean_heading(text)
        if not heading:
            return
        if self._in_back_matter and not self._ends_at_heading:
            return
        if is_back_matter_heading(heading):
            self._in_back_matter = True
            return
        self._in_back_matter = False
        if is_metadata_line(heading, self.settings, not self._seen_text):
            return
        if not self.title and not self._seen_text:
            self.title = strip_label(heading)
            return
        if same_text(heading, self.title) and not self._seen_text:
            return  # the title printed twice at the top of the page
        self._sections.append((heading, []))

    def paragraph(self, text: str) -> None:
        text = self._text(text)
        if text:
            self._sections[-1][1].append(Block(text))
            self._seen_text = True

    def item(self, text: str) -> None:
        """A list item: joins the list just before it, or starts one (keeping a lead-in line ending with ':')."""
        text = self._text(text)
        if not text:
            return
        blocks = self._sections[-1][1]
        if blocks and blocks[-1].is_list and not self._list_closed:
            blocks[-1] = Block(blocks[-1].lead, blocks[-1].items + (text,))
        elif blocks and not blocks[-1].is_list and blocks[-1].lead.endswith(":"):
            blocks[-1] = Block(blocks[-1].lead, (text,))  # the list keeps its lead-in
        else:
            blocks.append(Block("", (text,)))
        self._list_closed = False
        self._seen_text = True

    def end_list(self) -> None:
        """The next item starts a new list (two lists in a row, as HTML can mark them)."""
        self._list_closed = True

    def _text(self, text: str) -> str:
        if self._in_back_matter:
            return ""
        text = tidy(text)
        if not text or not re.search(r"\w", text) or is_metadata_line(text, self.settings, not self._seen_text):
            return ""
        return remove_dois(strip_label(text))

    def build(self, sha256: str = "") -> Article:
        kept = tuple(Section(h, tuple(b)) for h, b in self._sections if b)
        if not kept:
            raise ValueError("no article text after removing boilerplate")
        return Article(source=self.source, title=self.title or title_from_name(self.source),
                       sections=kept, sha256=sha256)
