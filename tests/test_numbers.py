"""One rule for numbers: a number that changes what the product answers is a Settings field with its reason
(qa/settings.py), or a fitted value in qa/fitted/ with its origin - not a literal in the code.

The scan reads every numeric literal in qa/. Not counted: 0, 1, -1, 2 and halves; indices and slice bounds;
round()'s digits; the exit status of Ctrl-C; division guards. Everything else must be in its module's
allow-list below, each entry with the reason it is not a setting: the limits of memory, time or a
library, display choices, format versions, definitions. A new tuned constant fails here until it is moved
to Settings or explained. An entry no longer in its module fails too, so the lists stay short.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from qa.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
QA = ROOT / "qa"

ANYWHERE = {0, 1, -1, 2, 0.5, 130, 1e-9, 1e-12}  # 130: the exit status of Ctrl-C; 1e-9, 1e-12: division guards

ALLOWED: dict[str, dict[float, str]] = {
    "qa/__init__.py": {128: "glibc's default malloc thresholds, in KiB,", 1024: "times bytes per KiB (a library's "
                       "own default, fixed so it stops growing)", 3: "mallopt's parameter number of "
                       "M_MMAP_THRESHOLD (malloc.h)"},
    "qa/answering/answer.py": {
        65536: "entries of a memo cache (memory, not answers)",
        3: "is_followup: a question of at most 3 content words that starts like a continuation, or points "
           "back, leans on the one before (a definition of a follow-up, used without Settings)",
    },
    "qa/evaluation/benchmark.py": {240: "the benchmark's sample: answerable,", 90: "unanswerable", 80: "and off-topic questions "
                        "asked (a measurement's size, not the product's behaviour; qa/cli.py offers the same)"},
    "qa/serving/chat.py": {900.0: "longest a question waits for the first index before it is asked anyway"},
    "qa/reading/chunking.py": {3: "a list item counts its bullet and line break"},
    "qa/cli.py": {88: "line width of the report", 240: "the benchmark's sample (qa/evaluation/benchmark.py)", 90: "same",
                  80: "same"},
    "qa/reading/corpus.py": {1e6: "bytes per MB, in messages"},
    "qa/models/embedding.py": {256: "texts per progress report on the torch path"},
    "qa/serving/engine.py": {1024: "remembered answers and kept question vectors (memory)",
                     4: "a question over 4x the limit is refused before it is read whole",
                     8: "texts per forward pass when a batch of questions is prepared (speed: docs/BENCHMARKS.md)"},
    "qa/serving/jsonl.py": {128: "lines of --jsonl whose texts are sorted by length together at most (speed; "
                            "what has arrived is taken, so no answer waits for more lines)"},
    "qa/evaluation/suite.py": {73: "health-web.jsonl's off-topic questions are h073", 81: "to h080 (eval/README.md)",
                    60: "the suite's sample sizes (a measurement's size, not the product's behaviour):", 20: "same",
                    30: "same", 6: "same", 3: "same (the small suite of the tests)", 5: "same", 16: "same",
                    8: "same", 99.0: "a bar no margin reaches: the label fit's starting point",
                    12: "candidate bars per signal in the label fit (how finely it searches; 20 for the margin,",
                    10: "12 for the cosine, 10 for each agreement signal)",
                    0.95: "the precision targets the strong fit tries in turn (STRONG_TARGETS): a search ladder; which",
                    0.97: "one is used, the corpus left out chooses (choose_precision, Settings.strong_match_promise)",
                    0.99: "same"},
    "qa/evaluation/evaluate.py": {0.55: "the dense baseline's bar,", 60: "RRF's k and", 100: "depth, and",
                       1000: "fixed windows of 1000", 200: "overlapping by 200: baselines the product is compared "
                       "with, as published", 3: "hit@3", 20: "a sentence of at least 20 letters counts when judging "
                       "whether a passage lies in a MedQuAD gold section", 10: "an answer of at least 10 letters, "
                       "likewise (how the suite scores, not how the product answers)"},
    "qa/models/export.py": {17: "the ONNX opset the export is traced to"},
    "qa/models/bert_graph.py": {3: "the last axis of BERT's attention tensors (batch, heads, tokens, head)",
                                **{n: "onnx.proto's field numbers and enum values, protobuf's wire types and varint "
                                   "bits (definitions of the file format), and the IR version of opset 17"
                                   for n in (4, 5, 7, 8, 9, 11, 12, 20, 64, 127, 128)}},
    "qa/feedback/store.py": {4096: "replies remembered for votes (memory)", 10: "earlier questions a vote records",
                       5.0: "seconds SQLite waits for another process's lock",
                       30.0: "seconds a write waits for its turn among this process's writers (a stuck disk)", 8: "random bytes of a reply id",
                       500: "a FeedbackStore made by hand (the page passes Settings.feedback_comment_chars)"},
    "qa/files.py": {20: "hex digits of a recipe key"},
    "qa/serving/http_api.py": {1_000_000: "bytes of a request body read at most (memory; no question is this long)",
                       5: "seconds a 503 during start-up asks a client to wait (GET /ready says how far it is)",
                       200: "characters of a refusal's reason in its log line"},
    "qa/indexing/index.py": {9: "the index format's version", 32: "MiB of token vectors kept as float32 (memory)",
                             20: "bytes per MiB, as a power of 2"},
    "qa/indexing/milvus_store.py": {16_384: "Milvus's largest limit", 4_096: "rows per insert", 10: "seconds to connect"},
    "qa/models/onnx_model.py": {1e-4: "torch and onnxruntime sum in another order: the export's check tolerance",
                         3: "samples checked at load; onnxruntime's error-only log level", 12: "a sample text over "
                         "the model's window", 32: "the default batch (Embedder passes its own)",
                         8: "token vectors' batch: a question's few candidate sentences, little padding"},
    "qa/serving/page.py": {4: "example buttons under the chat", 20: "article files read for question headings"},
    "qa/models/question_bank.py": {0o777: "file mode bits", 0o644: "a new file's mode",
                            20: "a bank answer shorter than this is not matched to a sentence by inclusion"},
    "qa/models/refusal.py": {20: "fewer answerable questions in a group set no bar (a share of a handful is no estimate)",
                      0.02: "the smallest background spread (no division by a near-zero spread)",
                      50: "background questions needed for the statistics", 8192: "rows per block (memory)",
                      10: "the 10th,", 90: "and 90th percentiles span 2.563 standard deviations of a normal:",
                      2.563: "(the spread's definition)", 10_000: "the solver's iteration budget",
                      1000: "bars rounded down to 3 decimals",
                      1e-06: "a gate just above the highest value that stays answered (float rounding)"},
    "qa/reading/formats/text.py": {65536: "characters scanned to tell a binary file (time; Settings.binary_control_share "
                                   "decides)"},
    "qa/reading/formats/pdf.py": {80: "the width of a PDF with no lines (nothing is joined then)"},
    "qa/serving/render.py": {12: "list items shown before 'N more items'", 60: "seconds in a minute"},
    "qa/feedback/review.py": {8: "example ids listed per group in the report"},
    "qa/answering/search.py": {8: "sentences searched per passage wanted (several sentences share a passage)"},
    "qa/answering/subject.py": {16: "article word sets kept for the last few indexes a process loaded (a cache)",
                                4: "a variant shares a prefix of at least four letters (shorter prefixes are "
                                   "shared by unrelated words: the definition of a variant, `variant_of`)",
                                3: "and a word starting an article word is a short form of it from three letters"},
    "qa/serving/service.py": {180.0: "longest a question waits for the engine's process to load",
                      10: "seconds the child gets to stop"},
    "qa/answering/triage.py": {8: "small talk is at most 8 words ('ok thanks so much')",
                                1024: "questions whose triage is kept (memory)"},
}


def _literals(path: Path):
    """(value, line) of every numeric literal that counts (module docstring)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    exempt: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):  # indices and slice bounds
            exempt |= {id(n) for n in ast.walk(node.slice)}
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "round":
            exempt |= {id(n) for arg in node.args[1:] for n in ast.walk(arg)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and type(node.value) in (int, float) and id(node) not in exempt
                and node.value not in ANYWHERE):
            yield node.value, node.lineno


