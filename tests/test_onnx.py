"""Questions embedded with onnxruntime + tokenizers: the same vectors as torch, no torch to answer, checked exports.

Real model, real exports (qa/models/export.py), real processes for `python -m qa`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CORPUS, ROOT, write_tiny_corpus
from qa.models import bert_graph, export, reference
from qa.indexing import question_model
from qa.indexing.build import build as build_index
from qa.models.embedding import Embedder, resolve_model
from qa.serving.engine import Engine
from qa.errors import IndexCorruptError, ModelError
from qa.evaluation.evaluate import PRODUCT_SETS, load_questions
from qa.models.onnx_model import (INFO_FILE, MODEL_FILE, SAMPLE_FILE, SAMPLE_TEXTS, SESSION_DATA_FILE, SESSION_FILE,
                                  SESSION_INFO_FILE, TOKENIZER_FILE, ExportInfo, OnnxModel, feeds, load_tokenizer,
                                  session_graph)
from qa.models.refusal import answer_everything
from qa.settings import Settings
from qa.serving.status import serving_status


def real_sentences() -> list[str]:
    """Passages and sentences of the articles, and questions people asked, of every length."""
    texts = []
    for path in sorted(CORPUS.glob("*.txt")):
        paragraphs = [p.strip() for p in path.read_text(encoding="utf-8").split("\n") if p.strip()]
        texts += paragraphs[:25]
        texts.append(" ".join(paragraphs[:40]))  # far over the 256-token window: truncated the same way
    texts += [q.question for q in load_questions(PRODUCT_SETS["heldout"])][:40]
    return texts


# A line for a script run by `run_python`: the heavy modules it imported, in a list named `heavy`.
HEAVY_MODULES = "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"


def run_python(script: str, timeout: int) -> subprocess.CompletedProcess:
    """`script` in a fresh interpreter from the repository's root: what a process of the product imports."""
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=timeout)


def test_onnx_gives_torch_s_vectors_on_real_sentences(engine, embedder):
    onnx = engine.embedder  # the question model of the real index: the tuned model's export
    assert onnx.backend == "onnx"
    torch_model = Embedder(onnx.name).torch_model()
    texts = real_sentences()
    ours = onnx.encode(texts)
    theirs = torch_model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    cosines = np.einsum("ij,ij->i", ours, theirs)
    assert cosines.min() >= 0.9999, texts[int(cosines.argmin())][:80]
    assert np.abs(ours - theirs).max() < 1e-4
    # One text at a time (a question) gives the vector it gets in a padded batch.
    assert np.abs(np.stack([onnx.encode_one(t) for t in texts[:20]]) - ours[:20]).max() < 1e-5


def test_the_tokenizer_truncates_at_the_model_s_window_not_at_128(engine):
    model = engine.embedder._load()
    long_text = " ".join(["naloxone"] * 400)
    ids = model._tokenizer.encode(long_text).ids
    assert len(ids) == 256  # the model's max_seq_length; the packaged tokenizer.json would say 128
    arrays = feeds(model._tokenizer, model.info, ["does naloxone reverse ketamine", long_text[:200]])
    assert arrays["input_ids"].shape[1] < 128  # padded to the longest of the batch only


def test_a_batch_is_padded_as_the_tokenizer_pads(engine):
    """`_arrays` pads what the tokenizer no longer pads: the same ids, mask and types as its own padding."""
    model = engine.embedder._load()
    texts = ["does naloxone reverse ketamine", "Naloxone does not reverse the effects of ketamine, a dissociative.",
             "ok"]
    padding = load_tokenizer(model.folder / TOKENIZER_FILE, model.info)
    padding.enable_padding(pad_id=model.info.pad_id, pad_token=model.info.pad_token)
    theirs = padding.encode_batch(texts)
    ours = feeds(model._tokenizer, model.info, texts)
    assert ours["input_ids"].tolist() == [e.ids for e in theirs]
    assert ours["attention_mask"].tolist() == [e.attention_mask for e in theirs]
    assert ours["token_type_ids"].tolist() == [e.type_ids for e in theirs]


