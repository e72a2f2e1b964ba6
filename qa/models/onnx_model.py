"""A sentence-transformers model's ONNX export, run with onnxruntime + tokenizers: the question path.

Owns reading an export folder (written at build time by qa/models/export.py),
checking it, and turning texts into unit vectors with it. Nothing here
imports torch, transformers or sentence-transformers: a process that only
answers questions loads onnxruntime and the `tokenizers` library, and
starts in well under a second.

An export folder holds:

    model.onnx          the whole sentence-transformers pipeline (transformer, pooling,
                        normalisation) as one graph: token ids in, one vector per text out
                        ("sentence_embedding"), and the transformer's contextual vector of
                        every token before pooling ("token_embeddings": answer choice's
                        token match, qa/answering/token_match.py)
    tokenizer.json      the model's fast tokenizer, saved as the model uses it
    sample_vectors.npy  what torch gave for SAMPLE_TEXTS when the export was made
    export.json         what the export is of (its key and source model), its settings
                        (window, padding, lower-casing, dimension), the sha256 of model.onnx
    model.onnx.sha256.json  written with the export (or by a check that finds none): model.onnx's
                        sha256 and the file's inode, size, mtime and ctime then (qa/files.py's
                        `stamped_sha256`); later loads trust it while all four are unchanged
                        instead of reading 90 MB again
    session.onnx, session.onnx.data
                        the same graph as onnxruntime sets it up (its graph optimisations done),
                        saved by onnxruntime at export time, its weights in the data file. A load
                        runs this one: onnxruntime maps the data file into memory and uses the
                        weights where they lie, where model.onnx's 90 MB are read, parsed and
                        copied at every load (docs/BENCHMARKS.md, cold start)
    session.json        what those two are: the onnxruntime that saved them, their sha256 and
                        sizes, and the sha256 of the model.onnx they were made from. Absent (an
                        export made before they existed): model.onnx is loaded. Altered, or of
                        another onnxruntime or model.onnx: model.onnx is loaded with a warning
                        (the same vectors, slower), and the next build saves them again.
                        A file of its own, so export.json reads as before for older code

`OnnxModel.load(folder, key)` refuses a folder that is not the export the
index names (another key: mismatched), whose model.onnx is missing, cut short
or altered (checksum), or whose sample vectors no longer come out within
SAMPLE_TOLERANCE of torch's (another onnxruntime, a damaged graph). Every
refusal is a ModelError naming the command that rebuilds it. The sample
vectors are checked on the graph the load runs (session.onnx or model.onnx).

Tokenizing: the packaged tokenizer.json pads and truncates every text to 128
tokens. It is re-set here to what sentence-transformers does: truncate at the
model's own window (`max_seq_length`, 256 for MiniLM) and pad to the longest
text of the batch only, so a 13-token question costs 13 tokens and a long
passage is not cut at 128. The tokenizer itself does not pad: `_arrays` pads
each batch, so `encode` can tokenize all its texts at once, then batch them by
token count (texts of the same length side by side: little padding).

Limits: CPU only. fp32 only (int8 was measured and not shipped:
docs/BENCHMARKS.md). One session per model and thread count; one batch runs on
one core (a question is one batch).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from qa.errors import REBUILD_HINT, ModelError
from qa.files import stamped_sha256

_log = logging.getLogger(__name__)

# Bump when the folder's layout or what the graph computes changes: older exports are made again.
# 2: the graph also gives the token vectors.
EXPORT_FORMAT = 2
# The graph's outputs, by name: both the traced and the written export give them.
SENTENCE_OUTPUT, TOKEN_OUTPUT = "sentence_embedding", "token_embeddings"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
SAMPLE_FILE = "sample_vectors.npy"
INFO_FILE = "export.json"
# onnxruntime's own save of the graph, set up (module docstring); the data file's name is written inside it.
SESSION_FILE = "session.onnx"
SESSION_DATA_FILE = "session.onnx.data"
SESSION_INFO_FILE = "session.json"
# Torch and onnxruntime compute the same sums in another order, so vectors differ in the last
# digits (docs/DESIGN.md, the index on disk); a real fault (a damaged graph, a wrong tokenizer
# setting) is far above this.
SAMPLE_TOLERANCE = 1e-4
# Real sentences of every length the product embeds: a question, passages, a text over the
# 256-token window (truncation), and texts that make a padded batch. All are checked at export
# (the longest alone, the others in one padded batch: qa/models/export.py); a load checks the first
# LOAD_SAMPLES one by one (the runtime and the graph: what can change after the export), which
# costs milliseconds instead of a 256-token batch.
LOAD_SAMPLES = 3
SAMPLE_TEXTS = (
    "does naloxone reverse ketamine",
    "Naloxone does not reverse the effects of ketamine.",
    "Withdrawal symptoms typically emerge within a few hours to days after the last dose.",
    "Risks: Prolonged use can lead to tolerance, dependence and bladder damage; people who stop "
    "after long use may feel anxious, low and tired for weeks.",
    "what is the capital of France",
    " ".join(["Ketamine is a dissociative anaesthetic used in surgery, and at lower doses for "
              "treatment-resistant depression under medical supervision."] * 12),
)


@dataclass(frozen=True)
class ExportInfo:
    """export.json: what an export folder holds."""

    format: int
    key: str  # qa/models/export.py's key: the model's files and the exporter's versions
    model: str  # the model it was exported from (name or folder)
    dimension: int
    max_seq_length: int
    do_lower_case: bool
    pad_id: int
    pad_token: str
    inputs: tuple[str, ...]  # the graph's inputs, from: input_ids, attention_mask, token_type_ids
    onnx_sha256: str
    onnx_bytes: int
    exported_with: dict  # library versions

    @classmethod
    def read(cls, folder: Path) -> "ExportInfo":
        path = Path(folder) / INFO_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data["inputs"] = tuple(data["inputs"])
            return cls(**data)
        except FileNotFoundError:
            raise ModelError(f"the ONNX export {folder} is incomplete ({INFO_FILE} is missing); "
                             f"rebuild it with: {REBUILD_HINT}") from None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ModelError(f"the ONNX export's {path} is unreadable ({exc}); rebuild it with: {REBUILD_HINT}") \
                from exc

    def write(self, folder: Path) -> None:
        data = {**self.__dict__, "inputs": list(self.inputs)}
        (Path(folder) / INFO_FILE).write_text(json.dumps(data, indent=2), encoding="utf-8")


def check_files(folder: Path, key: str, checksum: bool = True) -> ExportInfo:
    """The export's info when `folder` holds the export `key`, whole; else ModelError saying what is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"the ONNX export of the question model is missing ({folder}); "
                         f"rebuild it with: {REBUILD_HINT}")
    info = ExportInfo.read(folder)
    if info.format != EXPORT_FORMAT or info.key != key:
        raise ModelError(f"{folder} holds another ONNX export (format {info.format}, key {info.key}) than the "
                         f"index names (format {EXPORT_FORMAT}, key {key}); rebuild it with: {REBUILD_HINT}")
    onnx_file = folder / MODEL_FILE
    for needed in (onnx_file, folder / TOKENIZER_FILE, folder / SAMPLE_FILE):
        if not needed.is_file():
            raise ModelError(f"the ONNX export {folder} is incomplete ({needed.name} is missing); "
                             f"rebuild it with: {REBUILD_HINT}")
    if onnx_file.stat().st_size != info.onnx_bytes or (checksum and stamped_sha256(onnx_file) != info.onnx_sha256):
        raise ModelError(f"{onnx_file} is truncated or altered (its checksum does not match {INFO_FILE}); "
                         f"rebuild it with: {REBUILD_HINT}")
    return info


