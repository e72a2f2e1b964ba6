"""Build time: a sentence-transformers model -> its ONNX export, made once per model, checked, kept by key.

Owns making the exports that qa/models/onnx_model.py runs: the packaged model,
each fine-tuned copy, and any other model a user names. Every build asks
`ensure()` for the export of the model it embeds with; the index's manifest
then names that export's key, and questions are embedded with it, without
torch.

How: the whole sentence-transformers pipeline (transformer, pooling,
normalisation) is traced into one ONNX graph with torch's TorchScript
exporter (`dynamo=False`; attention switched to the eager implementation
for the trace), with dynamic batch and sequence axes. The model's fast
tokenizer is saved beside it. onnxruntime then saves the graph as it sets it
up (session.onnx, its weights in session.onnx.data, described by session.json:
what a load runs, qa/models/onnx_model.py). Before the export is kept, the sample texts
(qa/models/onnx_model.py) are embedded both ways and must agree within 1e-4; torch's
vectors are stored with it so every later load checks the same thing.
An export whose set-up graph is missing, altered or saved by another
onnxruntime (an export made before it existed, onnxruntime upgraded) gets it
saved again by the next build, checked the same way, without exporting again.

Where: `<tuned_dir>/onnx/<key>/` (by default `index/tuned/onnx/`), beside
the tuned models. `key` hashes the model's files (or its name, for a model
that is not a local folder), the export format and the torch,
transformers and sentence-transformers versions: a retrained model, a
changed file or another exporter is another key. Written beside and renamed
into place, so a killed export leaves nothing half-written under the key.

When a model cannot be exported (its tokenizer has no fast version, the
trace fails, or the two ways disagree), the build says so, records why and
in which environment (`<key>.failed`: the reason and the versions of the
packages the export uses), and the index is embedded and questioned with
sentence-transformers instead. A later build does not try again in the same
environment, and does when any of those versions changed (a package
installed or upgraded). `failure()` reads the record, for the build's
summary and the page's status.

Limits: torch, transformers and sentence-transformers are needed here, at
build time only. The trace fixes the graph's control flow for the model's
architecture; the sample check is what catches a model for which that is
wrong.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

from qa.models import bert_graph, reference, tuning
from qa.models.embedding import Embedder, Export, resolve_model
from qa.errors import ModelError
from qa.files import publish_folder, recipe_key, stamped_sha256, temp_folder
from qa.models.plain_model import INPUTS, PlainModel, plain_layout
from qa.models.onnx_model import (EXPORT_FORMAT, INFO_FILE, MODEL_FILE, SAMPLE_FILE, SAMPLE_TEXTS, SAMPLE_TOLERANCE,
                           SESSION_DATA_FILE, SESSION_FILE, SESSION_INFO_FILE, TOKENIZER_FILE, ExportInfo,
                           OnnxModel, check_files, feeds, load_tokenizer, max_difference, session_graph,
                           session_options, write_session_info)
from qa.settings import Settings

EXPORTS_FOLDER = reference.EXPORTS_FOLDER  # inside the tuned models' folder
OPSET = 17
_FAILED_SUFFIX = ".failed"
# What making and checking an export runs on: a recorded failure holds for these versions only.
_EXPORT_PACKAGES = ("torch", "transformers", "sentence-transformers", "onnx", "onnxruntime", "tokenizers")


class ExportFailed(Exception):
    """This model cannot be exported, or its export does not give its vectors: the reason, for the message."""


def store(settings: Settings) -> Path:
    return tuning.exports_root(settings)


def export_key(model: str) -> str:
    """The key of `model`'s export: its files' contents (or its name), the format and the exporter's versions."""
    location = resolve_model(model)
    recipe: dict = {"format": EXPORT_FORMAT, "opset": OPSET,
                    "versions": [_version(p) for p in ("torch", "transformers", "sentence-transformers")]}
    folder = Path(location)
    if folder.is_dir():
        recipe["files"] = reference.model_files(folder)
        if _shipped_reference(folder, recipe["files"]) is not None:  # bert_graph's: no torch version changes it
            recipe = {"format": EXPORT_FORMAT, "opset": OPSET, "writer": "bert_graph", "files": recipe["files"]}
    else:
        recipe["name"] = model
    return recipe_key(recipe)


