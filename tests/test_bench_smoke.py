"""Smoke tests of the bench/ scripts: each runs at a tiny size and prints positive figures.

They keep the scripts working; they time nothing (the figures live in
docs/BENCHMARKS.md, from full runs). Each script's main(argv) runs in this
process (the model is loaded once and shared); the scripts' own children
(`python -m qa build`, `python app.py`, ...) are real processes.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

# Each runs a bench script end to end, builds and servers included.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

NUMBER = re.compile(r"^-?[0-9][0-9,]*(\.[0-9]+)?$")


def rows(output: str, title: str) -> dict[str, list[str]]:
    """The rows of one printed table, by first column; cells split on runs of 2+ spaces."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("== ") and title in line)
    table = {}
    for line in lines[start + 3:]:
        if not line.strip() or line.startswith(("==", "#")):
            break
        cells = re.split(r"\s{2,}", line.strip())
        table[cells[0]] = cells[1:]
    assert table, f"table {title!r} is empty:\n{output}"
    return table


def positive(cell: str) -> float:
    assert NUMBER.match(cell), f"not a number: {cell!r}"
    value = float(cell.replace(",", ""))
    assert value > 0 and math.isfinite(value), f"not a positive number: {cell!r}"
    return value


def run(main, argv, capsys) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def test_synth_is_deterministic(tmp_path):
    from bench import synth
    a = synth.generate(tmp_path / "a", 25, seed=3)
    synth.generate(tmp_path / "b", 25, seed=3)
    assert a["chunks"] >= 25 and a["articles"] >= 1
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert all((tmp_path / "a" / n).read_text() == (tmp_path / "b" / n).read_text() for n in names)


def test_latency(capsys, tmp_path):
    from bench import latency
    out = run(latency.main, ["--size", "25", "--limit", "4", "--quick", "--workdir", str(tmp_path)], capsys)
    table = rows(out, "warm query latency by stage")
    for stage in ("encode (encode_one)", "FAISS dense", "BM25 lexical", "sentence search", "fusion",
                  "answer selection", "end to end (Engine.ask)", "floor: torch encode alone, 2 thread(s)",
                  "floor: torch encode alone, 1 thread(s)"):
        positive(table[stage][0])  # p50
        positive(table[stage][1])  # p95
    ratios = rows(out, "ratios")
    positive(ratios["end-to-end p50 / torch floor p50 (faster of 1, 2 threads)"][0])
    positive(ratios["qa ask --jsonl per question, piped / torch encode alone (faster of 1, 2 threads)"][0])
    positive(ratios["qa ask --jsonl per question, one line at a time / torch encode alone"][0])


def test_build(capsys, tmp_path):
    from bench import build
    out = run(build.main, ["--size", "25", "--quick", "--workdir", str(tmp_path)], capsys)
    summary = rows(out, "summary over repeats")
    for figure in ("ratio raw encode s / build s", "build s", "build peak RSS MB"):
        positive(summary[figure][0])
    rebuild = rows(out, "rebuild with nothing changed")["rebuild 1"]
    assert NUMBER.match(rebuild[0]) and float(rebuild[0]) < 2  # build seconds: may print as 0.00
    assert rebuild[2] == "0"  # nothing embedded


def test_cold_start(capsys, tmp_path):
    from bench import cold_start
    out = run(cold_start.main, ["--size", "25", "--quick", "--workdir", str(tmp_path)], capsys)
    stages = rows(out, "where the time goes")
    for stage in ("import onnxruntime + tokenizers", "question model load (ONNX export, checked)",
                  "index load (with checksums)", "first ask"):
        positive(stages[stage][0])
    starts = rows(out, "cold start, wall seconds")
    positive(starts["python -m qa ask (to exit)"][0])
    positive(starts["python app.py: first answer (/chat)"][0])
    assert rows(out, "slowest top-level imports")


def test_scale(capsys, tmp_path):
    from bench import scale
    out = run(scale.main, ["--sizes", "25,60", "--substitute-above", "25", "--limit", "3", "--quick",
                           "--ann-queries", "20", "--workdir", str(tmp_path)], capsys)
    builds = rows(out, "build and size")
    assert any("(real)" in k for k in builds) and any("(substituted)" in k for k in builds)
    for cells in builds.values():
        positive(cells[3])  # build s
        positive(cells[6])  # disk MB
    for cells in rows(out, "warm query latency (ms)").values():
        positive(cells[0])
        positive(cells[1])
    ann = rows(out, "flat vs HNSW")
    assert any(k.startswith("pooled REAL") for k in ann)
    for cells in ann.values():
        positive(cells[4])  # hnsw p50 ms
        positive(cells[6])  # recall@10


def test_latency_takes_the_distinct_questions_of_several_files(tmp_path):
    from bench import latency
    line = '{{"id": "{0}", "kind": "answerable", "question": "{1}", "history": {2}}}\n'
    (tmp_path / "a.jsonl").write_text(line.format("a1", "does naloxone reverse ketamine", "[]")
                                      + line.format("a2", "how long does it last", '["what is narcan"]'))
    (tmp_path / "b.jsonl").write_text(line.format("b1", "Does  naloxone reverse KETAMINE", "[]")  # asked again
                                      + line.format("b2", "how long does it last", "[]")  # another conversation
                                      + line.format("b3", "is ketamine an opioid", "[]"))
    questions = latency.distinct_questions([tmp_path / "a.jsonl", tmp_path / "b.jsonl"])
    assert [q.id for q in questions] == ["a1", "a2", "b2", "b3"]