def session_options(onnxruntime, save_to: Path | None = None):
    """How every session of an export is set up. `save_to`: a folder where the session also saves the graph as
    it set it up (SESSION_FILE, its weights in SESSION_DATA_FILE beside it; SESSION_INFO_FILE is the caller's).

    Saved at the extended level: every graph optimisation except those that lay data out for one CPU's
    kernels (onnxruntime warns that such a save is for that machine only). A load applies the rest, at the
    default level, to the saved graph, where they cost milliseconds."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # Idle worker threads sleep instead of spinning: on a shared 2-core machine a spinning
    # thread takes a core from whoever else is working.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about unused initialisers are noise
    if save_to is not None:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(Path(save_to) / SESSION_FILE)
        # Every weight of 1 KB or more in the data file, which a load maps into memory.
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name", SESSION_DATA_FILE)
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    return options


def session_graph(folder: Path, info: ExportInfo, runtime_version: str) -> tuple[Path | None, str | None]:
    """(SESSION_FILE, None) when the export's saved set-up graph can be run: saved by this onnxruntime from this
    model.onnx, both files whole (sizes and stamped sha256, as SESSION_INFO_FILE records them); else (None, why
    not), why being None when the export has none (made before it existed: nothing to warn about)."""
    folder = Path(folder)
    try:
        record = json.loads((folder / SESSION_INFO_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, f"{SESSION_INFO_FILE} is unreadable ({exc})"
    if not isinstance(record, dict) or record.get("model_sha256") != info.onnx_sha256:
        return None, f"it was not saved from this {MODEL_FILE}"
    if record.get("onnxruntime") != runtime_version:
        return None, f"it was saved by onnxruntime {record.get('onnxruntime')}, this is {runtime_version}"
    for name, prefix in ((SESSION_FILE, "onnx"), (SESSION_DATA_FILE, "data")):
        path = folder / name
        try:
            whole = path.stat().st_size == record.get(f"{prefix}_bytes") and \
                stamped_sha256(path) == record.get(f"{prefix}_sha256")
        except OSError:
            return None, f"{name} is missing"
        if not whole:
            return None, f"{name} is truncated or altered (its checksum does not match {SESSION_INFO_FILE})"
    return folder / SESSION_FILE, None


def write_session_info(folder: Path, info: ExportInfo, runtime_version: str) -> None:
    """SESSION_INFO_FILE for the SESSION_FILE and SESSION_DATA_FILE in `folder`, saved by `runtime_version` from
    the model.onnx `info` names; written beside and renamed into place."""
    folder = Path(folder)
    record = {"onnxruntime": runtime_version, "model_sha256": info.onnx_sha256,
              "onnx_sha256": stamped_sha256(folder / SESSION_FILE), "onnx_bytes": (folder / SESSION_FILE).stat().st_size,
              "data_sha256": stamped_sha256(folder / SESSION_DATA_FILE),
              "data_bytes": (folder / SESSION_DATA_FILE).stat().st_size}
    tmp = folder / f".{SESSION_INFO_FILE}-{uuid.uuid4().hex[:6]}"  # two builds at once write two
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    tmp.replace(folder / SESSION_INFO_FILE)


class OnnxModel:
    """One export loaded: texts -> unit-length float32 vectors, `threads` batches at a time.

    Each batch runs on one thread (onnxruntime's intra-op threads: 1), and a call with several
    batches runs `threads` of them side by side (the session is safe to run from many threads;
    onnxruntime lets go of the GIL while it runs). Splitting one batch's every matrix product
    over two threads made them wait for each other at each of the graph's hundreds of steps,
    and a thread waiting for a core another process holds stalls the other; batches side by
    side need no waiting. A batch's vectors are the same bits either way (one thread or two
    computes each output the same way)."""

    def __init__(self, folder: Path, info: ExportInfo, threads: int, save_graph: bool = False) -> None:
        """`save_graph`: load model.onnx, and save the graph as set up (`session_options`) in `folder` on the way
        (the exporter's check: one session both checks and saves)."""
        import onnxruntime

        self.folder = Path(folder)
        self.info = info
        self.dimension = info.dimension
        self.threads = max(1, threads)
        graph, unusable = (None, None) if save_graph else session_graph(self.folder, info, onnxruntime.__version__)
        if unusable is not None:
            _log.warning("warning: the ONNX export %s's set-up graph cannot be used (%s): %s is loaded instead, "
                         "which is slower; `%s` makes it again", self.folder, unusable, MODEL_FILE, REBUILD_HINT)
        self.graph = graph or self.folder / MODEL_FILE  # what the session runs
        try:
            self._session = onnxruntime.InferenceSession(
                str(self.graph), session_options(onnxruntime, self.folder if save_graph else None),
                providers=["CPUExecutionProvider"])
            self._tokenizer = load_tokenizer(self.folder / TOKENIZER_FILE, info)
        except Exception as exc:  # onnxruntime and tokenizers raise their own kinds
            raise ModelError(f"cannot load the ONNX export {self.folder} ({exc}); rebuild it with: {REBUILD_HINT}") \
                from exc
        if save_graph:  # outside the above: a full disk is the disk's fault, not the model's (export.ensure)
            write_session_info(self.folder, info, onnxruntime.__version__)
        self._inputs = info.inputs

    @classmethod
    def load(cls, folder: Path, key: str, threads: int = 1) -> "OnnxModel":
        """Load and check the export `key` in `folder`: files, checksum, and sample vectors against torch's.

        Takes the model `start_loading` began for the same arguments, when there is one."""
        early = _EARLY.pop((str(Path(folder)), key, threads), None)
        if early is not None:
            return early.result()
        return cls._load(folder, key, threads)

    @classmethod
    def _load(cls, folder: Path, key: str, threads: int) -> "OnnxModel":
        info = check_files(folder, key)
        model = cls(folder, info, threads)
        expected = np.load(Path(folder) / SAMPLE_FILE)[:LOAD_SAMPLES]
        difference = max_difference(model.encode(list(SAMPLE_TEXTS[:LOAD_SAMPLES]), batch_size=1), expected)
        if difference > SAMPLE_TOLERANCE:
            raise ModelError(f"the ONNX export {folder} no longer gives the model's vectors (differs by "
                             f"{difference:.1e}, more than {SAMPLE_TOLERANCE:g}); rebuild it with: {REBUILD_HINT}")
        return model

    def encode(self, texts: Sequence[str], batch_size: int = 32,
               on_batch: Callable[[int], None] | None = None,
               tokens: list | None = None) -> np.ndarray:
        """One unit row per text. Batches hold texts of the same token count or close to it (all are tokenized
        first, then sorted, longest first), so little is padded: padding is work the graph does for nothing,
        and sorting by characters left about a quarter of a build's tokens padding.

        `tokens`: a list as long as `texts`, None where a text's token vectors are not wanted; the others are
        set to its TokenVectors (as `token_vectors` gives) from the same forward pass, which reads them off
        the graph's second output."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        shown = _as_tokenized(self.info, texts)
        encodings = self._tokenizer.encode_batch(shown)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]

        def run(rows: list[int]) -> tuple[list[int], np.ndarray]:
            wanted = [tokens is not None and tokens[i] is not None for i in rows]
            vectors, rows_tokens = self._forward([shown[i] for i in rows], [encodings[i] for i in rows], wanted)
            for i, kept in zip(rows, rows_tokens):
                if kept is not None:
                    tokens[i] = kept
            return rows, vectors

        if self.threads == 1 or len(batches) == 1:
            done = map(run, batches)
        else:
            pool = ThreadPoolExecutor(self.threads, thread_name_prefix="onnx-encode")
            done = pool.map(run, batches)  # in order; at most `threads` batches run at once
        try:
            for rows, vectors in done:
                out[rows] = vectors
                if on_batch is not None:
                    on_batch(len(rows))
        finally:
            if self.threads > 1 and len(batches) > 1:
                pool.shutdown(cancel_futures=True)
        return out

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How many tokens each text is fed as (special tokens included, cut at the model's window): what a
        forward pass's cost grows with, and what a batch is padded to the most of."""
        return [len(e.ids) for e in self._tokenizer.encode_batch(_as_tokenized(self.info, texts))]

    def token_vectors(self, texts: Sequence[str], batch_size: int = 8) -> list[TokenVectors]:
        """Each text's contextual token vectors before pooling, unit length, with the word each comes from;
        the special tokens ([CLS], [SEP], padding) and punctuation left out. Batched as `encode` batches."""
        out: list = [True] * len(texts)
        self.encode(texts, batch_size, tokens=out)
        return out

    def _forward(self, shown: list[str], encodings: list, wanted: Sequence[bool]) -> tuple[np.ndarray, list]:
        """One forward pass over texts already tokenized (`shown`: as the tokenizer read them; `encodings`: its
        encodings), padded here as one batch: their unit vectors, and the TokenVectors of those `wanted` (None
        for the others)."""
        arrays = _arrays(encodings, self.info.pad_id)
        outputs = [SENTENCE_OUTPUT, TOKEN_OUTPUT] if any(wanted) else [SENTENCE_OUTPUT]
        results = self._session.run(outputs, {name: arrays[name] for name in self._inputs})
        vectors = results[0]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        tokens: list = [None] * len(shown)
        for row, want in enumerate(wanted):
            if want:
                encoding = encodings[row]
                tokens[row] = token_rows(shown[row], results[1][row], encoding.tokens, encoding.word_ids,
                                         encoding.offsets, encoding.special_tokens_mask)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32), tokens


