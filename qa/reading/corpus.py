"""Stage 1: the corpus folder -> clean, structured articles.

Owns: which files of the corpus folder are articles and how each kind is
read. `READERS`, a table from file suffix to reader, is the one place that
decides it; adding a file type is one function in `qa/reading/formats/` and one line
here. Every reader returns the same `Article` (title, sections with headings,
paragraphs, list items; `qa/reading/article.py`), or raises ValueError with the
reason the file cannot be used. A file is skipped with that reason and the
build goes on, whatever went wrong inside a reader.

    .txt .md     UTF-8 text: web boilerplate removed, hard-wrapped lines re-flowed (qa/reading/formats/text.py)
    .html .htm   saved web pages: the main text, found by trafilatura (qa/reading/formats/html.py)
    .pdf         text layer read by pypdf; running headers, footers, page numbers removed (qa/reading/formats/pdf.py)

The files stay exactly as they were downloaded; all cleaning happens in
code, and the same file always gives the same article (the index skips
unchanged files by their hash).

Limits: a file of another type is skipped with a reason. `max_article_bytes`
is checked against the file for text files, and against the text read out of
it for pages and PDFs (a saved page or a PDF is mostly markup, scripts and
images). Two files with the same text are read once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from qa.reading.article import INTRO_HEADING, Article, Block, Section
from qa.errors import CorpusError
from qa.files import sha256_bytes
from qa.settings import Settings, reading_fingerprint
from qa.reading.formats.html import read_html
from qa.reading.formats.pdf import read_pdf
from qa.reading.formats.text import decode, parse_article, read_markdown, read_text


@dataclass(frozen=True)
class FileType:
    name: str  # as the build report shows it
    read: Callable[[bytes, str, Settings], Article]  # (the file's bytes, its name, the reading rules) -> Article, or ValueError(reason)
    limit_on_file: bool  # max_article_bytes applies to the file (text) or to the text read out of it


READERS: dict[str, FileType] = {
    ".txt": FileType("text", read_text, True),
    ".md": FileType("markdown", read_markdown, True),
    ".html": FileType("html", read_html, False),
    ".htm": FileType("html", read_html, False),
    ".pdf": FileType("pdf", read_pdf, False),
}
ARTICLE_SUFFIXES = tuple(READERS)
# Raised whenever a reader's rules change what some file gives: the index records it, and an index
# built with other readers is rebuilt (unchanged passages keep their vectors), since the files'
# hashes alone cannot tell that the same bytes now read differently.
READER_VERSION = 2


def reading_record(settings: Settings) -> dict:
    """How an index's files were read, for its manifest: the readers' version and their rules."""
    return {"readers": READER_VERSION, "reading": reading_fingerprint(settings)}


def read_alike(recorded: dict, settings: Settings) -> bool:
    """Whether files recorded as read so (an index manifest's "corpus" entry) read the same now. An index
    built before the rules were settings recorded none: it was read with the defaults."""
    return (recorded.get("readers") == READER_VERSION
            and recorded.get("reading", reading_fingerprint(Settings())) == reading_fingerprint(settings))


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


@dataclass(frozen=True)
class Corpus:
    articles: tuple[Article, ...]
    skipped: tuple[Skipped, ...]
    hashes: dict[str, str]  # every candidate file, read or skipped


def file_type(name: str) -> FileType | None:
    return READERS.get(Path(name).suffix.lower())


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
        if file_type(path.name):
            try:
                hashes[path.name] = sha256_bytes(path.read_bytes())
            except OSError:
                continue
    return hashes


def load_corpus(folder: Path, settings: Settings) -> Corpus:
    """Read every article of `folder` by `settings`' reading rules; files that cannot be used (or larger than
    `settings.max_article_bytes`) are skipped with a reason."""
    max_bytes = settings.max_article_bytes
    articles: list[Article] = []
    skipped: list[Skipped] = []
    hashes: dict[str, str] = {}
    seen_bodies: dict[str, str] = {}
    for path in corpus_files(folder):
        kind = file_type(path.name)
        if kind is None:
            skipped.append(Skipped(path.name, f"not an article file (only {', '.join(ARTICLE_SUFFIXES)} are read)"))
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            skipped.append(Skipped(path.name, f"cannot be read: {exc.strerror or exc}"))
            continue
        hashes[path.name] = sha256_bytes(data)
        if kind.limit_on_file and len(data) > max_bytes:
            skipped.append(Skipped(path.name, _too_big(len(data), max_bytes, "")))
            continue
        try:
            article = read_article(data, path.name, settings, hashes[path.name])
        except ValueError as exc:
            skipped.append(Skipped(path.name, str(exc)))
            continue
        body = "\n".join(b.lead + "\n".join(b.items) for s in article.sections for b in s.blocks)
        if not kind.limit_on_file and len(body.encode()) > max_bytes:
            skipped.append(Skipped(path.name, _too_big(len(body.encode()), max_bytes, "its text: ")))
            continue
        body_hash = sha256_bytes(body.encode())
        if body_hash in seen_bodies:
            skipped.append(Skipped(path.name, f"same text as {seen_bodies[body_hash]}"))
            continue
        seen_bodies[body_hash] = path.name
        articles.append(article)
    return Corpus(tuple(articles), tuple(skipped), hashes)


def read_article(data: bytes, source: str, settings: Settings, sha256: str = "") -> Article:
    """One file's article, by its type; ValueError with the reason when it cannot be used."""
    kind = file_type(source)
    if kind is None:
        raise ValueError(f"not an article file (only {', '.join(ARTICLE_SUFFIXES)} are read)")
    try:
        article = kind.read(data, source, settings)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - a library failing on one bad file must not stop the build
        raise ValueError(f"cannot be read as {kind.name}: {type(exc).__name__}: {exc}"[:300]) from exc
    return Article(article.source, article.title, article.sections, sha256)


def _too_big(size: int, limit: int, what: str) -> str:
    return (f"{what}{size / 1e6:.1f} MB is over the {limit / 1e6:.1f} MB limit "
            f"for one article (setting max_article_bytes)")


# --------------------------------------------------------------------------- build report


@dataclass(frozen=True)
class FileReport:
    """What the build did with one file: read (title, sections, passages) or skipped (reason)."""

    source: str
    type: str
    title: str | None = None
    sections: int = 0
    passages: int = 0
    skipped: str | None = None

    def to_dict(self) -> dict:
        if self.skipped is not None:
            return {"source": self.source, "type": self.type, "skipped": self.skipped}
        return {"source": self.source, "type": self.type, "title": self.title,
                "sections": self.sections, "passages": self.passages}


def file_reports(corpus: Corpus, chunks: Iterable) -> tuple[FileReport, ...]:
    """One row per file of the folder, by name; `chunks`: the passages cut from its articles."""
    passages = Counter(chunk.source for chunk in chunks)
    rows = [FileReport(a.source, file_type(a.source).name, a.title, len(a.sections), passages[a.source])
            for a in corpus.articles]
    rows += [FileReport(s.source, getattr(file_type(s.source), "name", "other"), skipped=s.reason)
             for s in corpus.skipped]
    return tuple(sorted(rows, key=lambda row: row.source))


__all__ = ["ARTICLE_SUFFIXES", "READER_VERSION", "READERS", "Article", "Block", "Corpus", "FileReport", "FileType", "INTRO_HEADING",
           "Section", "Skipped", "corpus_files", "corpus_hashes", "decode", "file_reports",
           "file_type", "load_corpus", "parse_article", "read_article"]
