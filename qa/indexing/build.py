"""Stage 4, the build: corpus -> chunks -> vectors -> a new live index generation.

Owns the build pipeline: read the corpus, chunk it, table its unique sentences, link the
question bank, fine-tune and export the model when need be (qa/models/tuning.py, qa/models/export.py; a
new tuned model in a process of its own, qa/models/preparation.py),
embed, and write one generation in the format qa/indexing/index.py owns, then make it live there.
What a generation holds, and how it is swapped in, locked and pruned, is qa/indexing/index.py's
(its docstring lists the files); what is computed from vectors for the answer stage is
qa/indexing/features.py's.

Vectors are cached by the sha256 of the text embedded: a rebuild embeds only
texts it has not embedded before with the same model, so an unchanged corpus
embeds nothing and a changed file re-embeds only its own changed chunks. The
same model means the same tuned model too: a changed question bank trains a
new one and re-embeds everything. Texts are embedded through the model's ONNX
export (made first if need be): it gives torch's vectors (within 1e-4) in a
third of the time.

Limits: one build at a time per index folder (qa/indexing/index.py's lock); all texts are
embedded in one call, so a build holds every vector of the corpus in memory.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import bm25s
import numpy as np

from qa.models import background_vectors as shipped_background, export, preparation, tuning
from qa.reading.chunking import Chunk, chunk_articles
from qa.reading.corpus import (ARTICLE_SUFFIXES, Corpus, FileReport, Skipped, file_reports, load_corpus,
                               reading_record)
from qa.models.embedding import Embedder, Export
from qa.errors import REBUILD_HINT, CorpusError, IndexWriteError, ModelError
from qa.indexing.features import context_text, mean_answer_vectors, sentence_owners, subject_of
from qa.files import sha256_bytes
from qa.indexing.index import (BUILD_PREFIX, FORMAT_VERSION, TMP_PREFIX, TOKEN_SPANS_FILE, TOKEN_VECTORS_FILE, Index,
                               build_lock, encoder_of, file_digests, recipe_change,
                      fsync_tree, point_current, prune_generations, remove_leftovers, tuned_key_of, write_jsonl)
from qa.models.question_bank import BankQuestion, bank_hashes, bank_sources, link, load_bank
from qa.indexing.question_model import load, query_model
from qa.models.refusal import background_statistics, read_background
from qa.settings import Settings, chunking_fingerprint, lexical_fingerprint, tuning_fingerprint
from qa.indexing.backends import backend
from qa.indexing.stores import LEXICAL_FOLDER, LexicalStore, Tables
from qa.reading.text import content_terms


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
    tuned_key: str | None = None  # the fine-tuned model the index was embedded with (qa/models/tuning.py)
    tune_seconds: float = 0.0  # training it, when this build had to
    encoder: str = "onnx"  # how the index's model ran: "onnx", or "sentence-transformers" when it cannot be exported
    export_failure: str | None = None  # why the model could not be exported, when it could not
    articles: tuple[FileReport, ...] = ()  # per file of the folder: title, sections, passages, or why skipped


def build(settings: Settings, embedder: Embedder,
          progress: Callable[[str], None] | None = None, show_bar: bool = False,
          steps: Callable[[str, int, int], None] | None = None, provisional: bool = False) -> BuildReport:
    """Build the index of `settings.corpus_dir` into `settings.index_dir` and make it live.

    `embedder`: the configured model (used when the build does not fine-tune); `progress` gets
    messages for a person; `steps(stage, done, total)` gets the long stages' progress as numbers
    ("fine-tuning" in training steps, "exporting", "embedding" in texts), for start-up progress.
    `provisional`: a first build that a full one follows at once (qa/serving/startup.py), made to answer
    sooner: the question bank is left out (not embedded, not searched), and each sentence is not embedded
    again under its section heading (its answer vector is its own vector: a third fewer texts to embed,
    answers a little less often right, docs/BENCHMARKS.md, first_start). Its manifest says so, it is never
    up to date, and a later build reuses none of its section-heading vectors."""
    started = time.perf_counter()
    say = progress or (lambda message: None)
    step = steps or (lambda stage, done, total: None)
    root = settings.index_dir
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexWriteError(f"cannot create index folder {root}: {exc.strerror or exc}") from exc

    with build_lock(root):
        remove_leftovers(root)
        corpus = load_corpus(settings.corpus_dir, settings)
        if not corpus.articles:
            why = "".join(f"\n  skipped {s.source}: {s.reason}" for s in corpus.skipped)
            raise CorpusError(f"no readable article in {settings.corpus_dir} (read: {', '.join(ARTICLE_SUFFIXES)}){why}")
        say(f"read {len(corpus.articles)} articles from {settings.corpus_dir}")
        bank, question_warnings = load_bank(settings.corpus_dir)
        chunks = chunk_articles(corpus.articles, settings, bank_sources(bank))
        per_file = file_reports(corpus, chunks)

        sentences, chunk_sentence_ids = sentence_table(chunks)
        questions, question_sentence_ids, unlinked = _question_bank(bank, chunks, chunk_sentence_ids, sentences)
        question_warnings += unlinked
        if provisional:
            questions, question_sentence_ids = [], []
        for warning in question_warnings:
            say(f"question bank: {warning}")
        previous = _previous_index(settings)
        tuning_plan = tuning.plan(settings, bank, tuned_key_of(previous.manifest) if previous is not None else None)
        tuned_key = tuning_plan.key if tuning_plan else None
        if previous is not None and _up_to_date(previous.manifest, corpus, settings, tuned_key):
            # Nothing to do: no new generation, no model, the live index stays as it is
            # (but its ONNX export is made again if it went missing or was damaged, its set-up graph if it needs it).
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
                question_warnings=tuple(question_warnings), tuned_key=tuned_key, articles=per_file,
                encoder=encoder_of(previous.manifest).get("backend", "onnx"),
                export_failure=encoder_of(previous.manifest).get("export_failure"))
        tune_seconds = 0.0
        if tuning_plan is not None:
            # Every text is embedded with the model tuned on this bank, and a vector
            # of another model (the untuned one, or one tuned on another bank) is no use.
            # Trained and exported in a process that leaves before anything is embedded (its memory with it).
            folder, tune_seconds = preparation.tuned_model(settings, tuning_plan, say, step)
            if tune_seconds:
                say(f"fine-tuned in {tune_seconds:.0f} s")
            embedder = Embedder(str(folder), settings.batch_size, settings.threads)
        step("exporting", 0, 1)
        onnx = export.ensure(settings, embedder, say)
        step("exporting", 1, 1)
        if onnx is not None:
            embedder.use_export(onnx)
        encoder = _encoder_entry(embedder, onnx, settings)
        if previous is not None and tuned_key_of(previous.manifest) != tuned_key:
            previous = None
        cache, dimension = _previous_vectors(previous)
        token_cache = _previous_tokens(previous)
        # A sentence's context is its section in the first chunk it appears in.
        first_section: dict[int, str] = {}
        for chunk, ids in zip(chunks, chunk_sentence_ids):
            for sentence_id in ids:
                first_section.setdefault(sentence_id, chunk.section_of(sentences[sentence_id]))
        contexts = [] if provisional else [context_text(first_section[i], s) for i, s in enumerate(sentences)]
        background = read_background(settings.background_file)
        known = shipped_background.shipped(onnx.key, background, embedder.batch_size) if onnx is not None else None
        if known is not None:  # the packaged model's: the same for every corpus, computed once and shipped
            cache = {**cache, **{text_hash(q): v for q, v in zip(background, known)}}
            dimension = dimension or known.shape[1]
        texts = [c.index_text for c in chunks] + sentences + contexts + questions + background
        # Answer choice's token match reads each sentence's and each passage subject's token vectors:
        # the sentences' come from the same forward pass as their vectors, the subjects' from one of their own.
        with_tokens = getattr(embedder, "token_vectors", None) is not None
        subjects = list(dict.fromkeys(subject_of(c.title, c.section) for c in chunks)) if with_tokens else []
        wanted = {text_hash(s) for s in sentences} if with_tokens else set()
        vectors, embedded, dimension, model_seconds = _embed_with_cache(texts, cache, dimension, embedder, say,
                                                                        show_bar, step, token_cache, wanted,
                                                                        apart=len(background))
        if with_tokens:
            missing_subjects = [t for t in subjects if text_hash(t) not in token_cache]
            for text, kept in zip(missing_subjects, embedder.token_vectors(missing_subjects) if missing_subjects
                                  else []):
                token_cache[text_hash(text)] = kept.vectors.astype(np.float16)
        chunk_vectors = vectors[:len(chunks)]
        sentence_vectors = vectors[len(chunks):len(chunks) + len(sentences)]
        after = len(chunks) + len(sentences) + len(contexts)
        context_vectors = sentence_vectors if provisional else vectors[len(chunks) + len(sentences):after]
        question_vectors = vectors[after:after + len(questions)]
        background_vectors = vectors[len(texts) - len(background):]
        say(f"embedded {embedded} new texts, reused {len(texts) - embedded}")

        lexical = LexicalStore.build([content_terms(c.index_text) for c in chunks], settings.bm25_k1, settings.bm25_b)
        store = backend(settings)
        answer_vectors = mean_answer_vectors(sentence_vectors, context_vectors)
        owners = sentence_owners(chunks, chunk_sentence_ids, len(sentences))
        statistics = background_statistics(background_vectors, owners, answer_vectors,
                                           [owners[ids[0]] for ids in question_sentence_ids], question_vectors)

        tmp = root / f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}"
        stamp = dt.datetime.now(dt.timezone.utc)
        final = root / f"{BUILD_PREFIX}{stamp:%Y%m%dT%H%M%S.%f}-{uuid.uuid4().hex[:6]}"  # sorts by time
        try:
            tmp.mkdir()
            write_jsonl(tmp / "chunks.jsonl", (
                {**asdict(c), "sentences": ids, "hash": text_hash(c.index_text)}
                for c, ids in zip(chunks, chunk_sentence_ids)))
            write_jsonl(tmp / "sentences.jsonl", ({"text": s, "hash": text_hash(s)} for s in sentences))
            np.save(tmp / "chunk_vectors.npy", chunk_vectors)
            np.save(tmp / "sentence_vectors.npy", sentence_vectors)
            np.save(tmp / "context_vectors.npy", context_vectors)
            np.save(tmp / "answer_vectors.npy", answer_vectors)
            write_jsonl(tmp / "questions.jsonl", ({"question": q, "sentences": ids, "hash": text_hash(q)}
                                                   for q, ids in zip(questions, question_sentence_ids)))
            np.save(tmp / "question_vectors.npy", question_vectors)
            np.save(tmp / "background_vectors.npy", background_vectors)
            token_entry = _write_tokens(tmp, sentences, subjects, chunks, token_cache) if with_tokens else None
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
                "token_vectors": token_entry,
                "chunking": chunking_fingerprint(settings),
                "lexical": lexical_fingerprint(settings),
                "dense": {"kind": dense_kind, "sentences_kind": store_entry["kinds"]["sentences"],
                          "hnsw_m": settings.hnsw_m, "flat_max_vectors": settings.flat_max_vectors},
                "store": store_entry,
                "corpus": {
                    "folder": str(settings.corpus_dir),
                    "files": corpus.hashes,
                    "indexed": sorted(a.source for a in corpus.articles),
                    "skipped": {s.source: s.reason for s in corpus.skipped},
                    "titles": {a.source: a.title for a in corpus.articles},
                    **reading_record(settings),
                },
                "background": _background_fingerprint(settings, background),
                "questions": {"files": bank_hashes(settings.corpus_dir), "linked": len(questions),
                              "skipped": question_warnings, **({"left_out": True} if provisional else {})},
                "provisional": provisional,
                "counts": {
                    "articles": len(corpus.articles),
                    "sections": sum(len(a.sections) for a in corpus.articles),
                    "chunks": len(chunks),
                    "sentences": len(sentences),
                    "chunks_per_article": {a.source: sum(c.source == a.source for c in chunks)
                                           for a in corpus.articles},
                },
                "libraries": _library_versions(settings),
                "files": file_digests(tmp),
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
            fsync_tree(tmp)
            os.rename(tmp, final)
            store.publish(store_entry)  # on Milvus, the alias: before CURRENT, so both name the new one
            point_current(root, final.name)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)
            if not isinstance(exc, OSError):
                raise  # the store's own error (it says which setting), or an interruption
            raise IndexWriteError(
                f"cannot write the index in {root}: {exc.strerror or exc}; the previous index is unchanged") from exc
        kept = prune_generations(root)
        store.prune([m["store"] for m in kept if (m.get("store") or {}).get("backend") == store.name])
        tuning.prune(settings, keep={key for key in map(tuned_key_of, kept) if key} | {export.EXPORTS_FOLDER})
        export.prune(settings, keep={(m.get("model") or {}).get("encoder", {}).get("key") for m in kept} - {None})

    return BuildReport(
        files=len(corpus.articles), skipped=list(corpus.skipped),
        sections=manifest["counts"]["sections"], chunks=len(chunks), sentences=len(sentences),
        embedded=embedded, reused=len(texts) - embedded, seconds=time.perf_counter() - started,
        directory=final, dense_kind=dense_kind, model_seconds=model_seconds, questions=len(questions),
        question_warnings=tuple(question_warnings), tuned_key=tuned_key, tune_seconds=tune_seconds,
        articles=per_file, encoder=encoder["backend"], export_failure=encoder.get("export_failure"))


def _question_bank(entries: list[BankQuestion], chunks: list[Chunk], chunk_sentence_ids: list[list[int]],
                   sentences: list[str]) -> tuple[list[str], list[list[int]], list[str]]:
    """The bank's questions linked to these sentences, and a warning per line that could not be linked."""
    warnings = []
    questions, answered_by, unmatched = link(entries, sentences,
                                             sentence_owners(chunks, chunk_sentence_ids, len(sentences)))
    warnings += [f"the answer to {e.question!r} is not in {e.source} (any more); skipped" for e in unmatched]
    return questions, answered_by, warnings


