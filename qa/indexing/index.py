"""Stage 4, the store: an index generation on disk, and loading it back.

Owns the index's on-disk format and its life on disk. `index/` holds generations and a pointer:

    index/CURRENT                 name of the live generation (one line)
    index/build-<time>-<id>/      one complete build:
        manifest.json             what was built, from what, with what; sha256 of every file below
        chunks.jsonl              passages with source, title, section, sentence ids, text hash, and each
                                  sentence's own section when a passage holds several short ones
        sentences.jsonl           answer-candidate sentences with their text hash
        chunk_vectors.npy         float32, one unit row per chunk
        sentence_vectors.npy      float32, one unit row per sentence (retrieval)
        context_vectors.npy       float32, one row per "section: sentence" (in a provisional index, the
                                  sentence's own row: qa/indexing/build.py)
        answer_vectors.npy        float32, the mean of the two above: what answer choice compares
                                  with (the two are memory-mapped at load, read only by the next
                                  build's vector cache, so a serving process holds one array, not three)
        questions.jsonl           the question bank's example questions, each with the ids of the
                                  sentences that answer it (qa/models/question_bank.py)
        question_vectors.npy      float32, one unit row per example question
        background.json           per article, how well the background questions match it: what
                                  refusal reads a question's signals against (qa/models/refusal.py)
        background_questions.txt  the background questions those were computed from, and
        background_vectors.npy    their vectors (read only by the next build's vector cache)
        dense.faiss               FAISS inner-product index over the chunk vectors, and
        sentences.faiss,          the same over the sentence and example-question vectors
        questions.faiss           (the "faiss" store; the "milvus" store keeps these three in a Milvus
                                  collection the manifest names: qa/indexing/stores.py, qa/indexing/milvus_store.py)
        lexical/                  bm25s index over the chunks' index text
        token_vectors.npy         float16, the contextual token vectors (one unit row per word piece) of
                                  every sentence, then of every passage subject (its title and section,
                                  qa/answering/token_match.py's subject_of): what answer choice's token
                                  match reads, memory-mapped; from the forward pass that embedded them
        token_spans.npy           int64, [start, end) rows of the above for each sentence, then each chunk's
                                  subject (chunks of one section share theirs); both absent in an index
                                  built before them (the manifest's "token_vectors" is then missing or
                                  null, and the token match is off for it until the next build)
    index/tuned/<key>/            the model fine-tuned on the question bank (qa/models/tuning.py) that the
                                  generations naming <key> in their manifest were embedded with
    index/tuned/onnx/<key>/       the ONNX export of the model a generation was embedded with
                                  (qa/models/export.py), which its manifest names: questions are embedded
                                  with it, through onnxruntime, without torch

A build (qa/indexing/build.py) writes a new generation beside the live one (on Milvus, a new
collection, whose alias it switches just before), and then replaces
CURRENT atomically (os.replace, `point_current`), so a crash or Ctrl-C at any point leaves the
previous index live and loadable; leftovers of a killed build are removed by
the next one. A lock file keeps two builds from running at once. This module owns those
pieces (the pointer, the lock, pruning, checksums, the jsonl files); qa/indexing/build.py decides
what goes into a generation, and qa/indexing/features.py computes what `Index` derives at load.

`load()` checks the manifest: another format, model, dimension or store
backend is refused with the command that fixes it; a missing, truncated or altered file is
named. Which model embeds the questions, and whether it is on disk, is qa/indexing/question_model.py's
business (its `load` is this one plus that check): this module imports no model code.
`stale_reason()` says whether the corpus changed since the build.

Limits: one writer at a time (the lock); readers never block. Two
generations are kept (the live one and the one before it) so a reader that
read CURRENT just before a swap still finds its files. Nothing here embeds
or builds: this module never imports qa/indexing/build.py.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Hashable, Iterator, Sequence

import numpy as np

from qa.reading.chunking import Chunk
from qa.errors import (REBUILD_HINT, CorpusError, IndexCorruptError, IndexIncompatibleError, IndexMissingError,
                       IndexWriteError)
from qa.indexing.features import genericness, sentence_owners
from qa.files import TMP_PREFIX, sha256_file
from qa.models.question_bank import bank_hashes
from qa.settings import LEXICAL_BEFORE, Settings, chunking_fingerprint, lexical_fingerprint, tuning_fingerprint
from qa.indexing.backends import backend
from qa.indexing.stores import LEXICAL_FOLDER, LexicalStore, Stores

# Bump when the files' layout or the loader's cleaning rules change:
# an index of another version is refused and rebuilt.
# 5: the question bank (questions.jsonl, question_vectors.npy); 6: the manifest names the model tuned
# on the bank, which embedded everything (an untuned format-5 index would be read with refusal weights
# fitted to the tuned model).
# 7: background statistics per article (background.json), read by refusal.
# 8: the manifest names the ONNX export of the model (model.encoder) that questions are embedded with.
# 9: the manifest names the store backend (and on Milvus its collection); questions.faiss.
FORMAT_VERSION = 9
# Answer choice's token match (qa/answering/token_match.py), stored without a format bump: an index
# built before them loads and answers (token match off), and the next build adds them.
TOKEN_VECTORS_FILE = "token_vectors.npy"
TOKEN_SPANS_FILE = "token_spans.npy"


# Bytes of float32 token vectors a TokenTable keeps converted (the whole table of a few dozen articles).
TOKEN_ROWS_KEPT = 32 * 2 ** 20


@dataclass(frozen=True)
class TokenTable:
    """An index's stored token vectors: ragged rows of one memory-mapped float16 matrix, by span.

    `sentence` and `subject` give the stored float16 rows (what a build copies); `sentence_rows` and
    `subject_rows` the same rows as float32, for answering, and `passage_rows` and `subjects_rows` those of a
    chunk's sentences or of an article's subjects as one block: converted once and kept (up to TOKEN_ROWS_KEPT
    bytes together, least recently used dropped first), since the same sentences are candidates of many
    questions and converting float16 costs more than the products that read them."""

    vectors: np.ndarray  # (pieces, dimension) float16, memory-mapped
    spans: np.ndarray  # (sentences + chunks, 2) int64
    sentences: int
    _converted: "_KeptRows" = field(default_factory=lambda: _KeptRows(TOKEN_ROWS_KEPT), compare=False, repr=False)

    def sentence(self, sentence_id: int) -> np.ndarray:
        start, end = self.spans[sentence_id]
        return self.vectors[start:end]

    def subject(self, chunk_id: int) -> np.ndarray:
        start, end = self.spans[self.sentences + chunk_id]
        return self.vectors[start:end]

    def sentence_rows(self, sentence_id: int) -> np.ndarray:
        """The sentence's token vectors as float32 (read only)."""
        return self._rows(sentence_id)

    def subject_rows(self, chunk_id: int) -> np.ndarray:
        """The chunk's subject's token vectors as float32 (read only)."""
        return self._rows(self.sentences + chunk_id)

    def passage_rows(self, chunk_id: int, sentence_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The token vectors of a chunk's sentences (`sentence_ids`, its own, in order) as one float32 block, and
        where each sentence's rows start and end in it (len(sentence_ids) + 1 bounds). Answer choice reads a
        passage's sentences with one product instead of one per sentence."""
        return self._block(("passage", chunk_id), sentence_ids)

    def subjects_rows(self, article: str, chunk_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The token vectors of the subjects of an article's chunks (`chunk_ids`: all of them, in order) as one
        float32 block, and where each one's rows start and end in it: the strong label's agreement reads the
        headings of an article's sections with one product."""
        return self._block(("subjects", article), [self.sentences + chunk for chunk in chunk_ids])

    def _block(self, key: tuple, spans_read: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The rows of these spans as one float32 block (read only), converted once and kept under `key` as
        one span's rows are; and the spans' bounds in it."""
        spans = self.spans[np.asarray(spans_read, dtype=np.int64)]
        bounds = np.concatenate(([0], np.cumsum(spans[:, 1] - spans[:, 0])))
        rows = self._converted.get(key)
        if rows is None:
            rows = np.zeros((0, self.vectors.shape[1]), dtype=np.float32)
            if len(spans):
                rows = np.concatenate([self.vectors[start:end] for start, end in spans]).astype(np.float32)
            rows.flags.writeable = False
            self._converted.put(key, rows)
        return rows, bounds

    def _rows(self, span: int) -> np.ndarray:
        rows = self._converted.get(span)
        if rows is None:
            start, end = self.spans[span]
            rows = np.array(self.vectors[start:end], dtype=np.float32)  # a plain array, not a memmap view
            rows.flags.writeable = False
            self._converted.put(span, rows)
        return rows


class _KeptRows:
    """Arrays by key, least recently used dropped beyond `limit` bytes; safe for the engine's threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.kept: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable) -> np.ndarray | None:
        with self.lock:
            rows = self.kept.get(key)
            if rows is not None:
                self.kept.move_to_end(key)
            return rows

    def put(self, key: Hashable, rows: np.ndarray) -> None:
        with self.lock:
            if key in self.kept:
                return
            self.kept[key] = rows
            self.size += rows.nbytes
            while self.size > self.limit and len(self.kept) > 1:
                self.size -= self.kept.popitem(last=False)[1].nbytes
CURRENT = "CURRENT"
LOCK = ".build.lock"
BUILD_PREFIX = "build-"


@dataclass
class Index:
    """A loaded index generation: everything search and answer need, in memory."""

    directory: Path
    manifest: dict
    chunks: list[Chunk]
    chunk_sentence_ids: list[list[int]]
    sentences: list[str]
    chunk_vectors: np.ndarray
    sentence_vectors: np.ndarray  # memory-mapped: read only by the next build's vector cache
    context_vectors: np.ndarray  # each sentence embedded with its section heading; memory-mapped too
    # What answer selection and fusion compare the question with: a sentence's own
    # meaning and its meaning in its section ("Risks ...: Prolonged use can lead to
    # tolerance"), averaged at build time (mean_answer_vectors).
    answer_vectors: np.ndarray
    # The question bank (qa/models/question_bank.py): example questions, the sentences
    # answering each, and their vectors. Empty when the corpus has none.
    questions: list[str]
    question_sentence_ids: list[list[int]]
    question_vectors: np.ndarray
    # Search over the chunk, sentence and example-question vectors, and BM25 (qa/indexing/stores.py); the vector
    # stores are None in an index loaded only for its vectors (a build's cache).
    stores: Stores
    # Per article and signal, [median, spread] of how well unrelated questions match it (qa/models/refusal.py).
    background: dict[str, dict[str, list[float]]]
    # The sentences' and the passage subjects' token vectors; None in an index built before them.
    tokens: TokenTable | None = None
    # Derived from the above when loaded:
    vocabulary: frozenset[str] = field(init=False)  # the words BM25 knows
    sentence_chunks: list[list[int]] = field(init=False)  # chunks each sentence is in
    # How telling each indexed word is (BM25's inverse document frequency over
    # passages): answer selection weighs the words a sentence shares with the
    # question by it, so "ketamine" (in every passage) counts for little.
    idf: dict[str, float] = field(init=False)
    max_idf: float = field(init=False)  # what a word the articles never use weighs
    # How generic each sentence is: the cosine of its answer vector with the mean
    # of its article's. A sentence close to what the whole article is about
    # ("Ketamine has shown promise ..., but it comes with both benefits and
    # risks") is close to every question on the topic and answers none of them;
    # answer selection discounts it (Settings.generic_penalty).
    genericness: np.ndarray = field(init=False)
    # Every (example question, sentence it is answered by) and (example question,
    # chunk holding that sentence) pair, as parallel arrays: search takes the best
    # matching question per sentence and per chunk with one np.maximum.at each.
    question_links: tuple[np.ndarray, np.ndarray] = field(init=False)
    question_chunk_links: tuple[np.ndarray, np.ndarray] = field(init=False)
    article_sentences: dict[str, np.ndarray] = field(init=False)  # sentence ids of each article
    article_chunks: dict[str, list[int]] = field(init=False)  # chunk ids of each article, in order
    articles_with_examples: frozenset[str] = field(init=False)  # articles the question bank has questions for

    def __post_init__(self) -> None:
        self.vocabulary = self.stores.lexical.vocabulary
        self.idf = self.stores.lexical.idf
        self.max_idf = max(self.idf.values(), default=1.0)
        self.sentence_chunks = [[] for _ in self.sentences]
        for chunk, ids in enumerate(self.chunk_sentence_ids):
            for sentence in ids:
                self.sentence_chunks[sentence].append(chunk)
        self.genericness = genericness(self.answer_vectors, self.sentence_chunks, self.chunks)
        pairs = [(q, s) for q, ids in enumerate(self.question_sentence_ids) for s in ids]
        self.question_links = (np.array([q for q, _ in pairs], dtype=np.int64),
                               np.array([s for _, s in pairs], dtype=np.int64))
        chunk_pairs = sorted({(q, c) for q, s in pairs for c in self.sentence_chunks[s]})
        self.question_chunk_links = (np.array([q for q, _ in chunk_pairs], dtype=np.int64),
                                     np.array([c for _, c in chunk_pairs], dtype=np.int64))
        owners = sentence_owners(self.chunks, self.chunk_sentence_ids, len(self.sentences))
        by_article: dict[str, list[int]] = {}
        for sentence, owner in enumerate(owners):
            by_article.setdefault(owner, []).append(sentence)
        self.article_sentences = {a: np.array(ids, dtype=np.int64) for a, ids in by_article.items()}
        self.article_chunks = {}
        for chunk_id, chunk in enumerate(self.chunks):
            self.article_chunks.setdefault(chunk.source, []).append(chunk_id)
        self.articles_with_examples = frozenset(owners[s] for _, s in pairs)

    @property
    def generation(self) -> str:
        return self.directory.name


# --------------------------------------------------------------------------- manifest


def tuned_key_of(manifest: dict) -> str | None:
    return ((manifest.get("model") or {}).get("tuned") or {}).get("key")


def encoder_of(manifest: dict) -> dict:
    return (manifest.get("model") or {}).get("encoder") or {}


# --------------------------------------------------------------------------- load


def live_directory(root: Path) -> Path:
    """The folder of the live generation, or IndexMissingError."""
    pointer = Path(root) / CURRENT
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        raise IndexMissingError(f"no index in {root} yet; build it with: {REBUILD_HINT}") from None
    except OSError as exc:
        raise IndexCorruptError(f"cannot read {pointer}: {exc.strerror or exc}; rebuild with: {REBUILD_HINT}") from exc
    directory = Path(root) / name
    if not name.startswith(BUILD_PREFIX) or "/" in name or not directory.is_dir():
        raise IndexCorruptError(f"{pointer} names {name!r}, which is not a built index; rebuild with: {REBUILD_HINT}")
    return directory


def read_manifest(directory: Path) -> dict:
    path = directory / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise IndexCorruptError(f"{path} is missing; rebuild with: {REBUILD_HINT}") from None
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"{path} is unreadable or not JSON ({exc}); rebuild with: {REBUILD_HINT}") from exc
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"{path} is not a manifest; rebuild with: {REBUILD_HINT}")
    return manifest


def check_compatible(manifest: dict, settings: Settings, dimension: int | None, where: Path) -> None:
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexIncompatibleError(
            f"the index in {where} has format {version}, this program reads format {FORMAT_VERSION}; "
            f"rebuild it with: {REBUILD_HINT}")
    model = manifest.get("model") or {}
    if model.get("name") != settings.model:
        raise IndexIncompatibleError(
            f"the index in {where} was built with model {model.get('name')!r}, not {settings.model!r}; "
            f"rebuild it with: {REBUILD_HINT} --model {settings.model}")
    if dimension is not None and model.get("dimension") != dimension:
        raise IndexIncompatibleError(
            f"the index in {where} holds {model.get('dimension')}-dimensional vectors, the model gives "
            f"{dimension}; rebuild it with: {REBUILD_HINT} --model {settings.model}")
    built_on = (manifest.get("store") or {}).get("backend")
    if built_on != settings.store:
        raise IndexIncompatibleError(
            f"the index in {where} keeps its vectors in store {built_on!r}, but setting store (QA_STORE) is "
            f"{settings.store!r}; rebuild it with: QA_STORE={settings.store} {REBUILD_HINT}")


def load(settings: Settings, dimension: int | None = None, search: bool = True,
         models: Callable[[Path, dict, Settings], None] | None = None) -> Index:
    """Load and verify the live index; raises an IndexError_ subclass that says what to do.

    `models(directory, manifest, settings)`: checks the models the manifest names are on disk, after the
    files and before they are read (qa/indexing/question_model.py's `load` passes its own; this module knows only
    the folder).
    `search`: open its vector stores; False loads the tables and vectors only, whichever store
    the index was built for (what a build's vector cache reads)."""
    directory = live_directory(settings.index_dir)
    manifest = read_manifest(directory)
    if not search:  # the vectors are in the folder whichever store searched them
        settings = settings.replace(store=(manifest.get("store") or {}).get("backend") or settings.store)
    check_compatible(manifest, settings, dimension, settings.index_dir)
    _verify_files(directory, manifest)
    if models is not None:
        models(directory, manifest, settings)
    try:
        chunk_rows = _read_jsonl(directory / "chunks.jsonl")
        sentence_rows = _read_jsonl(directory / "sentences.jsonl")
        sentences = [r["text"] for r in sentence_rows]
        chunk_sentence_ids = [list(r["sentences"]) for r in chunk_rows]
        chunks = [Chunk(r["source"], r["title"], r["section"], r["text"], tuple(sentences[i] for i in ids),
                        tuple(r.get("sentence_sections", ())))
                  for r, ids in zip(chunk_rows, chunk_sentence_ids)]
        chunk_vectors = np.load(directory / "chunk_vectors.npy")
        # Memory-mapped: only a later build's vector cache reads these two.
        sentence_vectors = np.load(directory / "sentence_vectors.npy", mmap_mode="r")
        context_vectors = np.load(directory / "context_vectors.npy", mmap_mode="r")
        answers = np.load(directory / "answer_vectors.npy")
        question_rows = _read_jsonl(directory / "questions.jsonl")
        questions = [r["question"] for r in question_rows]
        question_sentence_ids = [list(r["sentences"]) for r in question_rows]
        question_vectors = np.load(directory / "question_vectors.npy")
        background = json.loads((directory / "background.json").read_text(encoding="utf-8"))
        lexical = LexicalStore.load(directory / LEXICAL_FOLDER)
        vector_stores = backend(settings).open(manifest["store"], directory) if search else (None, None, None)
        tokens = None
        if manifest.get("token_vectors"):
            tokens = TokenTable(np.load(directory / TOKEN_VECTORS_FILE, mmap_mode="r"),
                                np.load(directory / TOKEN_SPANS_FILE), len(sentences))
    except (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError) as exc:
        raise IndexCorruptError(
            f"the index in {directory} cannot be read ({exc}); rebuild it with: {REBUILD_HINT}") from exc
    stores = Stores(*vector_stores, lexical)
    if not (len(chunks) == len(chunk_vectors)
            and len(sentences) == len(sentence_vectors) == len(context_vectors) == len(answers)
            and len(questions) == len(question_vectors)
            and (not search or (stores.chunks.size, stores.sentences.size, stores.questions.size)
                 == (len(chunks), len(sentences), len(questions)))
            and all(0 <= i < len(sentences) for ids in question_sentence_ids for i in ids)
            and (tokens is None or (tokens.spans.shape == (len(sentences) + len(chunks), 2)
                                    and tokens.vectors.shape[1:] == chunk_vectors.shape[1:]
                                    and (len(tokens.spans) == 0 or (tokens.spans.min() >= 0 and tokens.spans.max()
                                                                    <= len(tokens.vectors)))))):
        raise IndexCorruptError(f"the index in {directory} is inconsistent; rebuild it with: {REBUILD_HINT}")
    return Index(directory, manifest, chunks, chunk_sentence_ids, sentences, chunk_vectors, sentence_vectors,
                 context_vectors, answers, questions, question_sentence_ids, question_vectors, stores, background,
                 tokens)


def recipe_change(manifest: dict, settings: Settings) -> str | None:
    """Why a build with these settings and readers would make something else than the manifest's, or None.

    The corpus's files are not read here: `stale_reason` adds them, and a build compares its own reading."""
    from qa.reading.corpus import read_alike  # its readers (HTML, PDF): only a check or build reads

    if manifest.get("chunking") != chunking_fingerprint(settings):
        return "the chunking settings changed"
    if manifest.get("lexical", LEXICAL_BEFORE) != lexical_fingerprint(settings):
        return "the BM25 settings changed"
    if manifest.get("tuning") != tuning_fingerprint(settings):
        return "the fine-tuning settings changed"
    if "token_vectors" not in manifest:  # null: its model could not give them, which a rebuild does not change
        return "it was built before answer choice's token vectors were stored with the index"
    if not read_alike(manifest.get("corpus") or {}, settings):
        return "the article readers changed (files are read differently now)"
    if (manifest.get("questions") or {}).get("left_out"):
        return "it was built without the example questions, to answer sooner"
    return None


def stale_reason(manifest: dict, settings: Settings) -> str | None:
    """Why the index no longer matches the corpus and settings, or None when it does."""
    from qa.reading.corpus import corpus_hashes  # its readers (HTML, PDF): only a check or build reads

    reason = recipe_change(manifest, settings)
    if reason is not None:
        return reason
    try:
        now = {**corpus_hashes(settings.corpus_dir), **bank_hashes(settings.corpus_dir)}
    except CorpusError as exc:
        return str(exc)
    then = {**((manifest.get("corpus") or {}).get("files") or {}),
            **((manifest.get("questions") or {}).get("files") or {})}
    added = sorted(set(now) - set(then))
    removed = sorted(set(then) - set(now))
    changed = sorted(name for name in set(now) & set(then) if now[name] != then[name])
    parts = [f"{label}: {', '.join(names)}" for label, names in
             (("added", added), ("changed", changed), ("removed", removed)) if names]
    return "corpus changed since the build (" + "; ".join(parts) + ")" if parts else None


# --------------------------------------------------------------------------- files


def _verify_files(directory: Path, manifest: dict) -> None:
    expected = manifest.get("files")
    if not isinstance(expected, dict) or not expected:
        raise IndexCorruptError(f"{directory / 'manifest.json'} lists no files; rebuild with: {REBUILD_HINT}")
    for relative, meta in expected.items():
        path = directory / relative
        try:
            size = path.stat().st_size
        except OSError:
            raise IndexCorruptError(f"index file {path} is missing; rebuild with: {REBUILD_HINT}") from None
        if size != meta.get("bytes") or sha256_file(path) != meta.get("sha256"):
            raise IndexCorruptError(
                f"index file {path} is truncated or altered (its checksum does not match the manifest); "
                f"rebuild with: {REBUILD_HINT}")


def file_digests(directory: Path) -> dict[str, dict]:
    return {str(p.relative_to(directory)): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(directory.rglob("*")) if p.is_file()}


def write_jsonl(path: Path, rows: Iterator[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def fsync_tree(directory: Path) -> None:
    for path in [*directory.rglob("*"), directory]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def point_current(root: Path, name: str) -> None:
    """Make `name` the live generation in one atomic step."""
    pointer_tmp = root / f"{CURRENT}.{uuid.uuid4().hex[:8]}.tmp"
    with open(pointer_tmp, "w") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pointer_tmp, root / CURRENT)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune_generations(root: Path, keep: int = 2) -> list[dict]:
    """Delete all but the newest `keep` generations (the live one is always kept); the kept ones' manifests."""
    try:
        live = (root / CURRENT).read_text().strip()
    except OSError:
        return []
    generations = sorted((p for p in root.iterdir() if p.name.startswith(BUILD_PREFIX)), key=lambda p: p.name)
    keep_names = {live} | {p.name for p in generations[-keep:]}
    kept = []
    for path in generations:
        if path.name not in keep_names:
            shutil.rmtree(path, ignore_errors=True)
            continue
        try:
            kept.append(read_manifest(path))
        except IndexCorruptError:
            continue
    return kept


def remove_leftovers(root: Path) -> None:
    """Partial builds of a killed run (only one build runs at a time: we hold the lock)."""
    for path in root.iterdir():
        if path.name.startswith(TMP_PREFIX) or (path.name.startswith(CURRENT + ".") and path.name.endswith(".tmp")):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


@contextmanager
def build_lock(root: Path) -> Iterator[None]:
    try:
        handle = open(root / LOCK, "a")
    except OSError as exc:
        raise IndexWriteError(f"cannot write in index folder {root}: {exc.strerror or exc}") from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise IndexWriteError(f"another build is running in {root}; wait for it to finish") from exc
            raise
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
