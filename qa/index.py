"""Stage 4: chunks + vectors -> a persisted index folder, and loading it back.

Owns the index on disk. `index/` holds generations and a pointer:

    index/CURRENT                 name of the live generation (one line)
    index/build-<time>-<id>/      one complete build:
        manifest.json             what was built, from what, with what; sha256 of every file below
        chunks.jsonl              passages with source, title, section, sentence ids, text hash
        sentences.jsonl           answer-candidate sentences with their text hash
        chunk_vectors.npy         float32, one unit row per chunk
        sentence_vectors.npy      float32, one unit row per sentence (retrieval)
        context_vectors.npy       float32, one row per "section: sentence"
        answer_vectors.npy        float32, the mean of the two above: what answer choice compares
                                  with (the two are memory-mapped at load, read only by the next
                                  build's vector cache, so a serving process holds one array, not three)
        questions.jsonl           the question bank's example questions, each with the ids of the
                                  sentences that answer it (qa/question_bank.py)
        question_vectors.npy      float32, one unit row per example question
        background.json           per article, how well the background questions match it: what
                                  refusal reads a question's signals against (qa/refusal.py)
        background_questions.txt  the background questions those were computed from, and
        background_vectors.npy    their vectors (read only by the next build's vector cache)
        dense.faiss               FAISS inner-product index over the chunk vectors, and
        sentences.faiss,          the same over the sentence and example-question vectors
        questions.faiss           (the "faiss" store; the "milvus" store keeps these three in a Milvus
                                  collection the manifest names: qa/stores.py, qa/milvus_store.py)
        lexical/                  bm25s index over the chunks' index text
    index/tuned/<key>/            the model fine-tuned on the question bank (qa/tuning.py) that the
                                  generations naming <key> in their manifest were embedded with
    index/tuned/onnx/<key>/       the ONNX export of the model a generation was embedded with
                                  (qa/export.py), which its manifest names: questions are embedded
                                  with it, through onnxruntime, without torch

A build writes a new generation beside the live one (on Milvus, a new
collection, whose alias it switches just before), and then replaces
CURRENT atomically (os.replace), so a crash or Ctrl-C at any point leaves the
previous index live and loadable; leftovers of a killed build are removed by
the next one. A lock file keeps two builds from running at once.

Vectors are cached by the sha256 of the text embedded: a rebuild embeds only
texts it has not embedded before with the same model, so an unchanged corpus
embeds nothing and a changed file re-embeds only its own changed chunks. The
same model means the same tuned model too: a changed question bank trains a
new one and re-embeds everything. Texts are embedded through the model's ONNX
export (made first if need be): it gives torch's vectors (within 1e-4) in a
third of the time.

`load()` checks the manifest: another format, model, dimension or store
backend is refused with the command that fixes it; a missing, truncated or altered file is
named, and so is a missing ONNX export (its checksum and sample vectors are
checked when the question model loads it: qa/onnx_model.py).
`stale_reason()` says whether the corpus changed since the build.

Limits: one writer at a time (the lock); readers never block. Two
generations are kept (the live one and the one before it) so a reader that
read CURRENT just before a swap still finds its files.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import platform
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import bm25s
import numpy as np

from qa import export, tuning
from qa.chunking import Chunk, chunk_articles
from qa.corpus import (ARTICLE_SUFFIXES, READER_VERSION, Corpus, FileReport, Skipped, corpus_hashes, file_reports,
                       load_corpus)
from qa.question_bank import BankQuestion, bank_hashes, link, load_bank
from qa.refusal import background_statistics, read_background
from qa.embedding import Embedder, Export
from qa.errors import (REBUILD_HINT, CorpusError, IndexCorruptError, IndexIncompatibleError,
                       IndexMissingError, IndexWriteError, ModelError)
from qa.features import context_text, genericness, mean_answer_vectors, sentence_owners
from qa.stores import LEXICAL_FOLDER, LexicalStore, Stores, Tables, backend
from qa.onnx_model import check_files
from qa.settings import Settings, chunking_fingerprint, tuning_fingerprint
from qa.text import content_terms

# Bump when the files' layout or the loader's cleaning rules change:
# an index of another version is refused and rebuilt.
# 5: the question bank (questions.jsonl, question_vectors.npy); 6: the manifest names the model tuned
# on the bank, which embedded everything (an untuned format-5 index would be read with refusal weights
# fitted to the tuned model).
# 7: background statistics per article (background.json), read by refusal.
# 8: the manifest names the ONNX export of the model (model.encoder) that questions are embedded with.
# 9: the manifest names the store backend (and on Milvus its collection); questions.faiss.
FORMAT_VERSION = 9
CURRENT = "CURRENT"
LOCK = ".build.lock"
_BUILD_PREFIX = "build-"
_TMP_PREFIX = ".tmp-"


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
    # The question bank (qa/question_bank.py): example questions, the sentences
    # answering each, and their vectors. Empty when the corpus has none.
    questions: list[str]
    question_sentence_ids: list[list[int]]
    question_vectors: np.ndarray
    # Search over the chunk, sentence and example-question vectors, and BM25 (qa/stores.py); the vector
    # stores are None in an index loaded only for its vectors (a build's cache).
    stores: Stores
    # Per article and signal, [median, spread] of how well unrelated questions match it (qa/refusal.py).
    background: dict[str, dict[str, list[float]]]
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
        self.articles_with_examples = frozenset(owners[s] for _, s in pairs)

    @property
    def generation(self) -> str:
        return self.directory.name


@dataclass
class BuildReport:
    files: int
    skipped: list[Skipped]
    sections: int
    chunks: int
    sentences: int
    embedded: int  # texts sent to the model in this build
    reused: int  # texts whose vectors came from the previous build
    seconds: float  # the whole build, model loading included
    directory: Path
    dense_kind: str
    model_seconds: float = 0.0  # loading the model (only when something had to be embedded)
    questions: int = 0  # example questions of the question bank linked to sentences
    question_warnings: tuple[str, ...] = ()  # bank lines skipped, and why
    tuned_key: str | None = None  # the fine-tuned model the index was embedded with (qa/tuning.py)
    tune_seconds: float = 0.0  # training it, when this build had to
    encoder: str = "onnx"  # how the index's model ran: "onnx", or "sentence-transformers" when it cannot be exported
    articles: tuple[FileReport, ...] = ()  # per file of the folder: title, sections, passages, or why skipped


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- build


def build(settings: Settings, embedder: Embedder,
          progress: Callable[[str], None] | None = None, show_bar: bool = False,
          steps: Callable[[str, int, int], None] | None = None) -> BuildReport:
    """Build the index of `settings.corpus_dir` into `settings.index_dir` and make it live.

    `embedder`: the configured model (used when the build does not fine-tune); `progress` gets
    messages for a person; `steps(stage, done, total)` gets the long stages' progress as numbers
    ("fine-tuning" in training steps, "exporting", "embedding" in texts), for start-up progress."""
    started = time.perf_counter()
    say = progress or (lambda message: None)
    step = steps or (lambda stage, done, total: None)
    root = settings.index_dir
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexWriteError(f"cannot create index folder {root}: {exc.strerror or exc}") from exc

    with _build_lock(root):
        _remove_leftovers(root)
        corpus = load_corpus(settings.corpus_dir, settings.max_article_bytes)
        if not corpus.articles:
            why = "".join(f"\n  skipped {s.source}: {s.reason}" for s in corpus.skipped)
            raise CorpusError(f"no readable article in {settings.corpus_dir} (read: {', '.join(ARTICLE_SUFFIXES)}){why}")
        say(f"read {len(corpus.articles)} articles from {settings.corpus_dir}")
        chunks = chunk_articles(corpus.articles, settings)
        per_file = file_reports(corpus, chunks)

        sentences, chunk_sentence_ids = _sentence_table(chunks)
        bank, question_warnings = load_bank(settings.corpus_dir)
        questions, question_sentence_ids, unlinked = _question_bank(bank, chunks, chunk_sentence_ids, sentences)
        question_warnings += unlinked
        for warning in question_warnings:
            say(f"question bank: {warning}")
        tuning_plan = tuning.plan(settings, bank)
        tuned_key = tuning_plan.key if tuning_plan else None
        previous = _previous_index(settings)
        if previous is not None and _up_to_date(previous.manifest, corpus, settings, tuned_key):
            # Nothing to do: no new generation, no model, the live index stays as it is
            # (but its ONNX export is made again if it went missing or was damaged).
            _repair_export(previous.manifest, settings, embedder, say, step)
            say("the index is up to date")
            counts = previous.manifest["counts"]
            return BuildReport(
                files=counts["articles"], skipped=list(corpus.skipped), sections=counts["sections"],
                chunks=counts["chunks"], sentences=counts["sentences"], embedded=0,
                reused=(counts["chunks"] + 2 * counts["sentences"] + len(previous.questions)
                        + previous.manifest["background"]["questions"]),
                seconds=time.perf_counter() - started, directory=previous.directory,
                dense_kind=previous.manifest["dense"]["kind"], questions=len(previous.questions),
                question_warnings=tuple(question_warnings), tuned_key=tuned_key, articles=per_file)
        tune_seconds = 0.0
        if tuning_plan is not None:
            # Every text is embedded with the model tuned on this bank, and a vector
            # of another model (the untuned one, or one tuned on another bank) is no use.
            folder, tune_seconds = tuning.ensure_trained(settings, tuning_plan, say,
                                                         lambda done, total: step("fine-tuning", done, total))
            if tune_seconds:
                say(f"fine-tuned in {tune_seconds:.0f} s")
            embedder = Embedder(str(folder), settings.batch_size, settings.threads)
        step("exporting", 0, 1)
        onnx = export.ensure(settings, embedder, say)
        step("exporting", 1, 1)
        if onnx is not None:
            embedder.use_export(onnx)
        encoder = _encoder_entry(embedder, onnx, settings)
        if previous is not None and _tuned_key(previous.manifest) != tuned_key:
            previous = None
        cache, dimension = _previous_vectors(previous)
        # A sentence's context is the section of the first chunk it appears in.
        first_section: dict[int, str] = {}
        for chunk, ids in zip(chunks, chunk_sentence_ids):
            for sentence_id in ids:
                first_section.setdefault(sentence_id, chunk.section)
        contexts = [context_text(first_section[i], s) for i, s in enumerate(sentences)]
        background = read_background(settings.background_file)
        texts = [c.index_text for c in chunks] + sentences + contexts + questions + background
        vectors, embedded, dimension, model_seconds = _embed_with_cache(texts, cache, dimension, embedder, say,
                                                                        show_bar, step)
        chunk_vectors = vectors[:len(chunks)]
        sentence_vectors = vectors[len(chunks):len(chunks) + len(sentences)]
        context_vectors = vectors[len(chunks) + len(sentences):len(chunks) + 2 * len(sentences)]
        question_vectors = vectors[len(chunks) + 2 * len(sentences):len(chunks) + 2 * len(sentences) + len(questions)]
        background_vectors = vectors[len(texts) - len(background):]
        say(f"embedded {embedded} new texts, reused {len(texts) - embedded}")

        lexical = LexicalStore.build([content_terms(c.index_text) for c in chunks])
        store = backend(settings)
        answer_vectors = mean_answer_vectors(sentence_vectors, context_vectors)
        owners = sentence_owners(chunks, chunk_sentence_ids, len(sentences))
        statistics = background_statistics(background_vectors, owners, answer_vectors,
                                           [owners[ids[0]] for ids in question_sentence_ids], question_vectors)

        tmp = root / f"{_TMP_PREFIX}{uuid.uuid4().hex[:8]}"
        stamp = dt.datetime.now(dt.timezone.utc)
        final = root / f"{_BUILD_PREFIX}{stamp:%Y%m%dT%H%M%S.%f}-{uuid.uuid4().hex[:6]}"  # sorts by time
        try:
            tmp.mkdir()
            _write_jsonl(tmp / "chunks.jsonl", (
                {**asdict(c), "sentences": ids, "hash": text_hash(c.index_text)}
                for c, ids in zip(chunks, chunk_sentence_ids)))
            _write_jsonl(tmp / "sentences.jsonl", ({"text": s, "hash": text_hash(s)} for s in sentences))
            np.save(tmp / "chunk_vectors.npy", chunk_vectors)
            np.save(tmp / "sentence_vectors.npy", sentence_vectors)
            np.save(tmp / "context_vectors.npy", context_vectors)
            np.save(tmp / "answer_vectors.npy", answer_vectors)
            _write_jsonl(tmp / "questions.jsonl", ({"question": q, "sentences": ids, "hash": text_hash(q)}
                                                   for q, ids in zip(questions, question_sentence_ids)))
            np.save(tmp / "question_vectors.npy", question_vectors)
            np.save(tmp / "background_vectors.npy", background_vectors)
            (tmp / "background_questions.txt").write_text("\n".join(background) + "\n", encoding="utf-8")
            (tmp / "background.json").write_text(json.dumps(statistics, indent=1, ensure_ascii=False))
            store_entry = store.write(Tables(chunk_vectors, sentence_vectors, question_vectors), tmp, final.name)
            dense_kind = store_entry["kinds"]["chunks"]
            lexical.save(tmp / LEXICAL_FOLDER)
            manifest = {
                "format_version": FORMAT_VERSION,
                "built_at": stamp.isoformat(timespec="seconds"),
                "model": {"name": settings.model, "dimension": dimension,
                          "tuned": {"key": tuned_key, "pairs": len(tuning_plan.pairs),
                                    "epochs": tuning_plan.epochs} if tuning_plan else None,
                          "encoder": encoder},
                "tuning": tuning_fingerprint(settings),
                "chunking": chunking_fingerprint(settings),
                "dense": {"kind": dense_kind, "sentences_kind": store_entry["kinds"]["sentences"],
                          "hnsw_m": settings.hnsw_m, "flat_max_vectors": settings.flat_max_vectors},
                "store": store_entry,
                "corpus": {
                    "folder": str(settings.corpus_dir),
                    "files": corpus.hashes,
                    "indexed": sorted(a.source for a in corpus.articles),
                    "skipped": {s.source: s.reason for s in corpus.skipped},
                    "titles": {a.source: a.title for a in corpus.articles},
                    "readers": READER_VERSION,
                },
                "background": _background_fingerprint(settings, background),
                "questions": {"files": bank_hashes(settings.corpus_dir), "linked": len(questions),
                              "skipped": question_warnings},
                "counts": {
                    "articles": len(corpus.articles),
                    "sections": sum(len(a.sections) for a in corpus.articles),
                    "chunks": len(chunks),
                    "sentences": len(sentences),
                    "chunks_per_article": {a.source: sum(c.source == a.source for c in chunks)
                                           for a in corpus.articles},
                },
                "libraries": _library_versions(settings),
                "files": _file_digests(tmp),
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
            _fsync_tree(tmp)
            os.rename(tmp, final)
            store.publish(store_entry)  # on Milvus, the alias: before CURRENT, so both name the new one
            _point_current(root, final.name)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)
            if not isinstance(exc, OSError):
                raise  # the store's own error (it says which setting), or an interruption
            raise IndexWriteError(
                f"cannot write the index in {root}: {exc.strerror or exc}; the previous index is unchanged") from exc
        kept = _prune_generations(root)
        store.prune([m["store"] for m in kept if (m.get("store") or {}).get("backend") == store.name])
        tuning.prune(settings, keep={key for key in map(_tuned_key, kept) if key} | {export.EXPORTS_FOLDER})
        export.prune(settings, keep={(m.get("model") or {}).get("encoder", {}).get("key") for m in kept} - {None})

    return BuildReport(
        files=len(corpus.articles), skipped=list(corpus.skipped),
        sections=manifest["counts"]["sections"], chunks=len(chunks), sentences=len(sentences),
        embedded=embedded, reused=len(texts) - embedded, seconds=time.perf_counter() - started,
        directory=final, dense_kind=dense_kind, model_seconds=model_seconds, questions=len(questions),
        question_warnings=tuple(question_warnings), tuned_key=tuned_key, tune_seconds=tune_seconds,
        articles=per_file, encoder=encoder["backend"])


def _question_bank(entries: list[BankQuestion], chunks: list[Chunk], chunk_sentence_ids: list[list[int]],
                   sentences: list[str]) -> tuple[list[str], list[list[int]], list[str]]:
    """The bank's questions linked to these sentences, and a warning per line that could not be linked."""
    warnings = []
    questions, answered_by, unmatched = link(entries, sentences,
                                             sentence_owners(chunks, chunk_sentence_ids, len(sentences)))
    warnings += [f"the answer to {e.question!r} is not in {e.source} (any more); skipped" for e in unmatched]
    return questions, answered_by, warnings