class _Loading:
    """`OnnxModel.load` running in a thread of its own: its model, or what it raised, when done."""

    def __init__(self, folder: Path, key: str, threads: int) -> None:
        self._outcome: tuple[OnnxModel | None, BaseException | None] = (None, None)
        # Not a daemon: a process that exits meanwhile waits for it rather than finalise under it.
        self._thread = threading.Thread(target=self._run, args=(folder, key, threads), name="onnx-load")
        self._thread.start()

    def _run(self, folder: Path, key: str, threads: int) -> None:
        try:
            self._outcome = (OnnxModel._load(folder, key, threads), None)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever takes the result
            self._outcome = (None, exc)

    def result(self) -> "OnnxModel":
        self._thread.join()
        model, failure = self._outcome
        if failure is not None:
            raise failure
        return model


# Loads begun by `start_loading`, by (folder, key, threads), until `OnnxModel.load` takes them.
_EARLY: dict[tuple[str, str, int], _Loading] = {}


def start_loading(folder: Path, key: str, threads: int = 1) -> None:
    """Begin `OnnxModel.load(folder, key, threads)` in a thread; that call, later, takes its result.

    For a process that will answer questions and has its other modules still to import: setting up
    the onnxruntime session (most of a load) runs outside the GIL, beside those imports, so a cold
    `qa ask` does not wait for the two one after the other. A load nobody takes is only memory."""
    slot = (str(Path(folder)), key, threads)
    if slot not in _EARLY:
        _EARLY[slot] = _Loading(Path(folder), key, threads)