def sentence_table(chunks: list[Chunk]) -> tuple[list[str], list[list[int]]]:
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
                      step: Callable[[str, int, int], None], token_cache: dict[str, np.ndarray] | None = None,
                      wanted: set[str] = frozenset(), apart: int = 0) -> tuple[np.ndarray, int, int, float]:
    """Vectors for `texts`, embedding only those not in `cache`; also (count embedded, dimension, model load s).

    `wanted`: hashes of the texts whose token vectors (float16 rows) `token_cache` must hold when done; a
    text without them is embedded again, and they are taken from that same forward pass.
    The model is touched only when something is missing, so a no-op rebuild never loads it. The last `apart`
    texts (the background questions) are embedded in batches of their own (qa/models/background_vectors.py):
    their vectors then depend on the model and those texts alone, never on the corpus beside them.
    """
    hashes = [text_hash(t) for t in texts]
    missing = {h: t for h, t in zip(hashes, texts)
               if h not in cache or (h in wanted and h not in token_cache)}
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
        alone = set(hashes[len(hashes) - apart:]) if apart else set()
        corpus = [h for h in missing if h not in alone or h in wanted]
        background = [h for h in missing if h in alone and h not in wanted]
        new = {}
        if corpus:
            tokens = [True if h in wanted else None for h in corpus] if wanted else None
            new.update(zip(corpus, embedder.encode([missing[h] for h in corpus], progress=show_bar, on_batch=count,
                                                   **({"tokens": tokens} if tokens is not None else {}))))
            for h, kept in zip(corpus, tokens or []):
                if kept is not None:
                    token_cache[h] = kept.vectors.astype(np.float16)
        if background:
            new.update(zip(background, shipped_background.embed(
                lambda some: embedder.encode(some, progress=show_bar, on_batch=count), [missing[h] for h in background])))
        cache = {**cache, **new}
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
    return (recipe_change(manifest, settings) is None  # chunking, BM25, tuning, readers, token vectors
            and tuned_key_of(manifest) == tuned_key
            and (manifest.get("dense") or {}).get("flat_max_vectors") == settings.flat_max_vectors
            and (manifest.get("dense") or {}).get("hnsw_m") == settings.hnsw_m
            and _store_matches(manifest.get("store") or {}, settings)
            and recorded.get("files") == corpus.hashes
            and recorded.get("skipped") == {s.source: s.reason for s in corpus.skipped}
            and (manifest.get("questions") or {}).get("files") == bank_hashes(settings.corpus_dir)
            and manifest.get("background") == _background_fingerprint(settings, read_background(settings.background_file))
            and _encoder_current(encoder_of(manifest), settings, query_model(manifest, settings)))