def written_without_torch(model: str) -> bool:
    """Whether `model`'s export is written from its weights (bert_graph), so making it needs no torch."""
    folder = Path(resolve_model(model))
    return folder.is_dir() and _shipped_reference(folder) is not None


def _shipped_reference(folder: Path, files: dict[str, str] | None = None) -> np.ndarray | None:
    """Torch's sample vectors shipped for the model in `folder` (qa/models/reference.py), when its graph can be
    written without torch (qa/models/bert_graph.py); else None: it is traced, and checked against torch.
    `files`: the model's files' sha256 (reference.model_files), when known."""
    if plain_layout(folder) is None or not bert_graph.supported(folder):
        return None
    return reference.shipped(folder, SAMPLE_TEXTS, files)


def is_whole(settings: Settings, key: str) -> bool:
    """The export `key` is in the store, complete and matching its checksum."""
    try:
        check_files(store(settings) / key, key)
        return True
    except ModelError:
        return False


def ensure(settings: Settings, embedder: Embedder, say: Callable[[str], None], key: str | None = None) -> Export | None:
    """The export of `embedder`'s model, made now unless a whole one is in the store; None (after saying why)
    when the model cannot be exported and must run on sentence-transformers."""
    key = key or export_key(embedder.name)
    root = store(settings)
    folder = root / key
    if is_whole(settings, key):
        renew_session_graph(folder, say)
        return Export(folder, key)
    failed = root / f"{key}{_FAILED_SUFFIX}"
    known = failure(settings, key)
    if known is not None:
        say(f"{embedder.name} runs on sentence-transformers: it could not be exported to ONNX in this "
            f"environment ({known})")
        return None
    tmp = temp_folder(root, key)
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not _copy_known_export(embedder, key, tmp):
            say(f"exporting {embedder.name} to ONNX (once per model)")
            try:
                export_model(embedder, key, tmp)
            except ExportFailed as exc:
                failed.write_text(json.dumps({"reason": str(exc), "environment": export_environment()},
                                             indent=1) + "\n", encoding="utf-8")
                say(f"warning: {embedder.name} cannot be exported to ONNX ({exc}); it is used through "
                    "sentence-transformers instead, which is slower and loads torch to answer questions")
                return None
        publish_folder(tmp, folder, replace=True)  # a damaged export of the same key: replaced whole
    except OSError as exc:
        raise ModelError(f"cannot write the ONNX export in {root}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Export(folder, key)


def export_environment() -> dict[str, str]:
    """The versions of the packages an export depends on: a failure recorded under others is tried again."""
    return {p: _version(p) for p in _EXPORT_PACKAGES}


def failure(settings: Settings, key: str) -> str | None:
    """Why the export `key` failed in this environment, when a build recorded that; else None.

    A record from another environment (a package since installed or upgraded), or one that cannot be
    read, does not count: the next build tries the export again."""
    path = store(settings) / f"{key}{_FAILED_SUFFIX}"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("environment") != export_environment():
        return None
    return str(record.get("reason") or "no reason recorded")


def _copy_known_export(embedder: Embedder, key: str, out: Path) -> bool:
    """Link (or copy) the same export that `embedder` already uses from elsewhere, if it is whole there."""
    known = embedder.export
    if known is None or known.key != key:
        return False
    try:
        check_files(known.folder, key)
        out.mkdir()
        session = (SESSION_DATA_FILE, SESSION_FILE, SESSION_INFO_FILE) \
            if (known.folder / SESSION_INFO_FILE).is_file() else ()
        for name in (MODEL_FILE, TOKENIZER_FILE, SAMPLE_FILE, INFO_FILE, *session):
            try:
                os.link(known.folder / name, out / name)
            except OSError:
                shutil.copy2(known.folder / name, out / name)
        return True
    except (ModelError, OSError):
        shutil.rmtree(out, ignore_errors=True)
        return False


@dataclass
class Traceable:
    """What the trace needs of a model, however it was loaded."""

    module: object  # a torch.nn.Module: the token tensors (in `inputs` order) -> one unit vector per text, and the token vectors
    transformer: object  # the Hugging Face model inside it, whose attention is switched for the trace
    tokenizer: object  # its Hugging Face fast tokenizer
    inputs: tuple[str, ...]
    dimension: int
    max_seq_length: int
    do_lower_case: bool
    reference: Callable[[list[str]], np.ndarray]  # torch's vectors of texts, as the model computes them


def export_model(embedder: Embedder, key: str, out: Path) -> None:
    """Trace `embedder`'s model into `out` and check it against torch; ExportFailed if not.

    A model folder of the plain layout (`plain_layout`: the packaged model) is loaded with
    transformers alone, unless sentence-transformers has it loaded already; anything else with
    sentence-transformers, whose import costs seconds more on a first start (docs/BENCHMARKS.md)."""
    location = resolve_model(embedder.name)
    expected = _shipped_reference(Path(location)) if Path(location).is_dir() else None
    if expected is not None:
        _write_graph(embedder.name, Path(location), key, out, expected)
        return
    import torch
    from tokenizers import Tokenizer

    layout = plain_layout(Path(location)) if not embedder.loaded else None
    model = _from_transformers(location, *layout) if layout else _from_sentence_transformers(embedder.torch_model())
    backend = getattr(model.tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ExportFailed("its tokenizer has no fast version (a tokenizer.json) to run without transformers")
    if "input_ids" not in model.inputs or "attention_mask" not in model.inputs:
        raise ExportFailed(f"its tokenizer gives {list(model.inputs)}, not token ids and an attention mask")
    out.mkdir(parents=True, exist_ok=True)
    saved = Tokenizer.from_str(backend.to_str())
    saved.no_truncation()
    saved.no_padding()
    saved.save(str(out / TOKENIZER_FILE))
    tokenizer = model.tokenizer
    info = ExportInfo(
        format=EXPORT_FORMAT, key=key, model=embedder.name, dimension=model.dimension,
        max_seq_length=model.max_seq_length, do_lower_case=model.do_lower_case,
        pad_id=int(tokenizer.pad_token_id or 0), pad_token=str(tokenizer.pad_token or "[PAD]"), inputs=model.inputs,
        onnx_sha256="", onnx_bytes=0,
        exported_with={p: _version(p) for p in ("torch", "transformers", "sentence-transformers", "onnxruntime")})

    # Two texts of different lengths: the trace sees padding and the attention mask at work.
    example = feeds(load_tokenizer(out / TOKENIZER_FILE, info), info, [SAMPLE_TEXTS[0], SAMPLE_TEXTS[3]])
    axes = {name: {0: "batch", 1: "tokens"} for name in model.inputs}
    axes["sentence_embedding"] = {0: "batch"}
    axes["token_embeddings"] = {0: "batch", 1: "tokens"}
    attention = getattr(getattr(model.transformer, "config", None), "_attn_implementation", None)
    try:
        _set_attention(model.transformer, "eager")  # sdpa traces into a graph onnxruntime runs slower
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model.module.eval(), tuple(torch.from_numpy(example[name]) for name in model.inputs),
                              str(out / MODEL_FILE), input_names=list(model.inputs),
                              output_names=["sentence_embedding", "token_embeddings"], dynamic_axes=axes, opset_version=OPSET,
                              do_constant_folding=True, dynamo=False)
    except OSError:
        raise  # a full or read-only disk, not the model: ensure() says so, and nothing is recorded as failed
    except Exception as exc:  # the tracer and the exporter raise many kinds
        raise ExportFailed(f"the trace failed: {type(exc).__name__}: {str(exc)[:300]}") from exc
    finally:
        if attention is not None:
            _set_attention(model.transformer, attention)
    _check(out, info, model.reference(list(SAMPLE_TEXTS)).astype(np.float32))


def _write_graph(name: str, folder: Path, key: str, out: Path, expected: np.ndarray) -> None:
    """The export of a plain BERT model written from its weights (qa/models/bert_graph.py), without torch;
    checked against torch's shipped vectors of the sample texts like a traced one."""
    from tokenizers import Tokenizer

    window, do_lower_case = plain_layout(folder)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    tokenizer.save(str(out / TOKENIZER_FILE))
    special = json.loads((folder / "special_tokens_map.json").read_text(encoding="utf-8")) \
        if (folder / "special_tokens_map.json").is_file() else {}
    pad_token = special.get("pad_token", "[PAD]")
    pad_token = pad_token.get("content", "[PAD]") if isinstance(pad_token, dict) else str(pad_token)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    try:
        bert_graph.write(folder, out / MODEL_FILE, OPSET)
    except OSError:
        raise
    except Exception as exc:  # onnx's checker and safetensors raise their own kinds
        raise ExportFailed(f"its graph could not be written: {type(exc).__name__}: {str(exc)[:300]}") from exc
    info = ExportInfo(
        format=EXPORT_FORMAT, key=key, model=name, dimension=int(config["hidden_size"]), max_seq_length=window,
        do_lower_case=do_lower_case, pad_id=int(tokenizer.token_to_id(pad_token) or 0), pad_token=pad_token,
        inputs=bert_graph.INPUTS, onnx_sha256="", onnx_bytes=0,
        exported_with={p: _version(p) for p in ("onnx", "onnxruntime", "tokenizers")})
    _check(out, info, expected)


def _check(out: Path, info: ExportInfo, expected: np.ndarray) -> None:
    """Finish the export in `out`: its info and torch's sample vectors written, onnxruntime's vectors of the
    sample texts within SAMPLE_TOLERANCE of those (ExportFailed if not), and its set-up graph saved by the
    session that computed them (as later loads run it: tests/test_onnx.py checks it gives the same bits)."""
    # Stamped (qa/files.py): the build's load of the export, right after, trusts the stamp instead of reading
    # the 90 MB file a second time (renaming the folder into place leaves the file's identity as it is).
    info = ExportInfo(**{**info.__dict__, "onnx_sha256": stamped_sha256(out / MODEL_FILE),
                         "onnx_bytes": (out / MODEL_FILE).stat().st_size})
    info.write(out)
    np.save(out / SAMPLE_FILE, expected)
    difference = _difference(out, info, expected, save_graph=True)  # the session checked saves the set-up graph
    if difference > SAMPLE_TOLERANCE:
        raise ExportFailed(f"its vectors differ from torch's by {difference:.1e} (more than {SAMPLE_TOLERANCE:g})")


def _difference(folder: Path, info: ExportInfo, expected: np.ndarray, save_graph: bool = False) -> float:
    """How far the export in `folder`, loaded as `info` says (`save_graph`: OnnxModel's), is from `expected` on the
    sample texts; ExportFailed when onnxruntime cannot run it."""
    try:
        return max_difference(_sample_vectors(OnnxModel(folder, info, threads=1, save_graph=save_graph)), expected)
    except ModelError as exc:
        raise ExportFailed(f"onnxruntime cannot run the export: {exc}") from exc


def save_session_graph(model: Path, out: Path, info: ExportInfo) -> None:
    """Have onnxruntime set up the graph `model` (the model.onnx `info` describes) and save it as
    `out`/SESSION_FILE, its weights in SESSION_DATA_FILE beside it (`session_options`), and SESSION_INFO_FILE."""
    import onnxruntime

    onnxruntime.InferenceSession(str(model), session_options(onnxruntime, out), providers=["CPUExecutionProvider"])
    write_session_info(out, info, onnxruntime.__version__)


def renew_session_graph(folder: Path, say: Callable[[str], None]) -> None:
    """Save the whole export in `folder`'s set-up graph again when it has none this onnxruntime can run (made
    before it existed, by another onnxruntime, or altered): saved and checked in a folder beside, its files
    then renamed in and SESSION_INFO_FILE last, so a process loading the export meanwhile runs one graph or
    the other (or, while the files are renamed, model.onnx). One whose vectors are wrong is not kept."""
    import onnxruntime

    info = ExportInfo.read(folder)
    graph, why = session_graph(folder, info, onnxruntime.__version__)
    if graph is not None:
        return
    say(f"saving the ONNX export's set-up graph for onnxruntime {onnxruntime.__version__}"
        + (f" ({why})" if why else ""))
    tmp = temp_folder(folder.parent, folder.name)
    try:
        tmp.mkdir()
        for name in (TOKENIZER_FILE, SAMPLE_FILE):
            shutil.copy2(folder / name, tmp / name)
        save_session_graph(folder / MODEL_FILE, tmp, info)
        difference = _difference(tmp, info, np.load(folder / SAMPLE_FILE))
        if difference > SAMPLE_TOLERANCE:
            say(f"warning: the set-up graph's vectors differ from torch's by {difference:.1e}; the export's "
                f"{MODEL_FILE} is loaded instead")
            return
        for name in (SESSION_DATA_FILE, SESSION_FILE):
            os.replace(tmp / name, folder / name)
        # Renaming a file changes its ctime: stamped again where it now lies.
        write_session_info(folder, info, onnxruntime.__version__)
    except Exception as exc:  # noqa: BLE001 - a read-only store or onnxruntime's own kinds: model.onnx still runs
        reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else f"{type(exc).__name__}: {str(exc)[:300]}"
        say(f"warning: the ONNX export's set-up graph could not be saved in {folder} ({reason}); its {MODEL_FILE} "
            "is loaded instead, which is slower")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _sample_vectors(model: OnnxModel) -> np.ndarray:
    """The export's vectors of SAMPLE_TEXTS, in their order: the longest text alone, the others in one padded
    batch (padding and the attention mask at work). In one batch, every text would be padded to the
    longest one's full window, and the check would cost several times as much."""
    texts = list(SAMPLE_TEXTS)
    longest = max(range(len(texts)), key=lambda i: len(texts[i]))
    others = [i for i in range(len(texts)) if i != longest]
    vectors = np.zeros((len(texts), model.dimension), dtype=np.float32)
    vectors[others] = model.encode([texts[i] for i in others])
    vectors[longest] = model.encode([texts[longest]])[0]
    return vectors


def _from_transformers(location: str, max_seq_length: int, do_lower_case: bool) -> Traceable:
    """The plain layout loaded with transformers alone (qa/models/plain_model.py)."""
    import torch

    model = PlainModel(location, max_seq_length, do_lower_case)  # in eval mode
    model.module.with_tokens = True  # the trace's graph gives the token vectors too; reference() below does not

    def reference(texts: list[str]) -> np.ndarray:
        with torch.no_grad():
            return model.vectors(texts)[0].numpy()

    return Traceable(model.module, model.transformer, model.tokenizer, model.inputs, model.dimension, max_seq_length,
                     do_lower_case, reference)


def _from_sentence_transformers(model) -> Traceable:
    """Any model sentence-transformers loads: its own modules, end to end."""
    import torch

    preprocess = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers 6 renamed it
    features = preprocess(["a", "b"])
    inputs = tuple(name for name in INPUTS if name in features)
    transformer = model[0]

    class Pipeline(torch.nn.Module):
        """The sentence-transformers modules as one function of tensors, for the trace."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            out = self.model(dict(zip(inputs, tensors)))
            return out["sentence_embedding"], out["token_embeddings"]

    def reference(texts: list[str]) -> np.ndarray:
        return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    return Traceable(Pipeline(), getattr(transformer, "auto_model", None), getattr(model, "tokenizer", None), inputs,
                     int(_dimension(model)), int(model.max_seq_length),
                     bool(getattr(transformer, "do_lower_case", False)), reference)


def _set_attention(model, implementation: str) -> None:
    if model is None:
        return
    setter = getattr(model, "set_attn_implementation", None)
    try:
        if setter is not None:
            setter(implementation)
            return
    except Exception:  # noqa: BLE001 - older transformers: set the config directly
        pass
    model.config._attn_implementation = implementation


def _dimension(model) -> int:
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return get_dim()


def prune(settings: Settings, keep: set[str]) -> None:
    """Delete exports (and failure notes, and leftovers of killed exports) that no kept generation names.

    Only in the index's own folder, like tuned models: a shared `tuned_dir` is a cache its owner manages.
    """
    root = store(settings)
    if settings.tuned_dir is not None or not root.is_dir():
        return
    for path in root.iterdir():
        if path.name in keep or path.name.removesuffix(_FAILED_SUFFIX) in keep:
            continue
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


__all__ = ["ensure", "renew_session_graph", "save_session_graph", "export_environment", "failure", "export_key", "export_model", "plain_layout", "is_whole", "store", "prune", "ExportFailed",
           "EXPORTS_FOLDER"]
