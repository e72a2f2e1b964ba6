"""What answering from a built index loads, and what it keeps for later questions.

A cold `python -m qa ask` pays for every module it imports; these tests hold the answering path to the
modules it uses (the readers of articles, the exporter and importlib.metadata are a build's), and check
the token vectors answering reads as float32 are the stored float16 rows, kept within their bound. The chat
page's own process (app.py; its engine runs in another) only formats replies: it loads none of answering.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import numpy as np

from conftest import ROOT
from qa.indexing.index import TokenTable

# Imported by a build or a staleness check, never by answering from a built index.
BUILD_ONLY = ("qa.reading.corpus", "qa.reading.formats.html", "qa.reading.formats.pdf", "qa.models.export",
              "qa.models.bert_graph", "qa.indexing.build", "importlib.metadata", "bm25s", "torch")


def test_the_answering_modules_do_not_import_a_build_s_modules():
    script = ("import json, os, sys\n"
              "import qa.cli\n"
              "from qa.serving.engine import Engine\n"
              "from qa.serving.jsonl import answer_jsonl\n"
              f"print(json.dumps([[m for m in {BUILD_ONLY!r} if m in sys.modules],"
              " os.environ.get('OPENBLAS_NUM_THREADS')]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"})
    assert done.returncode == 0, done.stderr
    imported, threads = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported == []
    assert threads == "1"  # numpy's products on the asking thread (qa/__init__.py)


# What finding an answer loads: the engine's process holds them, the page's process never does.
ENGINE_ONLY = ("faiss", "onnxruntime", "bm25s", "torch", "qa.indexing.index", "qa.answering.answer")


def test_the_page_s_process_loads_none_of_answering():
    """app.py's imports of qa (read from app.py, not started) load no answering stack: the page's process
    formats replies and unpickles the engine's results (qa/answering/result.py), so a cold page pays
    only for gradio."""
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    modules = sorted({node.module for node in tree.body if isinstance(node, ast.ImportFrom)
                      and node.module and node.module.split(".")[0] == "qa"}
                     | {f"qa.serving.{alias.name}" for node in tree.body if isinstance(node, ast.ImportFrom)
                        and node.module == "qa.serving" for alias in node.names})
    assert {"qa.serving.service", "qa.serving.render", "qa.serving.chat", "qa.serving.http_api"} <= set(modules)
    script = ("import json, sys\n"
              + "".join(f"import {module}\n" for module in modules)
              + f"print(json.dumps([m for m in {ENGINE_ONLY!r} if m in sys.modules]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_token_rows_are_the_stored_rows_as_float32_and_stay_within_their_bound():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((30, 4)).astype(np.float16)
    spans = np.array([[0, 10], [10, 20], [20, 25], [25, 30]], dtype=np.int64)  # 3 sentences, 1 chunk
    table = TokenTable(vectors, spans, 3)
    rows = table.sentence_rows(1)
    assert rows.dtype == np.float32 and np.array_equal(rows, vectors[10:20].astype(np.float32))
    assert table.sentence_rows(1) is rows  # converted once
    assert np.array_equal(table.subject_rows(0), vectors[25:30].astype(np.float32))
    assert not rows.flags.writeable
    small = TokenTable(vectors, spans, 3)
    small._converted.limit = 10 * 4 * 4  # one sentence's rows
    first = small.sentence_rows(0)
    small.sentence_rows(1)
    assert small._converted.size <= small._converted.limit
    assert small.sentence_rows(0) is not first  # dropped, converted again
    assert np.array_equal(small.sentence_rows(0), first)


def test_the_question_model_s_export_is_looked_for_where_the_exporter_stores_it(tmp_path):
    from qa.indexing import question_model
    from qa.models import export
    from qa.settings import Settings

    for settings in (Settings(index_dir=tmp_path / "index"), Settings(tuned_dir=tmp_path / "models")):
        manifest = {"model": {"encoder": {"backend": "onnx", "key": "k1"}}}
        assert question_model.query_export(manifest, settings).folder == export.store(settings) / "k1"