def load_tokenizer(path: Path, info: ExportInfo):
    """The export's fast tokenizer, set as the model is fed: cut at its window, not padded (`_arrays` pads a
    batch to its longest text; the tokenizer would pad every text of one call to the longest of all)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=info.max_seq_length)
    tokenizer.no_padding()
    return tokenizer


def feeds(tokenizer, info: ExportInfo, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Token arrays for `texts` by input name (the model takes those of `info.inputs`)."""
    return _arrays(tokenizer.encode_batch(_as_tokenized(info, texts)), info.pad_id)


def _as_tokenized(info: ExportInfo, texts: Sequence[str]) -> list[str]:
    """`texts` as the tokenizer reads them (lower-cased when the model was trained so)."""
    return [t.lower() if info.do_lower_case else t for t in texts]


def _arrays(encodings, pad_id: int) -> dict[str, np.ndarray]:
    """The tokenizer's encodings as the graph's input arrays, by input name, padded at the end to the longest
    (`pad_id`, attention 0, token type 0: what the tokenizer's own padding writes)."""
    width = max((len(e.ids) for e in encodings), default=0)
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    attention = np.zeros((len(encodings), width), dtype=np.int64)
    types = np.zeros((len(encodings), width), dtype=np.int64)
    for row, e in enumerate(encodings):
        ids[row, :len(e.ids)] = e.ids
        attention[row, :len(e.ids)] = e.attention_mask
        types[row, :len(e.ids)] = e.type_ids
    return {"input_ids": ids, "attention_mask": attention, "token_type_ids": types}