def modules() -> list[tuple[str, Path]]:
    return sorted((str(p.relative_to(ROOT)), p) for p in QA.rglob("*.py")
                  if p.name != "settings.py")


def test_no_module_grows_a_bare_tuned_number():
    bare = [f"{name}:{line}: {value!r}" for name, path in modules() for value, line in _literals(path)
            if value not in ALLOWED.get(name, {})]
    assert bare == [], ("numbers that change behaviour belong in Settings (with their reason) or qa/fitted/ "
                        "(with their origin); a limit or a definition goes in this test's ALLOWED, explained")


def test_every_allowed_number_is_still_there():
    found = {name: {value for value, _ in _literals(path)} for name, path in modules()}
    stale = [f"{name}: {value!r}" for name, allowed in ALLOWED.items() for value in allowed
             if value not in found.get(name, set())]
    assert stale == []


def test_every_setting_has_its_reason():
    """A Settings field follows a comment: its own, or the one of the group of fields it belongs to."""
    source = (QA / "settings.py").read_text(encoding="utf-8").splitlines()
    tree = ast.parse("\n".join(source))
    body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings").body
    fields = [n for n in body if isinstance(n, ast.AnnAssign)]
    assert len(fields) == len(Settings.__dataclass_fields__)
    field_lines = {line for n in fields for line in range(n.lineno, n.end_lineno + 1)}
    unexplained = []
    for node in fields:
        line = node.lineno - 1
        while line in field_lines:  # up through the fields of its group
            line -= 1
        if not source[line - 1].strip().startswith("#"):
            unexplained.append(node.target.id)
    assert unexplained == []


def test_fitted_values_name_their_origin_and_the_files_they_came_from():
    for path in (QA / "fitted").glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data.get("command") and data.get("fitted_at") and data.get("fitted_on"), path
        named = re.findall(r"\beval/[\w/.-]+\.jsonl\b", json.dumps(data))
        assert all((ROOT / p).is_file() for p in named), (path, named)  # no stale paths


def test_the_scan_sees_a_bare_number():
    tree_source = "def f(x):\n    return x * 0.37 + y[3] + round(x, 4)\n"
    path = ROOT / "tests" / ".numbers-probe.py"
    path.write_text(tree_source, encoding="utf-8")
    try:
        assert [value for value, _ in _literals(path)] == [0.37]
    finally:
        path.unlink()