def _encoder_current(encoder: dict, settings: Settings, model: str) -> bool:
    """The generation's model runs as this environment would run it: the same export key, and not on
    sentence-transformers unless that was decided in this environment (a package installed since gets the
    export tried again)."""
    if encoder.get("key") != export.export_key(model):
        return False
    return encoder.get("backend") == "onnx" or encoder.get("environment") == export.export_environment()


def _store_matches(entry: dict, settings: Settings) -> bool:
    """The generation's vectors are in the store the settings name (and, on Milvus, at the same place)."""
    if entry.get("backend") != settings.store:
        return False
    return settings.store != "milvus" or (entry.get("uri") == settings.milvus_uri
                                          and entry.get("alias") == settings.milvus_collection)


def _encoder_entry(embedder: Embedder, onnx: Export | None, settings: Settings) -> dict:
    """The manifest's record of how the model runs: its ONNX export, or sentence-transformers and why."""
    if onnx is not None:
        return {"backend": "onnx", "key": onnx.key}
    key = export.export_key(embedder.name)
    return {"backend": "sentence-transformers", "key": key, "export_failure": export.failure(settings, key),
            "environment": export.export_environment()}


def _repair_export(manifest: dict, settings: Settings, embedder: Embedder, say: Callable[[str], None],
                   step: Callable[[str, int, int], None]) -> None:
    """Make the live generation's ONNX export again when it is missing or damaged (same model, same key); a
    whole one gets its set-up graph saved again if it needs it (export.renew_session_graph)."""
    encoder = encoder_of(manifest)
    if encoder.get("backend") != "onnx":
        return
    if export.is_whole(settings, encoder["key"]):
        export.renew_session_graph(export.store(settings) / encoder["key"], say)
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
    # A provisional index's "contexts" are its sentences' own vectors: never reused as a context's.
    for sentence_id, vector in enumerate([] if previous.manifest.get("provisional") else previous.context_vectors):
        section = previous.chunks[previous.sentence_chunks[sentence_id][0]].section_of(previous.sentences[sentence_id])
        cache[text_hash(context_text(section, previous.sentences[sentence_id]))] = vector
    for question, vector in zip(previous.questions, previous.question_vectors):
        cache[text_hash(question)] = vector
    background = (previous.directory / "background_questions.txt").read_text(encoding="utf-8").splitlines()
    for question, vector in zip(background, np.load(previous.directory / "background_vectors.npy", mmap_mode="r")):
        cache[text_hash(question)] = vector
    return cache, int(previous.manifest["model"]["dimension"])


