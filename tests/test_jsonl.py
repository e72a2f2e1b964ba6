"""`python -m qa ask --jsonl`'s loop (qa.cli.answer_jsonl) and the engine's kept question vectors.

Order, errors and flow do not depend on what the vectors mean: a tiny index with the fake
embedder. tests/test_cli.py runs the real command on the real model.
"""

from __future__ import annotations

import io
import json
import threading

import pytest

from qa.cli import answer_jsonl

QUESTIONS = ["what is naloxone", "does naloxone reverse ketamine", "how long does ketamine last",
             "what is ketamine", "is naloxone safe"]


def batch_lines() -> list[str]:
    lines = []
    for number in range(40):
        question = QUESTIONS[number % len(QUESTIONS)]
        if number % 7 == 3:
            lines.append("this is not json\n")
        elif number % 11 == 5:
            lines.append(json.dumps({"question": ""}) + "\n")
        else:
            history = [QUESTIONS[(number + 1) % len(QUESTIONS)]] if number % 3 == 0 else []
            lines.append(json.dumps({"question": question + "?" * (number % 4), "history": history}) + "\n")
    lines.insert(10, "\n")  # a blank line gets no answer line
    return lines


def test_answers_come_in_the_input_order_whatever_the_number_of_workers(tiny_engine):
    outputs = {}
    for workers in (1, 2, 4):
        tiny_engine.forget()
        out = io.StringIO()
        assert answer_jsonl(tiny_engine, io.StringIO("".join(batch_lines())), out, workers) == 0
        outputs[workers] = out.getvalue().splitlines()
    assert outputs[1] == outputs[2] == outputs[4]
    rows = iter(json.loads(line) for line in outputs[4])
    for number, line in enumerate(batch_lines(), 1):  # a blank line gets no row, but counts as a line
        if not line.strip():
            continue
        row = next(rows)
        if line.startswith("this is not json"):
            assert row["line"] == number and "not valid JSON" in row["error"]
        elif json.loads(line)["question"] == "":
            assert row == {"line": number, "error": "Please type a question."}
        else:
            assert row["question"] == json.loads(line)["question"]
    assert next(rows, None) is None


class Conversation:
    """Standard input and output of a script that writes a line only after the answer to the one before."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.answered = threading.Semaphore(0)
        self.written: list[str] = []

    def __iter__(self):
        for number, line in enumerate(self.lines):
            if number and not self.answered.acquire(timeout=20):
                raise AssertionError(f"no answer to line {number} came before line {number + 1} was written")
            yield line

    def write(self, text: str) -> None:
        self.written.append(text)
        self.answered.release()

    def flush(self) -> None:
        pass


def test_each_answer_is_written_before_the_next_line_comes(tiny_engine):
    conversation = Conversation([json.dumps({"question": q}) + "\n" for q in QUESTIONS])
    assert answer_jsonl(tiny_engine, conversation, conversation, workers=2) == 0
    assert [json.loads(line)["question"] for line in conversation.written] == QUESTIONS


class BrokenPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError("the reader went away")


def test_a_broken_output_stops_the_batch_with_its_error(tiny_engine):
    with pytest.raises(BrokenPipeError):
        answer_jsonl(tiny_engine, io.StringIO("".join(batch_lines()) * 5), BrokenPipe(), workers=2)


def test_a_text_asked_again_is_not_embedded_again(tiny_engine, fake_embedder):
    tiny_engine.ask("what is naloxone")
    before = fake_embedder.texts_encoded
    again = tiny_engine.ask("what is naloxone")
    assert fake_embedder.texts_encoded == before
    assert again.to_dict() == tiny_engine.ask("what is naloxone").to_dict()