def test_encode_batches_texts_by_token_count_and_keeps_each_row_in_its_place(engine, monkeypatch):
    """Texts are batched longest first by token count (not characters), so a batch pads little; every row is
    still its own text's vector, and the texts whose token vectors are asked for get them."""
    model = engine.embedder._load()
    texts = real_sentences()[:60] + ["ok", "... ... ...", "a b c d e f g h i j"]  # characters mislead
    counts = [len(model._tokenizer.encode(t.lower()).ids) for t in texts]
    seen: list[list[int]] = []
    forward = type(model)._forward

    def recording(self, shown, encodings, wanted):
        seen.append([len(e.ids) for e in encodings])
        return forward(self, shown, encodings, wanted)
    monkeypatch.setattr(type(model), "_forward", recording)
    tokens = [True if i % 3 == 0 else None for i in range(len(texts))]
    vectors = model.encode(texts, batch_size=8, tokens=tokens)
    assert sorted((n for batch in seen for n in batch), reverse=True) == sorted(counts, reverse=True)
    assert [n for batch in sorted(seen, key=lambda b: (-b[0], -b[-1])) for n in batch] == sorted(counts, reverse=True)
    assert all(len(batch) <= 8 for batch in seen)
    alone = np.stack([model.encode([t], batch_size=1)[0] for t in texts])
    assert np.abs(vectors - alone).max() < 1e-5
    for i, kept in enumerate(tokens):
        assert (kept is None) == (i % 3 != 0)
        if kept is not None:
            assert kept.words == model.token_vectors([texts[i]])[0].words