def _previous_tokens(previous: Index | None) -> dict[str, np.ndarray]:
    """The previous index's stored token vectors (sentences' and subjects'), by text hash."""
    if previous is None or previous.tokens is None:
        return {}
    cache = {text_hash(s): previous.tokens.sentence(i) for i, s in enumerate(previous.sentences)}
    for chunk_id, chunk in enumerate(previous.chunks):
        cache[text_hash(subject_of(chunk.title, chunk.section))] = previous.tokens.subject(chunk_id)
    return cache


def _write_tokens(folder: Path, sentences: list[str], subjects: list[str], chunks: list[Chunk],
                  token_cache: dict[str, np.ndarray]) -> dict:
    """The token vectors of `sentences` and of the chunks' subjects, in the format of qa/indexing/index.py's
    TokenTable; its manifest entry."""
    rows, spans, at = [], [], 0
    for text in sentences + subjects:
        kept = token_cache[text_hash(text)]
        rows.append(kept)
        spans.append((at, at + len(kept)))
        at += len(kept)
    where = {text: spans[len(sentences) + i] for i, text in enumerate(subjects)}
    spans = spans[:len(sentences)] + [where[subject_of(c.title, c.section)] for c in chunks]
    dimension = rows[0].shape[1] if rows else 0
    matrix = np.concatenate(rows).astype(np.float16) if rows else np.zeros((0, dimension), np.float16)
    np.save(folder / TOKEN_VECTORS_FILE, matrix)
    np.save(folder / TOKEN_SPANS_FILE, np.array(spans, dtype=np.int64).reshape(len(spans), 2))
    return {"pieces": int(len(matrix)), "dtype": "float16", "sentences": len(sentences), "chunks": len(chunks)}


def _background_fingerprint(settings: Settings, background: list[str]) -> dict:
    """What the background statistics were computed from: its file and the hash of each question."""
    return {"file": str(settings.background_file), "questions": len(background),
            "sha256": text_hash("\n".join(background))}


def text_hash(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


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
