"""`python -m qa ask --jsonl`'s loop (qa.serving.jsonl.answer_jsonl) and the engine's kept question vectors.

Order, errors, batching and flow do not depend on what the vectors mean: a tiny index with the fake
embedder. The last test holds the batched answers to the real model's answers one question at a time;
tests/test_cli.py runs the real command on the real model.
"""

from __future__ import annotations

import io
import json
import threading

import pytest

from qa.serving.jsonl import CHUNK_LINES, answer_jsonl

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
            # A blank line gets no answer: the line after it is written at once.
            if number and self.lines[number - 1].strip() and not self.answered.acquire(timeout=20):
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


def bad_and_good_lines() -> list[str]:
    """Questions, follow-ups and every kind of bad line, more than a chunk of them."""
    lines = batch_lines() * 8
    lines[4] = json.dumps({"question": "x" * 100_000}) + "\n"  # over the question limit
    lines[12] = "{" * 3_000_000 + "\n"  # huge, and not JSON
    lines[20] = json.dumps(["what is naloxone"]) + "\n"  # JSON, not an object
    lines[27] = json.dumps({"question": "what is naloxone", "history": "not a list"}) + "\n"
    lines[33] = json.dumps({"question": "hello"}) + "\n"  # small talk: answered, nothing embedded
    return lines


def encode_sizes(embedder, monkeypatch) -> list[int]:
    """The number of texts of each call to `embedder.encode`, as they come."""
    sizes: list[int] = []
    encode = embedder.encode

    def counted(texts, *args, **kwargs):
        sizes.append(len(texts))
        return encode(texts, *args, **kwargs)

    monkeypatch.setattr(embedder, "encode", counted)
    return sizes


def test_a_piped_batch_is_embedded_in_batches_and_answered_as_one_line_at_a_time(tiny_engine, fake_embedder,
                                                                                monkeypatch):
    lines = bad_and_good_lines()
    sizes = encode_sizes(fake_embedder, monkeypatch)
    piped = io.StringIO()
    assert answer_jsonl(tiny_engine, io.StringIO("".join(lines)), piped, workers=2) == 0
    questions = sum(1 for line in lines if line.strip())
    assert len(sizes) < questions / 4 and max(sizes) > 1, "a pipe full of questions is embedded in batches"

    tiny_engine.forget()
    sizes.clear()
    waiting = Conversation(lines)
    assert answer_jsonl(tiny_engine, waiting, waiting, workers=2) == 0
    assert piped.getvalue().splitlines() == [line.rstrip("\n") for line in waiting.written]
    assert len(sizes) >= len({json.loads(line)["question"] for line in waiting.written if '"question"' in line}) - 1

    rows = [json.loads(line) for line in piped.getvalue().splitlines()]
    assert len(rows) == questions
    errors = {row["line"]: row["error"] for row in rows if "error" in row}
    assert "characters long" in errors[5] and "not valid JSON" in errors[13]
    assert "expected a JSON object" in errors[21] and "history must be a list" in errors[28]
    assert sum(1 for row in rows if "error" not in row) > CHUNK_LINES


def test_a_failing_question_model_fails_each_question_not_the_batch(tiny_engine, fake_embedder, monkeypatch):
    from qa.errors import ModelError

    def broken(*args, **kwargs):
        raise ModelError("the question model cannot be loaded")

    monkeypatch.setattr(fake_embedder, "encode", broken)
    out = io.StringIO()
    assert answer_jsonl(tiny_engine, io.StringIO("".join(batch_lines())), out, workers=2) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert rows and all("error" in row for row in rows)
    assert sum("cannot be loaded" in row["error"] for row in rows) > 10


