"""Reader of PDF articles (`.pdf`), through pypdf's text layer.

Owns: turning the text of a PDF's pages into an article.

1. Lines: pypdf extracts each page's text; a visitor records every line's
   font size, whether its font is bold, and its height on the page.
2. Page furniture: a line at the top or bottom of a page that repeats on
   most pages (digits aside: "Journal of X, page 3") is a running header or
   footer; a line there that is only a page number ("4", "Page 4 of 9",
   "- 4 -") is a page number. Both go.
3. Headings: a short line in a font clearly larger than the body text, or
   short and all bold. The largest such line on the first page is the title
   (else the PDF's own title, else the file name).
4. Paragraphs: lines are joined unless the gap above a line is clearly wider
   than the line spacing, or the previous line ended a sentence well short of
   the margin (the rules of `qa.reading.formats.text`). A word hyphenated at a line
   end is joined ("treat-" + "ment"), a compound keeps its hyphen.

A PDF with no text layer (a scan) or one that needs a password is refused
with the reason; a file pypdf cannot parse is refused with pypdf's reason.

Limits: no OCR. Columns are read in the order the PDF stores its text, which
is the reading order for almost all PDFs made from a word processor or LaTeX;
tables come out as lines of text. Heading detection needs a larger or bold
font: a PDF whose headings differ only by colour or spacing has none.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

from qa.reading.article import Article, ArticleBuilder, is_metadata_line, tidy, title_from_name
from qa.reading.formats.text import BULLET, continues, join_lines, wrap_width
from qa.settings import Settings

_BOLD = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
_PAGE_NUMBER = re.compile(r"^(?:page\s*)?[-–—]?\s*(?:\d{1,4}|[ivxlc]{1,6})\s*[-–—]?(?:\s*(?:of|/)\s*\d{1,4})?$",
                          re.IGNORECASE)
# A bullet: a symbol; a dash only after a line that ended a sentence (else it is a dash that wrapped)
_BULLET = re.compile(r"^\s*[•●▪◦‣∙·■□➢►✓]\s*")
_CONTENTS_LINE = re.compile(r"(?:\.\s?){4,}\s*\d+$")  # "2.1 Syntax . . . . . . 12": a table of contents
# The width paragraphs are joined at when a PDF has no lines at all (nothing is joined then).
_NO_LINES_WIDTH = 80


@dataclass
class Line:
    text: str
    size: float  # font size in points, as drawn
    bold: bool
    y: float | None  # baseline height on the page (points from the bottom); None when unknown
    page: int
    x: float | None = None  # where the line starts (points from the left)


def read_pdf(data: bytes, source: str, settings: Settings) -> Article:
    import pypdf
    from pypdf.errors import DependencyError, PdfReadError

    with _quiet_pypdf():
        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise ValueError("encrypted PDF: it needs a password to be read")
            pages = [_page_lines(page, number, settings) for number, page in enumerate(reader.pages)]
            meta_title = tidy(str((reader.metadata or {}).get("/Title") or ""))
        except DependencyError as exc:
            raise ValueError(f"encrypted PDF that cannot be decrypted here ({exc})") from None
        except (PdfReadError, OSError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a readable PDF ({type(exc).__name__}: {exc})"[:300]) from None
    if not pages:
        raise ValueError("PDF with no pages")
    letters = sum(len(re.findall(r"[^\W\d_]", line.text)) for page in pages for line in page)
    if letters < settings.pdf_min_letters_per_page * len(pages):
        raise ValueError("PDF with no text layer (a scan?): its pages are images, and the build does not do OCR")
    lines = [line for page in _remove_furniture(pages, settings) for line in page if not _CONTENTS_LINE.search(line.text)]
    return _assemble(lines, meta_title, source, settings)


@contextmanager
def _quiet_pypdf():
    """pypdf logs every repair it makes to a damaged file; the build reports one reason instead."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # = ERROR + 10: what pypdf calls critical only
    try:
        yield
    finally:
        logger.setLevel(level)


