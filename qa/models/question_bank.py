"""Example questions for the articles' sentences: a question bank (doc2query, written offline).

Owns: reading `corpus/questions/*.jsonl`, and linking each example question
to the sentences of the built chunks that answer it. A line is

    {"question": "will narcan wake someone up who did too much k",
     "source": "naloxone-and-ketamine.txt",
     "answer": "The short answer is no; Naloxone does not reverse the effects of Ketamine."}

with `answer` copied verbatim from article `source` (a sentence, or a whole
list line). The index embeds the questions; search then also compares a
person's question with these example questions, which is what MiniLM does
best (it was trained on pairs of questions that mean the same), and ranks
up the passages and sentences they are answered by (qa/answering/search.py,
qa/answering/answer.py). The bank never answers by itself: it only points at text
that is in the articles, and the answer is always that text.

Why: the articles and the people asking use different words ("dope
sickness" for opioid withdrawal). A sentence-to-question model would write
such questions at build time (doc2query); none runs offline here, so they
are written offline, from the articles alone, and kept as data.

Also owns writing the bank: `append_to_bank()` adds lines (feedback
promoted by qa/feedback/review.py) to `questions/<article name>.jsonl`, replacing the
file in one atomic step, so a reader or a crash never sees half a file.

Limits: an article without example questions is searched as before. A line
whose answer is no longer in its article (the article changed) is skipped
with a warning, as is a malformed line. The folder is optional. Two writers
appending to one file at the same moment can lose one's lines (the
maintainer's commands are run by hand, one at a time).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from qa.files import sha256_bytes

BANK_FOLDER = "questions"  # inside the corpus folder; the article loader does not look into folders


@dataclass(frozen=True)
class BankQuestion:
    question: str
    source: str  # the article file it is answered from
    answer: str  # verbatim text of that article


def bank_files(corpus_dir: Path) -> list[Path]:
    folder = Path(corpus_dir) / BANK_FOLDER
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.jsonl") if p.is_file() and not p.name.startswith("."))


def bank_hashes(corpus_dir: Path) -> dict[str, str]:
    """sha256 of every question file, keyed "questions/<name>", for the staleness check."""
    hashes = {}
    for path in bank_files(corpus_dir):
        try:
            hashes[f"{BANK_FOLDER}/{path.name}"] = sha256_bytes(path.read_bytes())
        except OSError:
            continue
    return hashes


def load_bank(corpus_dir: Path) -> tuple[list[BankQuestion], list[str]]:
    """Every well-formed example question of the corpus, and a warning per file or line that was skipped."""
    return read_bank(bank_files(corpus_dir))


def bank_sources(entries: Iterable[BankQuestion]) -> frozenset[str]:
    """The articles a bank (`load_bank`'s entries) has example questions for (whether or not a build searches
    them): their sections keep passages of their own (qa/reading/chunking.py)."""
    return frozenset(entry.source for entry in entries)


def read_bank(paths: list[Path]) -> tuple[list[BankQuestion], list[str]]:
    """Every well-formed example question in these files, and a warning per file or line that was skipped."""
    entries: list[BankQuestion] = []
    warnings: list[str] = []
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            warnings.append(f"{path.name}: cannot be read ({exc}); its questions are not used")
            continue
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                entry = BankQuestion(*(row[key].strip() for key in ("question", "source", "answer")))
            except (ValueError, KeyError, TypeError, AttributeError):
                warnings.append(f"{path.name}:{number}: not a line of "
                                '{"question": ..., "source": ..., "answer": ...}; skipped')
                continue
            if entry.question and entry.source and entry.answer:
                entries.append(entry)
    return entries, warnings


def bank_line(entry: BankQuestion) -> str:
    """One line of a bank file, as written by hand: UTF-8, not escaped."""
    return json.dumps({"question": entry.question, "source": entry.source, "answer": entry.answer},
                      ensure_ascii=False)


def bank_file_for(corpus_dir: Path, source: str) -> Path:
    """Where the example questions of article `source` are added: questions/<its name>.jsonl."""
    return Path(corpus_dir) / BANK_FOLDER / f"{Path(source).stem}.jsonl"


def append_to_bank(corpus_dir: Path, entries: list[BankQuestion]) -> list[Path]:
    """Add these lines to their articles' bank files, each file replaced atomically; the files written."""
    by_file: dict[Path, list[str]] = {}
    for entry in entries:
        by_file.setdefault(bank_file_for(corpus_dir, entry.source), []).append(bank_line(entry))
    for path, lines in by_file.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.read_bytes() if path.exists() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        _replace_file(path, old + "".join(line + "\n" for line in lines).encode("utf-8"))
    return list(by_file)


def _replace_file(path: Path, data: bytes) -> None:
    """Write beside the file, flush to disk, then rename over it: the old or the new file, never half."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o777)
        else:
            os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a power cut
    finally:
        os.close(folder)


def same_text(a: str, b: str) -> bool:
    """Whether two questions or answers are the same text for the bank (case, spacing and list marker aside)."""
    return _plain(a) == _plain(b)


def _plain(text: str) -> str:
    """Lower case, one space, no list marker: how answers and sentences are compared."""
    return re.sub(r"\s+", " ", text).strip().lstrip("•-*– ").lower()


def link(entries: list[BankQuestion], sentences: list[str],
         sentence_sources: list[str]) -> tuple[list[str], list[list[int]], list[BankQuestion]]:
    """(questions, the sentence ids answering each, the entries whose answer was not found).

    An answer matches the sentence equal to it; a list line split into several sentences matches
    each of them; a fragment matches the sentence it lies in. Only sentences of its own article count.
    """
    by_source: dict[str, list[tuple[int, str]]] = {}
    for sentence_id, (sentence, source) in enumerate(zip(sentences, sentence_sources)):
        by_source.setdefault(source, []).append((sentence_id, _plain(sentence)))
    questions, answered_by, unmatched = [], [], []
    for entry in entries:
        answer = _plain(entry.answer)
        candidates = by_source.get(entry.source, [])
        ids = [i for i, s in candidates if s == answer]
        ids = ids or [i for i, s in candidates if len(s) >= 20 and s in answer]
        ids = ids or [i for i, s in candidates if len(answer) >= 20 and answer in s]
        if ids:
            questions.append(entry.question)
            answered_by.append(ids)
        else:
            unmatched.append(entry)
    return questions, answered_by, unmatched


__all__ = ["BANK_FOLDER", "BankQuestion", "bank_files", "bank_hashes", "load_bank", "read_bank", "link",
           "bank_line", "bank_file_for", "append_to_bank", "same_text"]