def _sentence_table(chunks: list[Chunk]) -> tuple[list[str], list[list[int]]]:
    """Unique sentences, and for each chunk the ids of its sentences (overlap makes chunks share some)."""
    sentences: list[str] = []
    ids_of: dict[str, int] = {}
    chunk_sentence_ids = []
    for chunk in chunks:
        ids = []
        for sentence in chunk.sentences:
            if sentence not in ids_of:
                ids_of[sentence] = len(sentences)
                sentences.append(sentence)
            ids.append(ids_of[sentence])
        chunk_sentence_ids.append(ids)
    return sentences, chunk_sentence_ids


def _embed_with_cache(texts: list[str], cache: dict[str, np.ndarray], dimension: int | None, embedder: Embedder,
                      say: Callable[[str], None], show_bar: bool,
                      step: Callable[[str, int, int], None]) -> tuple[np.ndarray, int, int, float]:
    """Vectors for `texts`, embedding only those not in `cache`; also (count embedded, dimension, model load s).

    The model is touched only when something is missing, so a no-op rebuild never loads it.
    """
    hashes = [text_hash(t) for t in texts]
    missing = {h: t for h, t in zip(hashes, texts) if h not in cache}
    model_seconds = 0.0
    if missing:
        started = time.perf_counter()
        current = embedder.dimension  # the first use loads the model: timed apart from embedding
        model_seconds = time.perf_counter() - started
        if dimension is not None and dimension != current:
            cache, missing = {}, dict(zip(hashes, texts))  # cached vectors of another size: start over
        say(f"embedding {len(missing)} texts with {embedder.name} ({embedder.backend})")
        done = [0]
        step("embedding", 0, len(missing))

        def count(texts_done: int) -> None:
            done[0] += texts_done
            step("embedding", done[0], len(missing))
        new = embedder.encode(list(missing.values()), progress=show_bar, on_batch=count)
        cache = {**cache, **dict(zip(missing.keys(), new))}
        dimension = embedder.dimension
    if not texts:
        size = dimension or embedder.dimension
        return np.zeros((0, size), np.float32), 0, size, model_seconds
    return np.stack([cache[h] for h in hashes]).astype(np.float32), len(missing), dimension, model_seconds