def test_asking_in_a_fresh_process_never_imports_torch(engine, real_settings):
    # `python -m qa ask ...` exactly (qa/__main__.py run as __main__), then what it imported. `ask` leaves with
    # os._exit (no teardown): here that exit is turned into SystemExit, so the script can look before leaving.
    argv = ["qa", "ask", "--json", "--index", str(real_settings.index_dir), "--corpus", str(real_settings.corpus_dir),
            "does naloxone reverse ketamine"]
    script = ("import json, os, runpy, sys\n"
              f"sys.argv = {argv!r}\n"
              "def leave(code):\n    raise SystemExit(code)\n"
              "os._exit = leave\n"
              "try:\n    runpy.run_module('qa', run_name='__main__', alter_sys=True)\n"
              "except SystemExit as exit_:\n    code = exit_.code\n"
              + HEAVY_MODULES +
              "print(json.dumps(heavy), file=sys.stderr)\n"
              "sys.exit(code)\n")
    done = run_python(script, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["found"]
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


@pytest.fixture
def tiny(tmp_path, embedder) -> Settings:
    """A tiny index built in its own folder, with its own exports folder."""
    settings = Settings(corpus_dir=write_tiny_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    build_index(settings, embedder)
    return settings


def ask(settings: Settings, question: str = "does naloxone reverse overdose") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("QA_TUNED_DIR")  # the tiny index keeps its exports in its own folder
    return subprocess.run([sys.executable, "-m", "qa", "ask", question, "--index", str(settings.index_dir),
                           "--corpus", str(settings.corpus_dir)], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)


def live_export(settings: Settings):
    return question_model.query_export(question_model.load(settings, check_encoder=False).manifest, settings)


def flip_middle_byte(path) -> None:
    """Alter one byte in the middle of the file at `path`, in place: a file damaged on disk."""
    with open(path, "r+b") as handle:
        handle.seek(handle.seek(0, 2) // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))


def test_a_damaged_export_is_refused_by_ask_and_made_again_by_the_build(tiny, embedder):
    onnx = live_export(tiny)
    flip_middle_byte(onnx.folder / MODEL_FILE)  # one byte altered in the middle of the weights
    with pytest.raises(ModelError, match="truncated or altered.*python -m qa build"):
        OnnxModel.load(onnx.folder, onnx.key)
    done = ask(tiny)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "truncated or altered" in done.stderr and "python -m qa build" in done.stderr

    messages = []
    report = build_index(tiny, Embedder(tiny.model), progress=messages.append)
    assert any("missing or damaged: making it again" in m for m in messages)
    assert report.embedded == 0  # the vectors did not change: only the export is made again
    assert ask(tiny).returncode == 0


def test_a_missing_or_mismatched_export_is_refused_or_rebuilt(tiny, embedder):
    onnx = live_export(tiny)
    info = json.loads((onnx.folder / INFO_FILE).read_text())
    (onnx.folder / INFO_FILE).write_text(json.dumps({**info, "key": "another-model"}))
    with pytest.raises(ModelError, match="another ONNX export.*python -m qa build"):
        OnnxModel.load(onnx.folder, onnx.key)
    assert "another ONNX export" in ask(tiny).stderr

    shutil.rmtree(onnx.folder)
    with pytest.raises(IndexCorruptError, match="ONNX export.*missing.*python -m qa build"):
        question_model.load(tiny)
    messages = []
    engine = Engine.open(tiny, build="stale", say=messages.append)  # the page's way: rebuilt, then answers
    assert any("cannot be used" in m for m in messages)
    assert engine.embedder.backend == "onnx" and engine.ask("does naloxone reverse overdose").found


def test_a_load_runs_the_set_up_graph_which_gives_model_onnx_s_vectors_bit_for_bit(engine, tmp_path):
    """The export's session.onnx (onnxruntime's save of the graph it set up, its weights mapped from
    session.onnx.data) is what a load runs; model.onnx, loaded where there is none, gives the same bits."""
    model = engine.embedder._load()
    assert model.graph == model.folder / SESSION_FILE
    plain = tmp_path / "without-session-graph"  # the same export as one made before session.onnx existed
    plain.mkdir()
    for name in (MODEL_FILE, TOKENIZER_FILE, SAMPLE_FILE, INFO_FILE):
        os.link(model.folder / name, plain / name)
    from_model_onnx = OnnxModel.load(plain, model.info.key)
    assert from_model_onnx.graph == plain / MODEL_FILE
    texts = real_sentences()
    tokens, plain_tokens = [True] * len(texts), [True] * len(texts)
    assert np.array_equal(model.encode(texts, batch_size=8, tokens=tokens),
                          from_model_onnx.encode(texts, batch_size=8, tokens=plain_tokens))
    assert all(np.array_equal(a.vectors, b.vectors) and a.words == b.words for a, b in zip(tokens, plain_tokens))


def test_a_damaged_set_up_graph_falls_back_to_model_onnx_with_a_warning_and_the_build_saves_it_again(
        tiny, embedder, caplog):
    onnx = live_export(tiny)
    assert (onnx.folder / SESSION_INFO_FILE).is_file()
    flip_middle_byte(onnx.folder / SESSION_DATA_FILE)  # one byte of the weights altered
    model = OnnxModel.load(onnx.folder, onnx.key)  # still checked, on the graph it runs
    assert model.graph == onnx.folder / MODEL_FILE
    assert any("session.onnx.data is truncated or altered" in r.getMessage() and "python -m qa build" in r.getMessage()
               for r in caplog.records)
    done = ask(tiny)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert "set-up graph cannot be used" in done.stderr and "model.onnx is loaded instead" in done.stderr

    messages = []
    report = build_index(tiny, Embedder(tiny.model), progress=messages.append)
    assert any("saving the ONNX export's set-up graph" in m for m in messages)
    assert report.embedded == 0  # nothing exported or embedded again
    caplog.clear()
    assert OnnxModel.load(onnx.folder, onnx.key).graph == onnx.folder / SESSION_FILE
    assert not caplog.records
    done = ask(tiny)
    assert done.returncode == 0 and "set-up graph" not in done.stderr


def test_a_set_up_graph_is_used_only_when_whole_and_saved_by_this_onnxruntime_from_this_model_onnx(tiny):
    import onnxruntime

    onnx = live_export(tiny)
    info = ExportInfo.read(onnx.folder)
    version = onnxruntime.__version__
    assert session_graph(onnx.folder, info, version) == (onnx.folder / SESSION_FILE, None)
    assert session_graph(onnx.folder, info, "0.1")[1] == f"it was saved by onnxruntime {version}, this is 0.1"
    other = ExportInfo(**{**info.__dict__, "onnx_sha256": "0" * 64})
    assert session_graph(onnx.folder, other, version)[1] == "it was not saved from this model.onnx"
    record = json.loads((onnx.folder / SESSION_INFO_FILE).read_text())
    (onnx.folder / SESSION_INFO_FILE).write_text(json.dumps({**record, "onnx_bytes": 1}))
    assert "session.onnx is truncated or altered" in session_graph(onnx.folder, info, version)[1]
    (onnx.folder / SESSION_INFO_FILE).write_text("{")
    assert "session.json is unreadable" in session_graph(onnx.folder, info, version)[1]
    (onnx.folder / SESSION_INFO_FILE).unlink()  # an export made before set-up graphs: model.onnx, no warning
    assert session_graph(onnx.folder, info, version) == (None, None)
    (onnx.folder / SESSION_FILE).unlink()
    messages = []
    build_index(tiny, Embedder(tiny.model), progress=messages.append)
    assert any("saving the ONNX export's set-up graph" in m for m in messages)
    assert session_graph(onnx.folder, info, version) == (onnx.folder / SESSION_FILE, None)


def test_another_model_is_exported_on_its_first_build(tmp_path, embedder):
    # A model named by path, not the packaged name: a copy of MiniLM in a folder of its own.
    model = tmp_path / "my-model"
    shutil.copytree(resolve_model(Settings().model), model)
    settings = Settings(corpus_dir=write_tiny_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index",
                        model=str(model))
    messages = []
    build_index(settings, Embedder(str(model)), progress=messages.append)
    assert any(f"exporting {model} to ONNX" in m for m in messages)
    # (Refusal is fitted for the packaged model: this one answers everything.)
    engine = Engine.open(settings, build="never", refusal=answer_everything(str(model)))
    assert engine.embedder.backend == "onnx" and engine.embedder.export.key == export.export_key(str(model))
    assert engine.ask("does naloxone reverse overdose").answer.startswith("Naloxone reverses opioid overdose")
    # Its layout is the plain one, exported without sentence-transformers: still sentence-transformers' vectors.
    assert export.plain_layout(model) == (256, False)
    texts = real_sentences()
    ours = engine.embedder.encode(texts)
    theirs = Embedder(str(model)).torch_model().encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                                       show_progress_bar=False)
    assert np.abs(ours - theirs).max() < 1e-4 and np.einsum("ij,ij->i", ours, theirs).min() >= 0.9999


def test_only_the_plain_layout_is_exported_without_sentence_transformers(tmp_path):
    packaged = Path(resolve_model(Settings().model))

    def layout(change: dict[str, object]) -> tuple[int, bool] | None:
        folder = tmp_path / f"model-{len(list(tmp_path.iterdir()))}"
        for name in ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json", "tokenizer.json"):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(packaged / name, folder / name)
        for name, content in change.items():
            (folder / name).unlink() if content is None else (folder / name).write_text(json.dumps(content))
        return export.plain_layout(folder)

    assert layout({}) == (256, False)
    assert layout({"sentence_bert_config.json": {"max_seq_length": 128, "do_lower_case": True}}) == (128, True)
    # sentence-transformers 6 writes the pooling this way
    assert layout({"1_Pooling/config.json": {"embedding_dimension": 384, "pooling_mode": "mean"}}) == (256, False)
    assert layout({"1_Pooling/config.json": {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}}) is None
    assert layout({"1_Pooling/config.json": {"pooling_mode": "max"}}) is None
    assert layout({"sentence_bert_config.json": {"do_lower_case": False}}) is None  # no window written down
    assert layout({"config_sentence_transformers.json": {"default_prompt_name": "query"}}) is None
    assert layout({"tokenizer.json": None}) is None
    assert layout({"modules.json": json.loads((packaged / "modules.json").read_text())[:2]}) is None  # no Normalize
    assert layout({"modules.json": None}) is None


def test_a_model_that_cannot_be_exported_runs_on_sentence_transformers(tmp_path, embedder, monkeypatch):
    def fails(*args, **kwargs):
        raise export.ExportFailed("the trace failed: RuntimeError: unsupported operator")
    monkeypatch.setattr(export, "export_model", fails)
    settings = Settings(corpus_dir=write_tiny_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    messages = []
    report = build_index(settings, Embedder(settings.model), progress=messages.append)
    assert report.encoder == "sentence-transformers"
    warning = next(m for m in messages if m.startswith("warning:"))
    assert "cannot be exported to ONNX (the trace failed" in warning and "sentence-transformers instead" in warning
    engine = Engine.open(settings, build="never")
    assert engine.embedder.backend == "sentence-transformers"
    assert engine.ask("does naloxone reverse overdose").answer.startswith("Naloxone reverses opioid overdose")
    # A later build does not try again, and says why the model runs that way.
    (settings.corpus_dir / "delta.txt").write_text("Delta Notes\n\nRest\n\nSleep helps recovery.\n")
    messages.clear()
    report = build_index(settings, Embedder(settings.model), progress=messages.append)
    assert any("could not be exported to ONNX in this environment (the trace failed" in m for m in messages)
    # The build's summary and the page's status say so, not only a log line.
    assert report.export_failure == "the trace failed: RuntimeError: unsupported operator"
    manifest = question_model.load(settings).manifest
    assert "Its ONNX export failed (the trace failed" in serving_status(manifest).message
    # Another environment (a package installed or upgraded since) tries the export again, and heals the index.
    monkeypatch.undo()  # the export works again ...
    monkeypatch.setattr(export, "export_environment", lambda: {"onnx": "a version installed since"})  # ... here
    messages.clear()
    report = build_index(settings, Embedder(settings.model), progress=messages.append)
    assert report.encoder == "onnx" and report.export_failure is None
    assert Engine.open(settings, build="never").embedder.backend == "onnx"


@pytest.mark.slow  # exports the real model
def test_a_full_disk_during_the_export_is_an_error_not_a_model_that_cannot_be_exported(tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(bert_graph, "write", disk_full)  # the packaged model's graph is written, not traced
    settings = Settings(corpus_dir=write_tiny_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    with pytest.raises(ModelError, match="cannot write the ONNX export.*No space left on device"):
        build_index(settings, Embedder(settings.model))
    # Nothing remembers the model as unexportable: the next build, with room, exports it.
    assert not list(export.store(settings).glob("*.failed"))


def test_the_question_model_loaded_early_is_the_one_the_engine_asks_for(engine, real_settings):
    from qa.models import onnx_model
    from qa.cli import start_loading_question_model

    start_loading_question_model(real_settings)  # what `qa ask` does before importing the engine
    onnx = live_export(real_settings)
    slot = (str(onnx.folder), onnx.key, real_settings.query_threads)
    assert slot in onnx_model._EARLY  # found from the manifest alone: the export the engine loads
    model = OnnxModel.load(onnx.folder, onnx.key, real_settings.query_threads)
    assert slot not in onnx_model._EARLY  # taken, not loaded twice
    np.testing.assert_array_equal(model.encode(["does naloxone reverse ketamine"]),
                                  engine.embedder.encode(["does naloxone reverse ketamine"]))


def test_a_failed_early_load_fails_the_load_that_takes_it(tmp_path):
    from qa.models import onnx_model

    onnx_model.start_loading(tmp_path / "no-export", "some-key")
    with pytest.raises(ModelError, match="missing"):
        OnnxModel.load(tmp_path / "no-export", "some-key")
    assert (str(tmp_path / "no-export"), "some-key", 1) not in onnx_model._EARLY


def test_torch_s_sample_vectors_are_shipped_for_the_packaged_model_s_files_only(tmp_path):
    packaged = Path(resolve_model(Settings().model))
    vectors = reference.shipped(packaged, SAMPLE_TEXTS)
    assert vectors is not None, "the packaged model changed: run python -m qa.models.reference"
    assert vectors.shape == (len(SAMPLE_TEXTS), 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert reference.shipped(packaged, SAMPLE_TEXTS[:-1]) is None  # other texts
    changed = tmp_path / "model"
    shutil.copytree(packaged, changed)
    assert reference.shipped(changed, SAMPLE_TEXTS) is not None  # the same files elsewhere
    (changed / "config.json").write_text((changed / "config.json").read_text() + "\n")
    assert reference.shipped(changed, SAMPLE_TEXTS) is None
    assert bert_graph.supported(changed) and not bert_graph.supported(tmp_path)


def test_the_packaged_model_s_graph_is_encoded_as_onnx_encodes_it_and_passes_onnx_s_checker():
    """bert_graph writes protobuf by hand: onnx reads it back, checks it, and writes the very same bytes
    (field order and encoding, negative attributes included), so it is the file onnx's helpers would write."""
    import onnx

    data = bert_graph.graph_bytes(Path(resolve_model(Settings().model)), export.OPSET)
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    assert model.SerializeToString() == data
    assert model.ir_version == bert_graph.IR_VERSION
    assert [(o.domain, o.version) for o in model.opset_import] == [("", export.OPSET)]
    assert [i.name for i in model.graph.input] == list(bert_graph.INPUTS)
    assert [o.name for o in model.graph.output] == ["sentence_embedding", "token_embeddings"]
    assert {a.i for n in model.graph.node if n.op_type == "Softmax" for a in n.attribute} == {-1}


@pytest.mark.slow  # exports the real model, and loads torch to compare
def test_the_packaged_model_is_exported_without_torch_and_gives_torch_s_vectors(tmp_path):
    script = ("import json, sys\n"
              "from pathlib import Path\n"
              "from qa.models import export\n"
              "from qa.models.embedding import Embedder\n"
              "from qa.settings import Settings\n"
              f"settings = Settings(tuned_dir=Path({str(tmp_path / 'models')!r}))\n"
              "made = export.ensure(settings, Embedder(settings.model), print)\n"
              + HEAVY_MODULES +
              "heavy += [m for m in ('onnx',) if m in sys.modules]  # its graph is encoded without onnx too\n"
              "print(json.dumps([str(made.folder), heavy]))\n")
    done = run_python(script, timeout=300)
    assert done.returncode == 0, done.stderr
    folder, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert heavy == []
    model = Embedder(Settings().model)
    model.use_export(export.Export(Path(folder), Path(folder).name))
    texts = real_sentences()
    theirs = Embedder(Settings().model).torch_model().encode(texts, normalize_embeddings=True,
                                                               convert_to_numpy=True, show_progress_bar=False)
    assert np.abs(model.encode(texts) - theirs).max() < 1e-4
    # The written graph's second output: the token vectors before pooling, as torch gives them.
    for ours, torch_s in zip(model.token_vectors(texts[:10]), Embedder(Settings().model).token_vectors(texts[:10])):
        assert ours.words == torch_s.words and len(ours.words) > 2
        assert np.abs(ours.vectors - torch_s.vectors).max() < 1e-3


@pytest.mark.slow  # traces a model
def test_a_plain_model_without_shipped_vectors_is_traced_and_checked_against_torch(tmp_path):
    model = tmp_path / "changed-model"
    shutil.copytree(resolve_model(Settings().model), model)
    (model / "config.json").write_text((model / "config.json").read_text() + "\n")  # another file: no record
    settings = Settings(tuned_dir=tmp_path / "models", model=str(model))
    made = export.ensure(settings, Embedder(str(model)), lambda message: None)
    assert made is not None and made.key != export.export_key(Settings().model)
    assert "torch" in json.loads((made.folder / INFO_FILE).read_text())["exported_with"]  # traced, not written
    onnx = Embedder(str(model))
    onnx.use_export(made)
    texts = real_sentences()[:20]
    theirs = Embedder(str(model)).torch_model().encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                                       show_progress_bar=False)
    assert np.abs(onnx.encode(texts) - theirs).max() < 1e-4