@pytest.mark.slow
def test_real_questions_batched_get_the_answers_they_get_alone_from_one_forward_pass(engine, monkeypatch):
    """Vectors from a padded batch differ from a question's alone in the last bits only: the same
    answers and passages. A question whose searched text is not the typed one (synonyms, a follow-up)
    needs no pass of its own for its token vectors."""
    from qa.models.onnx_model import OnnxModel

    assert engine.embedder.backend == "onnx" and engine.index.tokens is not None
    asks = [("does naloxone reverse ketamine", []), ("will narcan help someone on special k", []),
            ("why not?", ["does naloxone reverse ketamine"]), ("how long does a k hole last", []),
            ("what are the withdrawal symptoms of ketamine", []), ("is ketamine addictive", []),
            ("can ketamine treat depression", []), ("what is the capital of France", []),
            ("does ketamine get you high in therapy", []), ("and for opioids?", ["is ketamine addictive"])]
    engine.forget()
    alone = [engine.ask(question, history).to_dict() for question, history in asks]
    engine.forget()
    runs: list[int] = []
    forward = OnnxModel._forward  # every forward pass goes through it

    def counted(self, shown, encodings, wanted):
        runs.append(len(shown))
        return forward(self, shown, encodings, wanted)

    monkeypatch.setattr(OnnxModel, "_forward", counted)
    out = io.StringIO()
    answer_jsonl(engine, io.StringIO("".join(json.dumps({"question": q, "history": h}) + "\n" for q, h in asks)),
                 out, workers=2)
    batched = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(runs) <= 3 and sum(runs) > len(asks), "a chunk's texts in a batch per core, none embedded again"
    for one, many in zip(alone, batched, strict=True):
        assert (many["found"], many["answer"]) == (one["found"], one["answer"])
        assert [p["text"] for p in many["passages"]] == [p["text"] for p in one["passages"]]
        assert max(abs(a["score"] - b["score"]) for a, b in zip(one["passages"], many["passages"])) < 1e-5


def test_questions_are_answered_while_the_texts_of_later_ones_are_embedded(tiny_engine, monkeypatch):
    """Answering is mostly Python, on one core at a time: the forward passes still to come run meanwhile."""
    answering = threading.Event()
    embed_batch, ask = tiny_engine.embed_batch, tiny_engine.ask
    batches = []

    def held_embed_batch(batch):  # the third pass on waits until a question is being answered
        batches.append(len(batch))
        if len(batches) >= 3:
            assert answering.wait(timeout=20), "no question was answered before the last passes were done"
        return embed_batch(batch)

    def noted_ask(*args, **kwargs):
        answering.set()
        return ask(*args, **kwargs)

    monkeypatch.setattr(tiny_engine, "embed_batch", held_embed_batch)
    monkeypatch.setattr(tiny_engine, "ask", noted_ask)
    lines = [json.dumps({"question": f"{QUESTIONS[n % len(QUESTIONS)]} {n}"}) + "\n" for n in range(CHUNK_LINES)]
    out = io.StringIO()
    assert answer_jsonl(tiny_engine, io.StringIO("".join(lines)), out, workers=2) == 0
    assert len(out.getvalue().splitlines()) == len(lines) and len(batches) >= 4


def test_a_piped_batch_answers_as_each_question_alone_and_embeds_each_text_once(tiny_engine, fake_embedder,
                                                                              monkeypatch):
    lines = bad_and_good_lines()
    embedded: list[str] = []
    embed_batch = tiny_engine.embed_batch

    def noted(batch):
        embedded.extend(batch)
        return embed_batch(batch)

    monkeypatch.setattr(tiny_engine, "embed_batch", noted)
    out = io.StringIO()
    assert answer_jsonl(tiny_engine, io.StringIO("".join(lines)), out, workers=2) == 0
    assert len(embedded) == len(set(embedded)), "a text two questions need is embedded once"

    tiny_engine.forget()
    batched = [json.loads(row) for row in out.getvalue().splitlines()]
    asked = [line for line in lines if line.strip()]
    assert len(batched) == len(asked)
    answered = [(row, json.loads(line)) for row, line in zip(batched, asked) if "error" not in row]
    assert len(answered) > CHUNK_LINES
    for row, request in answered:  # one at a time, in order, as a chat asks them
        assert row == tiny_engine.ask(request["question"], request.get("history", [])).to_dict()


def test_a_follow_up_is_answered_after_its_earlier_turns_line_and_does_not_answer_it_again(tiny_engine, monkeypatch):
    asked = []
    ask = tiny_engine._ask

    def noted(live, text, earlier, *args, **kwargs):
        asked.append((text, earlier))
        return ask(live, text, earlier, *args, **kwargs)

    monkeypatch.setattr(tiny_engine, "_ask", noted)
    lines = []
    for number in range(20):
        first = f"{QUESTIONS[number % len(QUESTIONS)]} {number}"
        lines += [json.dumps({"question": first}) + "\n",
                  json.dumps({"question": "why not?", "history": [first]}) + "\n"]
    out = io.StringIO()
    assert answer_jsonl(tiny_engine, io.StringIO("".join(lines)), out, workers=2) == 0
    assert len(out.getvalue().splitlines()) == len(lines)
    assert len(asked) == len(lines), "each line answered once: no earlier turn answered again"