def _previous_index(settings: Settings) -> Index | None:
    """The live index if it can be read and was built with the same model, else None.

    Its ONNX export need not be there: the vectors are what a build reuses."""
    try:
        return load(settings, check_encoder=False, search=False)
    except Exception:  # no index, another model, a damaged one: start from nothing
        return None


def _up_to_date(manifest: dict, corpus: Corpus, settings: Settings, tuned_key: str | None) -> bool:
    """True when a build would produce what the live generation already holds."""
    recorded = manifest.get("corpus") or {}
    return (manifest.get("chunking") == chunking_fingerprint(settings)
            and manifest.get("tuning") == tuning_fingerprint(settings)
            and _tuned_key(manifest) == tuned_key
            and (manifest.get("dense") or {}).get("flat_max_vectors") == settings.flat_max_vectors
            and (manifest.get("dense") or {}).get("hnsw_m") == settings.hnsw_m
            and _store_matches(manifest.get("store") or {}, settings)
            and recorded.get("files") == corpus.hashes
            and recorded.get("readers") == READER_VERSION
            and recorded.get("skipped") == {s.source: s.reason for s in corpus.skipped}
            and (manifest.get("questions") or {}).get("files") == bank_hashes(settings.corpus_dir)
            and manifest.get("background") == _background_fingerprint(settings, read_background(settings.background_file))
            and (_encoder(manifest).get("key") == export.export_key(query_model(manifest, settings))))