@dataclass(frozen=True)
class TokenVectors:
    """One text's token vectors (rows of unit length) and the lower-cased word each row belongs to."""
    vectors: np.ndarray
    words: tuple[str, ...]


def token_rows(text: str, vectors: np.ndarray, tokens: Sequence[str], word_ids: Sequence[int | None],
               offsets: Sequence[tuple[int, int]], special: Sequence[int]) -> TokenVectors:
    """The rows of `vectors` (one per token of `text`, padding included) that are word pieces, unit length,
    each with its whole word (`offsets` are character spans in `text`; a word's pieces share its word id)."""
    spans: dict[int, list[int]] = {}
    for word, (start, end), is_special in zip(word_ids, offsets, special):
        if word is not None and not is_special:
            spans.setdefault(word, [start, end])[1] = end
    rows, words = [], []
    for position, (token, word, is_special) in enumerate(zip(tokens, word_ids, special)):
        if is_special or word is None or not any(c.isalnum() for c in token):
            continue
        rows.append(position)
        start, end = spans[word]
        words.append(text[start:end].lower())
    kept = np.asarray(vectors[rows], dtype=np.float32).reshape(len(rows), vectors.shape[-1])
    norms = np.linalg.norm(kept, axis=1, keepdims=True)
    return TokenVectors(kept / np.maximum(norms, 1e-12), tuple(words))


def max_difference(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a - b).max()) if a.size else 0.0


__all__ = ["OnnxModel", "TokenVectors", "token_rows", "SENTENCE_OUTPUT", "TOKEN_OUTPUT", "start_loading", "ExportInfo", "check_files", "feeds", "load_tokenizer", "max_difference", "SAMPLE_TEXTS",
           "SAMPLE_TOLERANCE", "EXPORT_FORMAT", "MODEL_FILE", "TOKENIZER_FILE", "SAMPLE_FILE", "INFO_FILE",
           "SESSION_FILE", "SESSION_DATA_FILE", "SESSION_INFO_FILE", "session_graph", "session_options",
           "write_session_info"]
