"""The library's front door: load the model and index once, then answer questions.

`Engine.open(settings)` loads the embedding model and the live index
(building it first when it is missing, and rebuilding it when the corpus
changed since, if asked to), and `engine.ask(question, history)` runs the
pipeline: check the question -> triage it (qa/answering/triage.py: small talk and
questions not in English are answered without a search; an emergency is
marked) -> restore a follow-up's topic -> embed -> hybrid search -> pick the
answer sentence or refuse. For a follow-up it also
recalls the answers the earlier questions got (remembered from when they were
asked, or answered again), so the follow-up gets something new.

The engine also notices when a build elsewhere (e.g. `python -m qa build`
while the app serves) made a new generation live: `ask()` compares the
CURRENT pointer's mtime, loads the new generation, and swaps it in between
questions. A question being answered keeps the generation it started with,
so no answer mixes two indexes.

Questions are embedded with the model the index's texts were embedded with:
the model fine-tuned on the question bank when the build made one
(qa/models/tuning.py), which the manifest names, else the configured model; through
the ONNX export of it that the manifest names (qa/models/onnx_model.py), so
answering never imports torch. A new generation embedded with another tuned
model brings that model in with it, and the one it replaces is let go.

`status()` says what the engine answers with and, while a build started for
it runs in the background (qa/serving/startup.py), how far that is.

Limits: one base model per process; the index swap (and loading a newly
tuned model, under a second) happens on the next question, not in the
background.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import unicodedata
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Sequence

import faiss
import numpy as np

from qa.indexing import index as index_store, question_model
from qa.answering.answer import answer, resolve_query
from qa.answering.result import Result
from qa.models.embedding import Embedder
from qa.errors import (IndexCorruptError, IndexError_, IndexIncompatibleError, IndexMissingError, ModelError,
                       QuestionError)
from qa.indexing.index import Index
from qa.indexing.question_model import embedder_for
from qa.models.refusal import RefusalModel, load_labels, load_model
from qa.answering.search import example_similarities, search
from qa.serving.interface import ArticleInfo
from qa.settings import Settings
from qa.serving.status import StartupStatus, serving_status
from qa.answering.synonyms import Expansion, Synonyms
from qa.reading.text import content_terms
from qa.answering.triage import EMERGENCY_SUBJECTS, Triage, triage


def build_index(settings: Settings, embedder: Embedder, progress: Callable[[str], None], show_bar: bool):
    """qa/indexing/build.py's build, imported only when an index is built: it brings bm25s and scipy, which
    answering from a built index never needs (a cold `qa ask` is a tenth of a second faster)."""
    from qa.indexing.build import build

    return build(settings, embedder, progress=progress, show_bar=show_bar)


# Earlier turns whose answers are remembered (a few hundred bytes each).
RECENT_ANSWERS = 1024
# Question vectors kept, least recently used dropped first (1.5 KB each): a text asked again (a
# follow-up's earlier turn answered again, the same question from another visitor) is not embedded again.
QUESTION_VECTORS = 1024
# Texts per forward pass when a batch of questions is prepared: more rows make onnxruntime's matrix
# products more efficient, up to about this many short texts on one core, and a smaller batch is ready
# sooner, so its questions are answered beside the next batches' passes (docs/BENCHMARKS.md, latency).
PREPARE_BATCH = 8


@dataclass(frozen=True)
class _Live:
    """An index generation and the model that embeds questions for it: swapped together."""

    index: Index
    embedder: Embedder


def clean_question(question: object, settings: Settings) -> str:
    """The question as text to search, or QuestionError saying what is wrong with it."""
    if not isinstance(question, str):
        raise QuestionError("The question must be text.")
    if len(question) > 4 * settings.max_question_chars:  # far too long: refuse before reading it all
        raise _too_long(len(question), settings)
    # Control characters and odd spacing carry no meaning for search. (A printable text has neither.)
    text = question if question.isprintable() else "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in question)
    text = " ".join(text.split())
    if not text:
        raise QuestionError("Please type a question.")
    if len(text) > settings.max_question_chars:
        raise _too_long(len(text), settings)
    return text


def _too_long(length: int, settings: Settings) -> QuestionError:
    return QuestionError(f"That question is {length:,} characters long; please keep it to at most "
                         f"{settings.max_question_chars:,} characters.")


class Engine:
    """The pipeline over one live index, in this process; satisfies qa.serving.interface.AnswersQuestions."""

    def __init__(self, settings: Settings, embedder: Embedder, index: Index,
                 refusal: RefusalModel | None = None, owns_embedder: bool = False) -> None:
        """`embedder`: the configured (base) model; questions use the index's own (qa/indexing/question_model.py).
        `refusal`: the refusal model; by default the fitted one of `settings.refusal_model_file`.
        `owns_embedder`: the engine made `embedder` and may let go of its model when no generation uses it."""
        # One question is one search: FAISS on one thread is faster for that
        # than on two OpenMP threads (docs/BENCHMARKS.md, scale).
        faiss.omp_set_num_threads(1)
        self.settings = settings
        self.base_embedder = embedder
        self._owns_base = owns_embedder
        # Set by qa/serving/startup.py while a build runs for this engine in the background: what it reports.
        self.startup = None
        self.synonyms = Synonyms.load(settings.synonyms_file)
        self.refusal = refusal or load_model(settings.refusal_model_file, settings.model)
        # The labels' fitted bars, when fitted with this refusal model (else the settings' fallback).
        self.labels = load_labels(settings.labels_file, self.refusal)
        self._live = _Live(index, embedder_for(index, settings, embedder))
        self._pointer_mtime = self._current_mtime()
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        # (index generation, question, questions before it) -> the sentence its answer chose:
        # a chat's follow-up finds its earlier turns here instead of answering them again.
        self._recent_answers: dict[tuple[str, str, tuple[str, ...]], str] = {}
        # (the question model's identity, text) -> its vector.
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        # (the question model's identity, question) -> its token vectors (answer choice's token match), kept as long.
        self._token_vectors: OrderedDict[tuple[str, str], object] = OrderedDict()
        # (question, questions before it, emergency situation) -> its plan (`_plan`), kept as long.
        self._plans: OrderedDict[tuple, tuple] = OrderedDict()

    @classmethod
    def open(cls, settings: Settings, build: str = "missing", say: Callable[[str], None] | None = None,
             embedder: Embedder | None = None, refusal: RefusalModel | None = None) -> "Engine":
        """Load model and index.

        `build`: "never"; "missing" builds an absent index; "stale" also rebuilds one that is out of
        date, damaged, or made with another model or format (the app does this at start).
        """
        say = say or (lambda message: None)
        # Loaded on first use: when the index names a tuned model, the base one is never loaded.
        owned = embedder is None
        embedder = embedder or Embedder(settings.model, settings.batch_size, settings.threads)
        try:
            loaded = question_model.load(settings)
        except IndexMissingError:
            if build == "never":
                raise
            say(f"No index in {settings.index_dir} yet: building it now (this happens once).")
            loaded = None
        except (IndexIncompatibleError, IndexCorruptError) as exc:
            if build != "stale":
                raise
            say(f"The index cannot be used ({exc}): rebuilding it.")
            loaded = None
        if loaded is None:
            report = build_index(settings, embedder, progress=say, show_bar=sys.stderr.isatty())
            say(f"Built {report.chunks} passages from {report.files} articles in {report.seconds:.1f} s.")
            loaded = question_model.load(settings)
        if build == "stale":
            reason = index_store.stale_reason(loaded.manifest, settings)
            if reason:
                say(f"The index is out of date ({reason}): rebuilding it.")
                report = build_index(settings, embedder, progress=say, show_bar=sys.stderr.isatty())
                say(f"Built {report.chunks} passages ({report.embedded} newly embedded) in {report.seconds:.1f} s.")
                loaded = question_model.load(settings)
        try:
            return cls(settings, embedder, loaded, refusal, owned)
        except ModelError as exc:  # the question model's ONNX export is damaged: the build makes it again
            if build != "stale":
                raise
            say(f"The question model cannot be used ({exc}): rebuilding.")
            build_index(settings, embedder, progress=say, show_bar=sys.stderr.isatty())
            return cls(settings, embedder, question_model.load(settings), refusal, owned)

    # ------------------------------------------------------------------ asking

    def ask(self, question: str, history: Sequence[str] = ()) -> Result:
        """Answer one question; `history` holds the earlier questions of the conversation, oldest first."""
        text = clean_question(question, self.settings)
        kind = triage(text)
        if not kind.searched:  # small talk, or not English: nothing to search for
            return Result.unsearched(text, kind)
        earlier = tuple(h for h in self._safe_history(history) if h)
        live = self._current()
        result = self._ask(live, text, earlier, bool(kind.emergency))
        if kind.situation and not result.found:
            # Unanswered, someone is in danger now: search again with what the articles would say to do in
            # this situation, so the passage under the emergency line is on that (an overdose: naloxone,
            # breathing, CPR), not on whatever else the question names. An answer to the question itself wins.
            result = self._ask(live, text, earlier, True, kind.situation)
        return dataclasses.replace(result, triage=kind) if kind != Triage() else result

    def _plan(self, text: str, earlier: tuple[str, ...],
              situation: str | None = None) -> tuple[str, str, Sequence[Expansion], str | None]:
        """(query, the text searched, its synonym expansions, a follow-up's own text to embed or None).
        A medical emergency's `situation` adds what the articles would say to do in it to the text searched.
        Kept as the vectors are: `texts_to_embed` plans a question, and `ask` plans it again (the synonyms' pattern
        is one long alternation, the dearest part of a plan)."""
        key = (text, earlier, situation)
        with self._lock:
            plan = self._kept(self._plans, key)
            if plan is not None:
                return plan
        plan = self._make_plan(text, earlier, situation)
        with self._lock:
            self._keep(self._plans, key, plan)
        return plan

    def _make_plan(self, text: str, earlier: tuple[str, ...],
                   situation: str | None) -> tuple[str, str, tuple[Expansion, ...], str | None]:
        query = resolve_query(text, list(earlier), self.settings)
        subject = f"{query} ({EMERGENCY_SUBJECTS[situation]})" if situation else query
        searched, expansions = self.synonyms.expand(subject)
        focus = self.synonyms.expand(text)[0] if query != text and self.settings.followup_focus > 0 else None
        return query, searched, expansions, focus

    def _embed(self, embedder: Embedder, texts: Sequence[str],
               tokens_of: str | None = None) -> tuple[list[np.ndarray], object | None]:
        """The vectors of `texts`: those kept, and the others embedded now and kept; and the token vectors of
        `tokens_of` (qa.models.onnx_model.TokenVectors: answer choice's token match), None when not asked for.
        A text of `texts` gets them from the forward pass that embeds it; another costs a pass of its own."""
        model = self._model_key(embedder)
        found: dict[str, np.ndarray] = {}
        tokens = None
        with self._lock:
            for text in texts:
                vector = self._kept(self._vectors, (model, text))
                if vector is not None:
                    found[text] = vector
            if tokens_of is not None:
                tokens = self._kept(self._token_vectors, (model, tokens_of))
        missing = list(dict.fromkeys(t for t in texts if t not in found or (t == tokens_of and tokens is None)))
        if missing or (tokens_of is not None and tokens is None):
            # torch uses both cores for one forward pass: one at a time. onnxruntime runs a
            # question on one thread (Settings.query_threads), so two questions use both cores.
            # Each text alone, never in a padded batch with another: a kept vector is then the very one the
            # text gets when asked on its own, whatever it was first embedded beside.
            with self._encode_lock if embedder.backend != "onnx" else nullcontext():
                vectors = []
                for text in missing:
                    if text == tokens_of:
                        wanted = [True]
                        vectors.append(embedder.encode([text], tokens=wanted)[0])
                        tokens = wanted[0]
                    else:
                        vectors.append(embedder.encode_one(text))
                if tokens_of is not None and tokens is None:  # asked for a text it does not embed
                    tokens = embedder.token_vectors([tokens_of])[0]
            with self._lock:
                for text, vector in zip(missing, vectors):
                    self._keep(self._vectors, (model, text), vector)
                    found[text] = vector
                if tokens_of is not None:
                    self._keep(self._token_vectors, (model, tokens_of), tokens)
        return [found[t] for t in texts], tokens

    def texts_to_embed(self, question: str, history: Sequence[str] = ()) -> dict[str, bool]:
        """The texts `ask(question, history)` would embed and that are not kept yet, each with whether its token
        vectors are wanted too: the text searched, a follow-up's own text and earlier turns, the typed question
        (for its token vectors). Python only, no forward pass. Nothing for a question `ask` would refuse or
        not search: `ask` says what is wrong.

        For a batch of questions (`qa ask --jsonl`, qa/serving/jsonl.py): their texts, cut by
        `embedding_batches` and embedded by `embed_batch`, cost a question less CPU than a pass of its own
        each, and `ask` then finds them kept."""
        live = self._current()
        try:
            text = clean_question(question, self.settings)
        except QuestionError:
            return {}
        if not triage(text).searched:
            return {}
        earlier = tuple(h for h in self._safe_history(history) if h)
        turns = [(text, earlier)]
        if resolve_query(text, list(earlier), self.settings) != text:  # a follow-up asks its earlier turns
            turns += [(q, earlier[:turn]) for turn, q in enumerate(earlier)
                      if (live.index.generation, q, earlier[:turn]) not in self._recent_answers]
        tokens_wanted = self._reads_tokens(live)
        texts: dict[str, bool] = {}  # text -> its token vectors are wanted too
        for typed, before in turns:
            _, searched, _, focus = self._plan(typed, before)
            for embedded in (searched, focus):
                if embedded is not None:
                    texts.setdefault(embedded, False)
            if tokens_wanted:
                texts[typed] = True
        model = self._model_key(live.embedder)
        with self._lock:
            return {t: tokens for t, tokens in texts.items() if (model, t) not in self._vectors
                    or (tokens and (model, t) not in self._token_vectors)}

    def embedding_batches(self, texts: dict[str, bool], side_by_side: int = 2) -> list[dict[str, bool]]:
        """`texts` (text -> its token vectors wanted too) cut into the batches `embed_batch` embeds, the fewest
        tokens first: texts of similar token counts side by side, so little of a pass is padding (texts sorted
        by characters pad far more: docs/BENCHMARKS.md, latency); at most PREPARE_BATCH a batch, and at least
        `side_by_side` batches (one per thread that runs them)."""
        if not texts:
            return []
        try:
            counts = dict(zip(texts, self._current().embedder.token_counts(list(texts))))
        except ModelError:  # the model cannot load: embed_batch says so to each question
            counts = {t: len(t) for t in texts}
        ordered = sorted(texts, key=counts.__getitem__)
        size = max(1, min(PREPARE_BATCH, -(-len(ordered) // max(1, side_by_side))))
        return [{t: texts[t] for t in ordered[start:start + size]} for start in range(0, len(ordered), size)]

    def embed_batch(self, batch: dict[str, bool]) -> None:
        """Embed `batch` (text -> its token vectors wanted too; `embedding_batches` makes them) in one forward
        pass, and keep its vectors for `ask`. A vector made in a batch differs from the one the text gets alone
        in the last bits (docs/BENCHMARKS.md, latency), so a single question (the page, the API) is never
        embedded this way."""
        live = self._current()
        model = self._model_key(live.embedder)
        texts = list(batch)
        tokens = [True if batch[t] else None for t in texts]
        with self._encode_lock if live.embedder.backend != "onnx" else nullcontext():
            vectors = live.embedder.encode(texts, tokens=tokens)
        with self._lock:
            for text, vector, kept in zip(texts, vectors, tokens):
                self._keep(self._vectors, (model, text), vector)
                if kept is not None and kept is not True:  # True: the model gave none
                    self._keep(self._token_vectors, (model, text), kept)

    @staticmethod
    def _kept(kept: OrderedDict, key: tuple):
        """The value remembered for `key` (now the most recently used), or None. Called under the lock."""
        value = kept.get(key)
        if value is not None:
            kept.move_to_end(key)
        return value

    @staticmethod
    def _keep(kept: OrderedDict, key: tuple, value) -> None:
        """Remember `value`, dropping the least recently used beyond QUESTION_VECTORS. Called under the lock."""
        kept[key] = value
        kept.move_to_end(key)
        while len(kept) > QUESTION_VECTORS:
            kept.popitem(last=False)

    @staticmethod
    def _model_key(embedder: Embedder) -> str:
        """The question model's identity in the kept vectors: a new model's vectors are other vectors."""
        return embedder.export.key if embedder.export is not None else f"sentence-transformers:{embedder.name}"

    def _reads_tokens(self, live: _Live) -> bool:
        """Whether answer choice's token match runs for this generation: it is on, the index stored its
        sentences' token vectors, and the question model can give the question's."""
        return (self.settings.token_match_weight > 0 and live.index.tokens is not None
                and getattr(live.embedder, "token_vectors", None) is not None)

    def _ask(self, live: _Live, text: str, earlier: tuple[str, ...], emergency: bool = False,
             situation: str | None = None) -> Result:
        index = live.index
        query, searched, expansions, focus_text = self._plan(text, earlier, situation)
        followup = query != text
        (vector, *focus), tokens = self._embed(live.embedder, [searched] + ([focus_text] if focus_text else []),
                                               text if self._reads_tokens(live) else None)
        similarities = example_similarities(index, vector)  # read by both the search and the answer choice
        hits = search(index, vector, content_terms(searched), self.settings, similarities)
        # A follow-up asks for something new ("why not?"): the answers this
        # conversation already gave are not answers to it.
        given = self._answers_given(live, earlier) if followup else frozenset()
        result = answer(index, text, query, vector, hits, self.settings, self.refusal, expansions,
                        focus[0] if focus else None, given, similarities, self.labels, emergency, tokens)
        with self._lock:  # remembered for the follow-ups to come
            if len(self._recent_answers) >= RECENT_ANSWERS:
                self._recent_answers.pop(next(iter(self._recent_answers)))  # the oldest
            self._recent_answers[(index.generation, text, earlier)] = result.answer_sentence or ""
        return result

    def wait_ready(self, timeout: float | None = None) -> None:
        """An engine made in this process answers at once (qa.serving.service.EngineProcess waits for its child)."""

    def forget(self, answers: bool = True, vectors: bool = True) -> None:
        """Drop the remembered answers of earlier turns and/or the kept question vectors (and plans): a
        benchmark then times a question as new."""
        with self._lock:
            if answers:
                self._recent_answers.clear()
            if vectors:
                self._vectors.clear()
                self._token_vectors.clear()
                self._plans.clear()

    def _answers_given(self, live: _Live, earlier: tuple[str, ...]) -> frozenset[str]:
        """The answer sentences the earlier questions got, each asked with the questions before it: the sentence
        answer choice chose, not a neighbour quoted with it (shown, like the context, as its support)."""
        given = set()
        for turn, question in enumerate(earlier):
            with self._lock:
                known = self._recent_answers.get((live.index.generation, question, earlier[:turn]))
            if known is None:  # not asked here, or forgotten: answer it again
                known = self._ask(live, question, earlier[:turn]).answer_sentence or ""
            if known:
                given.add(known)
        return frozenset(given)

    def _safe_history(self, history: Sequence[str]) -> list[str]:
        cleaned = []
        for item in list(history or [])[-self.settings.history_turns:]:
            try:
                item = clean_question(item, self.settings)
            except QuestionError:
                continue  # an earlier empty or oversized turn gives no topic
            if triage(item).searched:  # "hello" or a question in another language gives none either
                cleaned.append(item)
        return cleaned

    # ------------------------------------------------------------------ index

    def current_index(self) -> Index:
        """The live index, reloaded first if a build swapped in a new generation."""
        return self._current().index

    def _current(self) -> _Live:
        mtime = self._current_mtime()
        if mtime != self._pointer_mtime:
            with self._lock:
                if mtime != self._pointer_mtime:
                    try:
                        fresh = question_model.load(self.settings)
                        model = embedder_for(fresh, self.settings, self._live.embedder, self.base_embedder)
                        old, self._live = self._live.embedder, _Live(fresh, model)
                        if old is not model and (old is not self.base_embedder or self._owns_base):
                            old.unload()  # the model of the generation before (a question using it keeps it)
                    except (IndexError_, ModelError):
                        pass  # a broken new build: keep answering from the one we have
                    self._pointer_mtime = mtime
        return self._live

    def _current_mtime(self) -> float | None:
        try:
            return os.stat(self.settings.index_dir / index_store.CURRENT).st_mtime_ns
        except OSError:
            return None

    @property
    def index(self) -> Index:
        return self._live.index

    @property
    def embedder(self) -> Embedder:
        """The model that embeds questions for the live index."""
        return self._live.embedder

    def articles(self) -> list[ArticleInfo]:
        manifest = self.current_index().manifest
        titles = manifest["corpus"]["titles"]
        counts = manifest["counts"]["chunks_per_article"]
        return [ArticleInfo(source, titles[source], counts.get(source, 0)) for source in sorted(titles, key=titles.get)]

    def built_at(self) -> str:
        return self.current_index().manifest.get("built_at", "")

    def generation(self) -> str:
        """The name of the live index generation: a vote records which build answered (qa/feedback/store.py)."""
        return self.current_index().generation

    def stale_reason(self) -> str | None:
        return index_store.stale_reason(self.current_index().manifest, self.settings)

    def status(self) -> StartupStatus:
        """What answers now ("tuned" or "base" model) and, while a build runs in the background, its progress."""
        live = self._current()
        if self.startup is not None:
            return self.startup.status(live.index.manifest)
        return serving_status(live.index.manifest)