def _store_matches(entry: dict, settings: Settings) -> bool:
    """The generation's vectors are in the store the settings name (and, on Milvus, at the same place)."""
    if entry.get("backend") != settings.store:
        return False
    return settings.store != "milvus" or (entry.get("uri") == settings.milvus_uri
                                          and entry.get("alias") == settings.milvus_collection)


def _encoder(manifest: dict) -> dict:
    return (manifest.get("model") or {}).get("encoder") or {}


def _encoder_entry(embedder: Embedder, onnx: Export | None, settings: Settings) -> dict:
    """The manifest's record of how the model runs: its ONNX export, or sentence-transformers and why."""
    if onnx is not None:
        return {"backend": "onnx", "key": onnx.key}
    return {"backend": "sentence-transformers", "key": export.export_key(embedder.name)}


def _repair_export(manifest: dict, settings: Settings, embedder: Embedder, say: Callable[[str], None],
                   step: Callable[[str, int, int], None]) -> None:
    """Make the live generation's ONNX export again when it is missing or damaged (same model, same key)."""
    encoder = _encoder(manifest)
    if encoder.get("backend") != "onnx" or export.is_whole(settings, encoder["key"]):
        return
    name = query_model(manifest, settings)
    model = embedder if embedder.name == name else Embedder(name, settings.batch_size, settings.threads)
    say(f"the ONNX export of {name} is missing or damaged: making it again")
    step("exporting", 0, 1)
    if export.ensure(settings, model, say, key=encoder["key"]) is None:
        raise ModelError(f"the ONNX export of {name} cannot be made again; rebuild the index with: "
                         f"{REBUILD_HINT} --tune-epochs {settings.tune_epochs}")
    step("exporting", 1, 1)