def _page_lines(page, number: int, settings: Settings) -> list[Line]:
    """The page's lines with their font size, boldness and height, from pypdf's visitor."""
    lines: list[Line] = []
    state = {"parts": [], "sizes": Counter(), "bold": 0, "chars": 0, "y": None, "x": None}

    def flush() -> None:
        text = tidy("".join(state["parts"]))
        if text:
            size = state["sizes"].most_common(1)[0][0] if state["sizes"] else 0.0
            lines.append(Line(text, size, state["chars"] > 0 and state["bold"] >= settings.pdf_bold_share * state["chars"],
                              state["y"], number, state["x"]))
        state.update(parts=[], sizes=Counter(), bold=0, chars=0, y=None, x=None)

    def visit(text, cm, tm, font, font_size) -> None:
        for position, piece in enumerate(text.split("\n")):
            if position:
                flush()
            state["parts"].append(piece)
            chars = len(piece.strip())
            if not chars:
                continue
            scale = math.hypot(tm[2], tm[3]) * math.hypot(cm[2], cm[3])
            state["sizes"][round(font_size * scale, 1)] += chars
            state["chars"] += chars
            if font is not None and _BOLD.search(str(font.get("/BaseFont", ""))):
                state["bold"] += chars
            if state["y"] is None and (tm[4] or tm[5]):
                state["y"] = tm[5] * cm[3] + cm[5]
                state["x"] = tm[4] * cm[0] + cm[4]

    page.extract_text(visitor_text=visit)
    flush()
    return _reading_order(lines, float(page.mediabox.width), settings)


def _reading_order(lines: list[Line], width: float, settings: Settings) -> list[Line]:
    """A one-column page's lines from top to bottom; a page in columns keeps the order the PDF stores.

    Some writers (browsers printing a page) store headings after the body text; sorting by height
    puts them back. Columns cannot be sorted so, and are stored in reading order by most writers.
    """
    if not lines or any(line.y is None or line.x is None for line in lines):
        return lines
    right = sum(1 for line in lines if line.x > settings.pdf_column_start * width)
    if right > settings.pdf_column_share * len(lines):
        return lines
    return sorted(lines, key=lambda line: -line.y)


def _remove_furniture(pages: list[list[Line]], settings: Settings) -> list[list[Line]]:
    """Pages without running headers, footers and page numbers."""
    def edges(page: list[Line]) -> list[Line]:
        placed = [line for line in page if line.y is not None]
        order = sorted(placed, key=lambda line: -line.y) if len(placed) == len(page) else page
        return order[:settings.pdf_edge_lines] + order[-settings.pdf_edge_lines:]

    def key(line: Line) -> str:
        return re.sub(r"\d+", "#", line.text.lower())

    seen = Counter(k for page in pages for k in {key(line) for line in edges(page)})
    repeated = {k for k, count in seen.items() if len(pages) >= 2 and count >= max(2, math.ceil(len(pages) / 2))}
    cleaned = []
    for page in pages:
        furniture = {id(line) for line in edges(page) if key(line) in repeated or _PAGE_NUMBER.match(line.text)}
        cleaned.append([line for line in page if id(line) not in furniture])
    return cleaned


def _assemble(lines: list[Line], meta_title: str, source: str, settings: Settings) -> Article:
    sizes: Counter = Counter()
    for line in lines:
        sizes[line.size] += len(line.text)
    body_size = sizes.most_common(1)[0][0] if sizes else 0.0
    kinds = [_kind(line, body_size, settings) for line in lines]
    width = wrap_width([line.text for line, kind in zip(lines, kinds) if kind == "text"], settings) or \
        max((len(line.text) for line in lines), default=_NO_LINES_WIDTH)
    pitch = _line_pitch(lines, kinds, settings)
    blocks = _merge_headings(lines, kinds, pitch, settings)

    builder = ArticleBuilder(source, settings)
    first_page = [line.size for kind, line in blocks if kind == "heading" and line.page == 0]
    title = None
    if first_page and max(first_page) >= body_size * settings.pdf_heading_font_ratio:
        title = next(line for kind, line in blocks if kind == "heading" and line.size == max(first_page))
        builder.set_title(title.text)
    elif _useful_title(meta_title):
        builder.set_title(meta_title)
    else:
        builder.set_title(title_from_name(source))

    text, is_item, previous = "", False, None
    for kind, line in blocks:
        if kind == "heading":
            _emit(builder, text, is_item)
            text, previous = "", None
            if line is not title:
                builder.heading(line.text)
            continue
        bullet = _BULLET.match(line.text) or (BULLET.match(line.text) if not text or text.endswith((".", ":", ";"))
                                               else None)
        if text and not bullet and _same_paragraph(previous, line, width, pitch, settings):
            text = join_lines(text, line.text)
        else:
            _emit(builder, text, is_item)
            text, is_item = (line.text[bullet.end():], True) if bullet else (line.text, False)
        previous = line
    _emit(builder, text, is_item)
    return builder.build()


