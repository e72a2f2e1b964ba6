"""Retrieval question answering over a folder of health articles.

Data flows one way: corpus.py reads the articles, chunking.py cuts them into
passages, embedding.py (through onnx_model.py, or sentence-transformers at
build time) turns texts into vectors, build.py writes an index generation
that index.py keeps on disk, search.py ranks its passages for a question,
answer.py picks the one sentence that answers it or refuses (refusal.py).
engine.py ties them together for callers (`Engine.open`, `engine.ask`);
the chat page runs it in a process of its own (service.py, startup.py);
cli.py and app.py are the edges that turn errors into messages.

Modules (generated from each module's docstring: python tests/test_layers.py --write):

    answer.py          Stage 6: hits -> an answer: one sentence quoted from the articles, or a refusal.
    article.py         What an article is, whatever file it came from, and the rules every reader shares.
    backends.py        Which backend keeps an index's vector stores: the one place it is chosen, by `Settings.store`.
    benchmark.py       Quality on corpora the engine was not tuned on: a SQuAD-format benchmark, built with the product's own build.
    build.py           Stage 4, the build: corpus -> chunks -> vectors -> a new live index generation.
    calibration.py     Refusal and the labels fitted on the calibration suite, leave one corpus out.
    chat.py            The chat page's conversation, without the page: a message in, the reply's HTML out; votes on replies.
    child.py           Child processes that talk to their parent over a socket pair and die with it.
    chunking.py        Stage 2: articles -> chunks, the passages that are embedded and searched.
    cli.py             The command line: `python -m qa build | ask | eval`.
    context.py         What a reply shows around its answer sentence, so the quote can be read on its own.
    corpus.py          Stage 1: the corpus folder -> clean, structured articles.
    embedding.py       Stage 3: texts -> unit-length vectors, with one embedding model.
    engine.py          The library's front door: load the model and index once, then answer questions.
    errors.py          The errors the library raises, and nothing else.
    evaluate.py        Quality, measured: the engine and two baselines on a labelled question set.
    export.py          Build time: a sentence-transformers model -> its ONNX export, made once per model, checked, kept by key.
    features.py        What the answer stage needs computed from an index's vectors and tables.
    feedback.py        What the people who use the chat page tell us: votes on replies, and the questions left unanswered.
    files.py           Files, one helper per job: content hashes, and a keyed folder written whole or not at all.
    formats/html.py    Reader of saved web pages (`.html`, `.htm`), as a browser saves them.
    formats/pdf.py     Reader of PDF articles (`.pdf`), through pypdf's text layer.
    formats/text.py    Reader of plain text (`.txt`) and Markdown (`.md`) articles.
    http_api.py        Plain HTTP routes on the chat page's port, for scripts and other services: `POST /api/ask`.
    index.py           Stage 4, the store: an index generation on disk, and loading it back.
    milvus_store.py    The Milvus backend of the retrieval stores (qa/stores.py): one collection per index generation.
    onnx_model.py      A sentence-transformers model's ONNX export, run with onnxruntime + tokenizers: the question path.
    page.py            What the chat page says about its own corpus: its title, the line under it, its example questions.
    question_bank.py   Example questions for the articles' sentences: a question bank (doc2query, written offline).
    question_model.py  Which model embeds an index's questions, and how it runs: decided here, once.
    refusal.py         Refusal: do these articles answer the question at all? Judged against unrelated questions.
    render.py          The reply a person sees, as HTML: pure functions from the engine's objects to markup.
    review.py          The maintainer's side of feedback: the report, and turning feedback into example questions.
    search.py          Stage 5: a question -> ranked passages (hits), by hybrid retrieval.
    service.py         The engine in a process of its own, for the chat page.
    serving.py         What a page asks of an engine: the `AnswersQuestions` interface, and the article list it returns.
    settings.py        Every tunable number of the product, in one frozen dataclass.
    startup.py         Start-up of the serving engine: answer as soon as an index exists, build the rest in the background.
    status.py          What the serving engine says about its start-up: `StartupStatus`, its stages, and their words.
    stores.py          The retrieval stores: where a question's nearest passages, sentences and example questions, and its BM25 scores, are looked up. Two backends behind one small interface, chosen in one place.
    suite.py           The calibration suite: corpora in different styles, each fresh and grown, engine and baselines in one run.
    synonyms.py        Query expansion: the words people type -> the words the articles use.
    text.py            Small text tools shared by the stages: sentence splitting and word tokens.
    triage.py          Triage: what kind of message a question is, before and beside its answer.
    tuning.py          Stage 3a: the question bank -> a copy of the embedding model fine-tuned on it.

(end of the generated list)
"""

import os as _os

# torch's OpenMP threads spin while they wait for each other; when another process holds one of the
# two cores, a spinning pair collapses (docs/BENCHMARKS.md, fine-tuning under load). Waiting
# threads that sleep keep two threads at least as fast as one. Read when torch loads its OpenMP
# library, so it is set here, before any stage imports torch; the results are the same either way.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# glibc keeps the memory a process frees for its own later use, and raises the size above which it
# hands big blocks back to the system as it sees big blocks freed. Fine-tuning frees tensors of every
# size at every step, so a build process held on to most of what any step had used (docs/BENCHMARKS.md,
# memory while the tuned model is prepared). Fixing both thresholds at glibc's own defaults keeps
# its usual behaviour for small blocks and returns big ones as they are freed.
_GLIBC_DEFAULT_THRESHOLD = 128 * 1024  # bytes: glibc's documented default for both
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
try:
    import ctypes as _ctypes

    _libc = _ctypes.CDLL("libc.so.6")
    _libc.mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT_THRESHOLD)
    _libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT_THRESHOLD)
except (OSError, AttributeError):  # not glibc: its own allocator's behaviour stands
    pass