def _previous_vectors(previous: Index | None) -> tuple[dict[str, np.ndarray], int | None]:
    """Vectors of the previous index by text hash, and their dimension."""
    if previous is None:
        return {}, None
    cache: dict[str, np.ndarray] = {}
    for chunk, vector in zip(previous.chunks, previous.chunk_vectors):
        cache[text_hash(chunk.index_text)] = vector
    for sentence, vector in zip(previous.sentences, previous.sentence_vectors):
        cache[text_hash(sentence)] = vector
    for sentence_id, vector in enumerate(previous.context_vectors):
        section = previous.chunks[previous.sentence_chunks[sentence_id][0]].section
        cache[text_hash(context_text(section, previous.sentences[sentence_id]))] = vector
    for question, vector in zip(previous.questions, previous.question_vectors):
        cache[text_hash(question)] = vector
    background = (previous.directory / "background_questions.txt").read_text(encoding="utf-8").splitlines()
    for question, vector in zip(background, np.load(previous.directory / "background_vectors.npy", mmap_mode="r")):
        cache[text_hash(question)] = vector
    return cache, int(previous.manifest["model"]["dimension"])


def _tuned_key(manifest: dict) -> str | None:
    return ((manifest.get("model") or {}).get("tuned") or {}).get("key")


def query_model(manifest: dict, settings: Settings) -> str:
    """The model that embeds questions for this index: the one its texts were embedded with."""
    key = _tuned_key(manifest)
    return str(tuning.model_dir(settings, key)) if key else settings.model