def _merge_headings(lines: list[Line], kinds: list[str], pitch: float | None,
                    settings: Settings) -> list[tuple[str, Line]]:
    """Consecutive heading lines of one font size are one heading wrapped over lines."""
    merged: list[tuple[str, Line]] = []
    for line, kind in zip(lines, kinds):
        if merged and kind == "heading" and merged[-1][0] == "heading":
            last = merged[-1][1]
            close = last.y is None or line.y is None or 0 < last.y - line.y <= settings.pdf_heading_line_gap * max(line.size, pitch or 0)
            if last.size == line.size and last.page == line.page and close:
                merged[-1] = ("heading", Line(f"{last.text} {line.text}", last.size, last.bold, line.y, line.page))
                continue
        merged.append((kind, line))
    # A "heading" that runs long, or that the next line continues mid-sentence, is emphasised text.
    for position, (kind, line) in enumerate(merged):
        after = merged[position + 1][1].text if position + 1 < len(merged) else ""
        if kind == "heading" and (len(line.text.split()) > settings.pdf_heading_max_words or after[:1].islower()):
            merged[position] = ("text", line)
    return merged


def _emit(builder: ArticleBuilder, text: str, is_item: bool) -> None:
    if text:
        (builder.item if is_item else builder.paragraph)(text)


def _kind(line: Line, body_size: float, settings: Settings) -> str:
    """"heading" for a short line in a larger or all-bold font, else "text"."""
    words = len(line.text.split())
    if words > settings.pdf_heading_max_words or not re.search(r"[^\W\d_]{2}", line.text) or line.text.endswith((".", ",", ";")):
        return "text"
    if is_metadata_line(line.text, settings):
        return "text"  # the builder drops it; it must not end a paragraph as a heading would
    if body_size and line.size >= body_size * settings.pdf_heading_font_ratio:
        return "heading"
    if (line.bold and words <= settings.bold_heading_max_words
            and line.size >= body_size * settings.pdf_bold_heading_min_size and not BULLET.match(line.text)):
        return "heading"
    return "text"


def _line_pitch(lines: list[Line], kinds: list[str], settings: Settings) -> float | None:
    """The usual distance between two lines of a paragraph (median gap between body lines)."""
    gaps = sorted(round(a.y - b.y, 1) for a, b, ka, kb in zip(lines, lines[1:], kinds, kinds[1:])
                  if ka == kb == "text" and a.page == b.page and a.y is not None and b.y is not None
                  and 0 < a.y - b.y < settings.pdf_pitch_max_gap * max(a.size, 1))
    return gaps[len(gaps) // 2] if gaps else None


def _same_paragraph(previous: Line | None, line: Line, width: int, pitch: float | None, settings: Settings) -> bool:
    if previous is None:
        return False
    if pitch and previous.page == line.page and previous.y is not None and line.y is not None:
        gap = previous.y - line.y
        if gap > pitch * settings.pdf_paragraph_gap and not line.text[:1].islower():
            return False  # a blank line's worth of space: a new paragraph
    if re.match(r"[-–—]\s", line.text) and not previous.text.endswith((".", ":", ";", "!", "?")):
        return True  # a dash that wrapped to the start of a line, not a bullet
    return continues(previous.text, line.text, width, settings)


def _useful_title(title: str) -> bool:
    """A PDF's own title field, unless it is a tool's placeholder ("Microsoft Word - draft.docx", "untitled")."""
    return bool(title) and len(title.split()) >= 2 and not re.search(
        r"^(?:microsoft word|untitled|document\d*)\b|\.(?:docx?|pdf|tex|indd|odt)$", title, re.IGNORECASE)
