"""Retrieval question answering over a folder of health articles.

The folder tree is the pipeline. Data flows one way, through the layers in
`LAYERS`' order: a module imports only from its own layer, the layers before
it, and the foundations (tests/test_layers.py checks it, and that no import
closes a cycle):

    reading/     corpus folder -> articles -> passages
    models/      texts -> vectors (the embedding model, its export and tuning); the refusal model
    indexing/    passages + vectors -> an index generation on disk, loaded back
    answering/   question + index -> hits -> one quoted sentence, or a refusal
    feedback/    votes and unanswered questions from the page, and their review
    serving/     the engine (`Engine.open`, `engine.ask`), in this process or its own, and the page's side
    evaluation/  the engine and baselines measured on question sets and benchmarks

Below every layer, the foundations: settings.py, errors.py, files.py. On top,
the edges, where errors become messages: cli.py (`python -m qa`) and app.py.

Modules (generated from each module's docstring: python tests/test_layers.py --write):

    cli.py                        The command line: `python -m qa build | ask | eval`.
    errors.py                     The errors the library raises, and nothing else.
    files.py                      Files, one helper per job: content hashes, and a keyed folder written whole or not at all.
    settings.py                   Every tunable number of the product, in one frozen dataclass.
    reading/                      Reading: the corpus folder -> structured articles -> passages (stages 1 and 2).
    reading/article.py            What an article is, whatever file it came from, and the rules every reader shares.
    reading/chunking.py           Stage 2: articles -> chunks, the passages that are embedded and searched.
    reading/corpus.py             Stage 1: the corpus folder -> clean, structured articles.
    reading/formats/html.py       Reader of saved web pages (`.html`, `.htm`), as a browser saves them.
    reading/formats/pdf.py        Reader of PDF articles (`.pdf`), through pypdf's text layer.
    reading/formats/text.py       Reader of plain text (`.txt`) and Markdown (`.md`) articles.
    reading/text.py               Small text tools shared by the stages: sentence splitting and word tokens.
    models/                       Models: what turns texts into vectors and signals into a refusal (stage 3).
    models/background_vectors.py  The packaged model's vectors of the background questions, computed once and shipped in qa/fitted/.
    models/bert_graph.py          Build time: a plain BERT sentence model's weights -> its ONNX graph, written directly, without torch.
    models/embedding.py           Stage 3: texts -> unit-length vectors, with one embedding model.
    models/export.py              Build time: a sentence-transformers model -> its ONNX export, made once per model, checked, kept by key.
    models/onnx_model.py          A sentence-transformers model's ONNX export, run with onnxruntime + tokenizers: the question path.
    models/plain_model.py         Build time: a sentence-transformers model of the plain layout, run with transformers alone.
    models/preparation.py         Build time: a tuned model trained and exported in a process of its own, which leaves before the build embeds.
    models/question_bank.py       Example questions for the articles' sentences: a question bank (doc2query, written offline).
    models/reference.py           Torch's vectors of the sample texts for the packaged model, computed once and shipped in qa/fitted/.
    models/refusal.py             Refusal: do these articles answer the question at all? Judged against unrelated questions.
    models/tuning.py              Stage 3a: the question bank -> a copy of the embedding model fine-tuned on it.
    indexing/                     Indexing: articles and models -> an index generation on disk, and loading it back (stage 4).
    indexing/backends.py          Which backend keeps an index's vector stores: the one place it is chosen, by `Settings.store`.
    indexing/build.py             Stage 4, the build: corpus -> chunks -> vectors -> a new live index generation.
    indexing/features.py          What the answer stage needs computed from an index's vectors and tables.
    indexing/index.py             Stage 4, the store: an index generation on disk, and loading it back.
    indexing/milvus_store.py      The Milvus backend of the retrieval stores (qa/indexing/stores.py): one collection per index generation.
    indexing/question_model.py    Which model embeds an index's questions, and how it runs: decided here, once.
    indexing/stores.py            The retrieval stores: where a question's nearest passages, sentences and example questions, and its BM25 scores, are looked up. Two backends behind one small interface, chosen in one place.
    answering/                    Answering: a question and a loaded index -> hits -> the answer sentence or a refusal (stages 5 and 6).
    answering/answer.py           Stage 6: hits -> an answer: one sentence quoted from the articles, or a refusal.
    answering/context.py          What a reply shows around its answer sentence, so the quote can be read on its own.
    answering/result.py           What an answer is, as its readers get it: `Result` and its `Passage`s, the messages shown instead of an answer, and the plain match labels.
    answering/search.py           Stage 5: a question -> ranked passages (hits), by hybrid retrieval.
    answering/subject.py          Subject coverage: does the answer's article name what the question is about?
    answering/synonyms.py         Query expansion: the words people type -> the words the articles use.
    answering/token_match.py      Answer choice's token match: does a sentence hold what the question asks beyond its passage's subject?
    answering/triage.py           Triage: what kind of message a question is, before and beside its answer.
    feedback/                     Feedback: what people tell the page (votes, unanswered questions), and the maintainer's review of it.
    feedback/review.py            The maintainer's side of feedback: the report, and turning feedback into example questions.
    feedback/store.py             What the people who use the chat page tell us: votes on replies, and the questions left unanswered.
    serving/                      Serving: an engine that answers, and the ways people and scripts reach it.
    serving/chat.py               The chat page's conversation, without the page: a message in, the reply's HTML out; votes on replies.
    serving/child.py              Child processes that talk to their parent over a socket pair and die with it.
    serving/engine.py             The library's front door: load the model and index once, then answer questions.
    serving/gradio_startup.py     The page process's start-up without the work gradio does for other people's pages.
    serving/http_api.py           Plain HTTP routes on the chat page's port, for scripts and other services: `POST /api/ask`.
    serving/interface.py          What a page asks of an engine: the `AnswersQuestions` interface, and the article list it returns.
    serving/jsonl.py              `python -m qa ask --jsonl`: a stream of JSON question lines in, one JSON answer line per question out.
    serving/page.py               What the chat page says about its own corpus: its title, the line under it, its example questions.
    serving/render.py             The reply a person sees, as HTML: pure functions from the engine's objects to markup.
    serving/server_log.py         The page server's log: one line per start-up stage, and one line per rejected request.
    serving/service.py            The engine in a process of its own, for the chat page.
    serving/startup.py            Start-up of the serving engine: answer as soon as an index exists, build the rest in the background.
    serving/status.py             What the serving engine says about its start-up: `StartupStatus`, its stages, and their words.
    evaluation/                   Evaluation: the engine measured against baselines on labelled questions and on benchmarks.
    evaluation/benchmark.py       Quality on corpora the engine was not tuned on: a SQuAD-format benchmark, built with the product's own build.
    evaluation/calibration.py     Refusal and the labels fitted on the calibration suite, leave one corpus out.
    evaluation/evaluate.py        Quality, measured: the engine and two baselines on a labelled question set.
    evaluation/suite.py           The calibration suite: corpora in different styles, each fresh and grown, engine and baselines in one run.

(end of the generated list)
"""

import os as _os

# The one statement of the layers' order (tests/test_layers.py holds every import to it).
LAYERS = ("reading", "models", "indexing", "answering", "feedback", "serving", "evaluation")
FOUNDATIONS = ("settings", "errors", "files")  # importable from every layer; they import only each other
EDGES = ("cli", "__main__")  # above every layer; nothing in qa/ imports them

# torch's OpenMP threads spin while they wait for each other; when another process holds one of the
# two cores, a spinning pair collapses (docs/BENCHMARKS.md, fine-tuning under load). Waiting
# threads that sleep keep two threads at least as fast as one. Read when torch loads its OpenMP
# library, so it is set here, before any stage imports torch; the results are the same either way.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# numpy's OpenBLAS splits a matrix product over threads of its own that spin while they wait: for
# answering's small products (a question against a few hundred rows) the hand-over costs more than the
# product, most of all beside another question or onnxruntime on the other core (docs/BENCHMARKS.md,
# latency). Each product on the thread that asks it; read when numpy loads, so set before any import.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

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