def query_export(manifest: dict, settings: Settings) -> Export | None:
    """The ONNX export of that model which the index names; None: it runs on sentence-transformers."""
    encoder = _encoder(manifest)
    return Export(export.store(settings) / encoder["key"], encoder["key"]) if encoder.get("backend") == "onnx" \
        else None


def _background_fingerprint(settings: Settings, background: list[str]) -> dict:
    """What the background statistics were computed from: its file and the hash of each question."""
    return {"file": str(settings.background_file), "questions": len(background),
            "sha256": text_hash("\n".join(background))}


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
    if not name.startswith(_BUILD_PREFIX) or "/" in name or not directory.is_dir():
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


def load(settings: Settings, dimension: int | None = None, check_encoder: bool = True,
         search: bool = True) -> Index:
    """Load and verify the live index; raises an IndexError_ subclass that says what to do.

    `check_encoder`: also require the ONNX export the manifest names (present, whole in size; its
    checksum and sample vectors are checked when the question model loads it).
    `search`: open its vector stores; False loads the tables and vectors only, whichever store
    the index was built for (what a build's vector cache reads)."""
    directory = live_directory(settings.index_dir)
    manifest = read_manifest(directory)
    if not search:  # the vectors are in the folder whichever store searched them
        settings = settings.replace(store=(manifest.get("store") or {}).get("backend") or settings.store)
    check_compatible(manifest, settings, dimension, settings.index_dir)
    _verify_files(directory, manifest)
    key = _tuned_key(manifest)
    if key and not tuning.is_trained(settings, key):
        raise IndexCorruptError(f"the index in {directory} was embedded with a fine-tuned model that is no longer "
                                f"in {tuning.model_dir(settings, key)}; rebuild it with: {REBUILD_HINT}")
    onnx = query_export(manifest, settings)
    if check_encoder and onnx is not None:
        try:
            check_files(onnx.folder, onnx.key, checksum=False)
        except ModelError as exc:
            raise IndexCorruptError(str(exc)) from exc
    try:
        chunk_rows = _read_jsonl(directory / "chunks.jsonl")
        sentence_rows = _read_jsonl(directory / "sentences.jsonl")
        sentences = [r["text"] for r in sentence_rows]
        chunk_sentence_ids = [list(r["sentences"]) for r in chunk_rows]
        chunks = [Chunk(r["source"], r["title"], r["section"], r["text"], tuple(sentences[i] for i in ids))
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
    except (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError) as exc:
        raise IndexCorruptError(
            f"the index in {directory} cannot be read ({exc}); rebuild it with: {REBUILD_HINT}") from exc
    stores = Stores(*vector_stores, lexical)
    if not (len(chunks) == len(chunk_vectors)
            and len(sentences) == len(sentence_vectors) == len(context_vectors) == len(answers)
            and len(questions) == len(question_vectors)
            and (not search or (stores.chunks.size, stores.sentences.size, stores.questions.size)
                 == (len(chunks), len(sentences), len(questions)))
            and all(0 <= i < len(sentences) for ids in question_sentence_ids for i in ids)):
        raise IndexCorruptError(f"the index in {directory} is inconsistent; rebuild it with: {REBUILD_HINT}")
    return Index(directory, manifest, chunks, chunk_sentence_ids, sentences, chunk_vectors, sentence_vectors,
                 context_vectors, answers, questions, question_sentence_ids, question_vectors, stores, background)


def stale_reason(manifest: dict, settings: Settings) -> str | None:
    """Why the index no longer matches the corpus and settings, or None when it does."""
    if manifest.get("chunking") != chunking_fingerprint(settings):
        return "the chunking settings changed"
    if manifest.get("tuning") != tuning_fingerprint(settings):
        return "the fine-tuning settings changed"
    if (manifest.get("corpus") or {}).get("readers") != READER_VERSION:
        return "the article readers changed (files are read differently now)"
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
        if size != meta.get("bytes") or _sha256_file(path) != meta.get("sha256"):
            raise IndexCorruptError(
                f"index file {path} is truncated or altered (its checksum does not match the manifest); "
                f"rebuild with: {REBUILD_HINT}")


def _file_digests(directory: Path) -> dict[str, dict]:
    return {str(p.relative_to(directory)): {"bytes": p.stat().st_size, "sha256": _sha256_file(p)}
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_jsonl(path: Path, rows: Iterator[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _fsync_tree(directory: Path) -> None:
    for path in [*directory.rglob("*"), directory]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _point_current(root: Path, name: str) -> None:
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


def _prune_generations(root: Path, keep: int = 2) -> list[dict]:
    """Delete all but the newest `keep` generations (the live one is always kept); the kept ones' manifests."""
    try:
        live = (root / CURRENT).read_text().strip()
    except OSError:
        return []
    generations = sorted((p for p in root.iterdir() if p.name.startswith(_BUILD_PREFIX)), key=lambda p: p.name)
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


def _remove_leftovers(root: Path) -> None:
    """Partial builds of a killed run (only one build runs at a time: we hold the lock)."""
    for path in root.iterdir():
        if path.name.startswith(_TMP_PREFIX) or (path.name.startswith(CURRENT + ".") and path.name.endswith(".tmp")):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


@contextmanager
def _build_lock(root: Path) -> Iterator[None]:
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


def _library_versions(settings: Settings) -> dict[str, str]:
    """Read from the installed packages' metadata: importing torch only to name its version costs seconds."""
    from importlib import metadata

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"
    versions = {"python": platform.python_version(), "faiss": version("faiss-cpu"), "bm25s": bm25s.__version__,
                "numpy": np.__version__, "torch": version("torch"),
                "sentence_transformers": version("sentence-transformers"), "onnxruntime": version("onnxruntime"),
                "tokenizers": version("tokenizers")}
    if settings.store == "milvus":
        versions.update(pymilvus=version("pymilvus"), milvus_lite=version("milvus-lite"))
    return versions
