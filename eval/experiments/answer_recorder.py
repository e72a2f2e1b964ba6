"""What answer choice weighed, question by question: the recorder the answer-choice labs replay offline from.

Not part of the product. While open (`with AnswerRecorder() as recorder:`), it hooks three names of
qa.answering.answer, as `answer` calls them, and restores the originals on leaving (on an error too):
- `_with_token_match(hits, competing, settings, reading)`: each call starts a record (`Record`) of one call of
  `answer`, with the hits, the candidates as they come in (each one's hand score: cosine, idf overlap, answer
  type, penalties; before the restatement penalty, the token match, the heading fit and the lift), the
  settings, the question's reading (qa.answering.token_match.QuestionReading; None without token vectors), and
  the token match of the candidates it read (the best `token_match_candidates` after the restatement penalty);
- `_with_heading_fit(index, hits, competing, settings, reading)`: the candidates' scores after it (restatement
  penalty, token match where read, heading fit), and the index;
- `example_lifts`: each candidate's lift from the example questions (answer.py's own call; the search's call
  of it, in qa.answering.search, is not hooked).

`recorder.ask(engine, question, history)` asks the engine and returns (the result, the record of the call of
`answer` that made it). `Engine.ask` may call `answer` more than once (a follow-up whose earlier turns are not
remembered answers them first; an unanswered emergency is searched again): the last call is the result's.
A question triage does not search (small talk, not English) has no record (None). `candidates(record)`: one
dict a candidate, the fields every lab reads; `record.reading` gives a lab what it reads besides.

Recording reads nothing the engine would not have read, and changes no score: the engine answers as it does
without it. Limits: the hooks are module-wide and the records one list, so one question at a time (no questions asked
on threads while it is open), and only calls made through qa.answering.answer's names are seen. The record holds the reading and the
index: labs pickle the rows of `candidates`, never the record.
"""

from __future__ import annotations

import argparse
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import qa.answering.answer as answer_module
from qa.settings import Settings


@dataclass
class Record:
    """One call of qa.answering.answer.answer, as its hooked steps saw it."""

    hits: list
    incoming: list  # (hand score, cosine, hit position, sentence id, sentence) a candidate, as the token match got it
    settings: Settings
    reading: object | None  # qa.answering.token_match.QuestionReading, or None: no token match
    matched: dict[int, float] = field(default_factory=dict)  # candidate -> its token match (unweighted), if read
    index: object | None = None  # set by the heading fit's hook
    fitted: list | None = None  # the candidates after the heading fit: their scores before the lift
    lifts: list[float] | None = None


class AnswerRecorder:
    """Hooks qa.answering.answer's `_with_token_match`, `_with_heading_fit` and `example_lifts` while open."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._originals: tuple | None = None

    def __enter__(self) -> "AnswerRecorder":
        if self._originals is not None:
            raise RuntimeError("this recorder is already open")
        match, fit, lifts = self._originals = (answer_module._with_token_match, answer_module._with_heading_fit,
                                               answer_module.example_lifts)

        def recording_match(hits, competing, settings, reading):
            rescored, matched = match(hits, competing, settings, reading)
            self.records.append(Record(hits=hits, incoming=list(competing), settings=settings, reading=reading,
                                       matched=dict(matched)))
            return rescored, matched

        def recording_fit(index, hits, competing, settings, reading):
            returned = fit(index, hits, competing, settings, reading)
            self.records[-1].index, self.records[-1].fitted = index, list(returned)
            return returned

        def recording_lifts(*args, **kwargs):
            returned = lifts(*args, **kwargs)
            self.records[-1].lifts = list(returned)
            return returned

        answer_module._with_token_match = recording_match
        answer_module._with_heading_fit = recording_fit
        answer_module.example_lifts = recording_lifts
        return self

    def __exit__(self, *exc) -> None:
        (answer_module._with_token_match, answer_module._with_heading_fit,
         answer_module.example_lifts) = self._originals
        self._originals = None
        self.records.clear()

    def ask(self, engine, question: str, history: Sequence[str] = ()):
        """(engine.ask's result, the Record of the call of `answer` that made it, or None when none was made)."""
        if self._originals is None:
            raise RuntimeError("open the recorder first: with AnswerRecorder() as recorder")
        self.records.clear()
        result = engine.ask(question, list(history))
        return result, (self.records[-1] if self.records else None)


def candidates(record: Record | None) -> list[dict]:
    """One dict a candidate answer choice weighed, in its order, with:
    "base" (the hand score), "cosine", "position" (its passage's among the hits), "sid", "sentence",
    "chunk" (the passage's chunk id), "source", "title", "section" (the passage's heading), "own_section" (the
    sentence's own section: a passage of short sections holds several; what the answer's source names),
    "read" (the engine computed its token match), "token_match" (that match, unweighted; None where not read),
    "fitted" (its score after the restatement penalty, the token match where read and the heading fit),
    "lift" (the example questions' lift) and "final" (the engine's final score: fitted +
    example_answer_weight x lift; the answer sentence is the candidate of best final score)."""
    if record is None or record.fitted is None:
        return []
    index, settings = record.index, record.settings
    lifts = record.lifts if record.lifts is not None else [0.0] * len(record.fitted)
    rows = []
    for i, (came, went, lift) in enumerate(zip(record.incoming, record.fitted, lifts)):
        score, cosine, position, sentence_id, sentence = came
        chunk_id = record.hits[position].chunk
        chunk = index.chunks[chunk_id]
        rows.append({"base": score, "cosine": cosine, "position": position, "sid": sentence_id, "sentence": sentence,
                     "chunk": chunk_id, "source": chunk.source, "title": chunk.title, "section": chunk.section,
                     "own_section": chunk.section_of(sentence), "read": i in record.matched,
                     "token_match": record.matched.get(i), "fitted": went[0], "lift": lift,
                     "final": went[0] + settings.example_answer_weight * lift})
    return rows


def lab_commands(description: str, groups) -> tuple[argparse.ArgumentParser, object]:
    """A lab's command line: its parser and subcommands, with the `dump` every lab has (`--work`: the suite's
    folder; `--out`: where the groups' pickles go; `--groups`: which of `groups`, comma-separated). The lab
    adds its own subcommands to the second."""
    parser = argparse.ArgumentParser(description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    dump = commands.add_parser("dump")
    dump.add_argument("--work", required=True)
    dump.add_argument("--out", required=True)
    dump.add_argument("--groups", default=",".join(groups))
    return parser, commands


def save_group(out: Path, group: str, rows: list[dict], mismatched: int) -> None:
    """A group's dumped rows pickled in `out` (one file a group), and a line saying how many it got right and how
    many answered questions' best final score is not the engine's answer sentence (0 when the recording is whole)."""
    with open(out / (group.replace("/", "_") + ".pkl"), "wb") as f:
        pickle.dump(rows, f)
    right = sum(r["answered_right"] for r in rows)
    answerable = sum(r["answerable"] for r in rows)
    print(f"{group}: {right}/{answerable} right, {len(rows)} questions, "
          f"{mismatched} whose best final score is not the engine's answer sentence", flush=True)


def load_group(out: Path, group: str) -> list[dict]:
    """The rows `save_group` wrote for `group`."""
    with open(out / (group.replace("/", "_") + ".pkl"), "rb") as f:
        return pickle.load(f)


__all__ = ["AnswerRecorder", "Record", "candidates", "lab_commands", "load_group", "save_group"]
