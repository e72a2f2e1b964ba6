"""Stage 6: hits -> an answer: one sentence quoted from the articles, or a refusal.

Owns:
- follow-ups: a question that cannot stand alone ("why not?", "and the
  benefits?", "what about its side effects?") is searched together with the
  last earlier question that could, so its topic is restored; and since the
  restored topic matches the earlier answer best again, the sentences the
  conversation already got as answers are left out (the engine passes them);
- answer-sentence selection: every sentence of the best few passages competes;
  its score is its cosine similarity to the question, averaged over the
  sentence alone and the sentence read under its section heading (vectors
  made at build time: nothing is embedded per sentence at question time),
  plus its token match (how well its words in context answer the
  question's words that its passage's subject does not already name:
  qa/answering/token_match.py, from the question model's token vectors),
  minus how much of it only restates the question and its passage's subject
  (a sentence that says again what is asked about tells nothing new),
  minus, in an article without example questions, how much worse its
  section's heading fits the question than the best-fitting section of its
  article among the candidates (a page on one subject matches every question
  on it; its headings say which part is asked: `_with_heading_fit`),
  plus small bonuses for sharing the question's rarer words (idf-weighted)
  and for holding the kind of answer asked for (a number, a time, a reason;
  for "how long does it last" a duration, and not when something starts),
  and for answering an example question close to the question (the question
  bank, qa/models/question_bank.py),
  minus penalties for sentences that cannot be answers (questions, bare
  lead-ins, talk about the article itself) and for generic ones (close to
  the gist of their whole article); a follow-up's own words count
  beside its restored topic;
- what is quoted: the best sentence, with the sentence just before or after
  it in its paragraph run (qa.answering.context.neighbours) when that one
  scores within `answer_span_margin` of it: two adjacent sentences too close
  to call are one short passage of the article, and often the first only
  introduces what the second says ("The specific sites used vary in men and
  women." / "For women, the triceps, ..."); and with the next sentence when
  that one opens with a caveat ("However, more research is needed ..."): a
  claim is not quoted without the qualification the article puts after it;
- refusal: `found` is false when the article the answer comes from does
  not match the question well enough. The signals are gathered here
  (`Confidence`: that article's best sentence, its closest example
  question, how much of the question the answer's passage holds, how much
  of it the articles never use) and judged in qa/models/refusal.py, against how
  well unrelated questions match the same article. Then no passage is
  offered as an answer;
- what the result carries for a reader: the article's text around the
  answer (its whole list, the sentence it points back to: qa/answering/context.py),
  a plain label per passage ("strong match", "partial match", "weak
  match": `match_label`), and the triage of the question (an emergency
  line, small talk, not English: qa/answering/triage.py; the engine decides it).

Limits: extractive only; the answer is one verbatim sentence (with its
neighbour when the two score within `answer_span_margin` of each other: two
sentences next to each other in the article, quoted as they stand), never a
paraphrase or a summary of several. Follow-up detection is a rule on the
question's words, not a model of the dialogue. Refusal judges similarity,
not meaning: a question close to a topic the articles cover ("how long does
naloxone last?") can still be answered with a near miss.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from qa.answering.context import AnswerContext, answer_context, neighbours, opens_with_caveat
from qa.answering.result import MAY_HELP, PARTIAL, STRONG, WEAK, Passage, Result
from qa.indexing.index import Index
from qa.reading.chunking import Chunk
from qa.models.refusal import Agreement, Confidence, LabelBars, RefusalModel
from qa.answering.subject import article_terms, article_words, missing, missing_in_context, salient_terms, unnamed
from qa.answering.token_match import QuestionReading
from qa.models.onnx_model import TokenVectors
from qa.answering.search import Hit, example_lifts, example_scores_by_sentence, example_similarities
from qa.settings import Settings
from qa.answering.synonyms import Expansion
from qa.reading.text import ANAPHORA, content_terms, words

# Openings that mark a question as continuing the previous one.
_CONTINUATIONS = ("and ", "but ", "so ", "also ", "what about", "how about", "why", "what else", "how so",
                  "then ", "or ")


def is_followup(question: str) -> bool:
    """True when the question leans on an earlier one for its topic."""
    tokens = words(question)
    terms = content_terms(question)
    text = question.strip().lower()
    if len(terms) <= 1:
        return True  # "why not?", "and the benefits?", "how long?"
    if any(text.startswith(c) for c in _CONTINUATIONS) and len(terms) <= 3:
        return True
    return any(t in ANAPHORA for t in tokens) and len(terms) <= 3


def resolve_query(question: str, history: list[str] | tuple[str, ...], settings: Settings) -> str:
    """The text to search: the question, preceded by its topic when it is a follow-up."""
    question = question.strip()
    if not history or not is_followup(question):
        return question
    recent = [h.strip() for h in list(history)[-settings.history_turns:] if h and h.strip()]
    # The newest earlier question that stands on its own carries the topic;
    # follow-ups asked since then are kept too ("why?" after "and for opioids?").
    for position in range(len(recent) - 1, -1, -1):
        if not is_followup(recent[position]):
            return " ".join(recent[position:] + [question])
    return " ".join(recent + [question])


def answer(index: Index, question: str, query: str, query_vector: np.ndarray, hits: list[Hit],
           settings: Settings, refusal: RefusalModel, expansions: Sequence[Expansion] = (),
           focus_vector: np.ndarray | None = None, already_given: frozenset[str] = frozenset(),
           similarities: np.ndarray | None = None, labels: LabelBars | None = None,
           emergency: bool = False, question_tokens: TokenVectors | None = None) -> Result:
    """Pick the answer sentence among the top hits, or decide the articles do not answer.

    `hits`: every candidate passage, best first (qa.answering.search.search); the first `top_k` are shown.
    `refusal`: the fitted refusal model (qa/models/refusal.py), read against the index's background statistics.
    `expansions`: the articles' words the synonyms added to the query (qa/answering/synonyms.py); they count
    as words of the question, and a typed word they translate is not unknown to the articles.
    `already_given`: sentences the conversation already had as answers; a follow-up gets another one.
    `similarities`: qa.answering.search.example_similarities of `query_vector` (the search's), computed here if not given.
    `labels`: the fitted bars of the labels (qa/models/refusal.py, LabelBars); None: Settings.strong_match_margin,
    and no "may help". `emergency`: the question sounds like one; the closest passage is then offered
    whenever it shares a word with the question, never a bare refusal.
    `question_tokens`: the question's token vectors (qa.models.onnx_model.TokenVectors, from the forward pass
    that embedded it), read against the sentences' and subjects' the index stored at build time; None (a
    stand-in model without them), or an index built before it stored them: no token match.
    """
    added = [term for e in expansions for t in e.adds for term in content_terms(t)]
    query_terms = set(content_terms(query)) | set(added)
    # Each question word weighs its idf; a word the articles never use weighs like the rarest one they do.
    rarest = index.max_idf
    weights = {t: index.idf.get(t, rarest) for t in query_terms}
    wanted = answer_type(question)
    if similarities is None:
        similarities = example_similarities(index, query_vector)
    examples = example_scores_by_sentence(index, similarities)
    if focus_vector is not None:  # a follow-up: its own words count here too, as for the sentences
        own = example_scores_by_sentence(index, example_similarities(index, focus_vector))
        examples = (1 - settings.followup_focus) * examples + settings.followup_focus * own
    best: tuple[float, float, int, str] | None = None  # (score, cosine, hit position, sentence)
    competing: list[tuple[float, float, int, int, str]] = []  # (score without examples, cosine, position, id, text)
    for position, hit in enumerate(hits[:settings.answer_passages]):
        ids = index.chunk_sentence_ids[hit.chunk]
        if not ids:
            continue
        cosines = index.answer_vectors[ids] @ query_vector
        if focus_vector is not None:
            focus = index.answer_vectors[ids] @ focus_vector
            cosines = (1 - settings.followup_focus) * cosines + settings.followup_focus * focus
        for sentence_id, cosine in zip(ids, cosines):
            sentence = index.sentences[sentence_id]
            if sentence in already_given:
                continue
            score = (float(cosine) + _shape_bonus(sentence, weights, settings)
                     + _type_bonus(sentence, wanted, settings) - settings.rank_penalty * position
                     - settings.generic_penalty * float(index.genericness[sentence_id]))
            competing.append((score, float(cosine), position, sentence_id, sentence))
    # The question's token vectors against the index's, read once for the token match, the heading fit, the
    # agreement and refusal.
    reading = None if question_tokens is None or index.tokens is None else QuestionReading(question_tokens, index)
    competing, matches = _with_token_match(hits, competing, settings, reading)
    competing = _with_heading_fit(index, hits, competing, settings, reading)
    # Example questions rank an article's sentences, and lift the article only as qa.answering.search.example_lifts allows.
    lifts = example_lifts([float(examples[c[3]]) for c in competing], [c[1] for c in competing],
                          [index.chunks[hits[c[2]].chunk].source for c in competing], index.articles_with_examples,
                          settings.example_lift_cap)
    finals: list[float] = []  # each candidate's final score, in the order of `competing`
    scores: dict[str, float] = {}  # the best final score of each text: the answer's neighbours are read here
    for (score, cosine, position, _, sentence), lift in zip(competing, lifts):
        score += settings.example_answer_weight * lift
        finals.append(score)
        scores[sentence] = max(score, scores.get(sentence, score))
        if best is None or score > best[0]:
            best = (score, cosine, position, sentence)

    confidence, found, margin, agreement = None, False, 0.0, None
    if best is not None:
        agreement = _agreement(index, hits, competing, finals, matches, best, reading)
        confidence = _confidence(index, question, hits, hits[best[2]], examples, expansions, weights,
                                 settings, reading)
        found, margin = refusal.decide(confidence, index.background)

    regime = confidence.regime if confidence is not None else "plain"
    # A "strong match" also needs the answer's article to name what the question is about (qa/answering/subject.py).
    subject = confidence.subject if confidence is not None else 0.0
    strong = (labels.is_strong(regime, margin, best[1], subject, settings.strong_match_subject, agreement)
              if labels is not None and best is not None
              else margin >= settings.strong_match_margin and subject <= settings.strong_match_subject)
    may_help = not found and best is not None and (
        (labels is not None and margin >= labels.may_help[regime])
        or (emergency and hits[0].lexical > 0))
    passages = []
    answer_source = None
    best_score = hits[0].score if hits else 0.0
    for position, hit in enumerate(hits[:settings.top_k]):
        chunk = index.chunks[hit.chunk]
        in_passage = best[3] if found and best and best[3] in chunk.sentences else None
        holds_answer = found and best is not None and position == best[2]
        label = match_label(found, holds_answer, margin, hit.score, best_score, settings, strong)
        if may_help and (position == 0 or (not emergency and best_score > 0
                                           and hit.score >= settings.partial_match_share * best_score)):
            label = MAY_HELP
        # A passage of several short sections names, as the answer's source, the answer's own section.
        section = chunk.section_of(best[3]) if holds_answer else chunk.section
        passage = Passage(chunk.source, chunk.title, section, chunk.text, hit.score, hit.dense,
                          hit.lexical, in_passage, label)
        if holds_answer:
            answer_source = passage
        passages.append(passage)
    context, quoted = AnswerContext(), ()
    if found and best is not None:
        quoted = _quoted(index.chunks[hits[best[2]].chunk], best[3], best[0], scores, settings)
        context = answer_context(index.chunks, hits[best[2]].chunk, best[3])
        if context.before is not None and context.before in quoted:  # the sentence it points back to is quoted
            context = AnswerContext()
    return Result(question=question, query=query, found=found,
                  answer=" ".join(quoted) if quoted else None, answer_sentences=quoted,
                  answer_sentence=best[3] if quoted else None, answer_source=answer_source,
                  answer_score=best[1] if best else 0.0, passages=tuple(passages), expansions=tuple(expansions),
                  confidence=confidence, margin=margin, context=context, may_help=may_help, agreement=agreement)


def _agreement(index: Index, hits: list[Hit], competing: list, finals: list[float], matches: dict[int, float],
               best: tuple[float, float, int, str], reading: QuestionReading | None) -> Agreement:
    """How far independent signals agree on the answer (qa.models.refusal.Agreement): what the "strong match"
    label may read besides refusal's margin. `finals`: each candidate's final score; `matches`: the token
    match of the candidates it was computed for."""
    score, _, position, sentence = best
    heading = 0.0
    if reading is not None:
        # The answer's section heading against the other sections of its article among the candidates: a page
        # on one subject matches every question on it, and its sections' headings say which part is asked.
        chosen_chunk = index.chunks[hits[position].chunk]
        mine = [hit for hit in hits if index.chunks[hit.chunk].source == chosen_chunk.source]
        fits = {}
        for hit, fit in zip(mine, _heading_fits(index, mine, reading).values()):
            fits.setdefault(index.chunks[hit.chunk].section, fit)
        others = [v for section, v in fits.items() if section != chosen_chunk.section]
        heading = fits[chosen_chunk.section] - max(others) if others else 0.0
    others = [f for c, f in zip(competing, finals) if c[2] != position]
    chosen = hits[position]
    match = next((matches[i] for i, c in enumerate(competing) if c[4] == sentence and c[2] == position
                  and i in matches), 0.0)
    return Agreement(lead=score - max(others) if others else score,
                     dense_first=chosen.dense >= max(h.dense for h in hits),
                     lexical_first=chosen.lexical >= max(h.lexical for h in hits),
                     token_match=float(match), heading=float(heading))


def _quoted(chunk: Chunk, sentence: str, score: float, scores: dict[str, float],
            settings: Settings) -> tuple[str, ...]:
    """The sentences quoted as the answer, in the article's order: `sentence` (the best, scoring `score`), with
    the neighbour (qa.answering.context.neighbours) whose score in `scores` is within `answer_span_margin` of
    it, the closer of two; else with the next sentence when it opens with a caveat (`answer_keeps_caveat`);
    always within `answer_span_chars` for the two together."""
    if settings.answer_span_margin <= 0 and not settings.answer_keeps_caveat:
        return (sentence,)
    before, after = neighbours(chunk, sentence)
    fits = [other for other in (before, after)
            if other is not None and len(sentence) + 1 + len(other) <= settings.answer_span_chars
            and _can_be_quoted(other, settings)]
    close = [(scores[other], other) for other in fits
             if settings.answer_span_margin > 0 and other in scores
             and score - scores[other] <= settings.answer_span_margin]
    if close:
        other = max(close)[1]
        return (other, sentence) if other == before else (sentence, other)
    if settings.answer_keeps_caveat and after in fits and opens_with_caveat(after):
        return (sentence, after)
    return (sentence,)


def _can_be_quoted(sentence: str, settings: Settings) -> bool:
    """Whether a neighbour may join an answer: not a sentence answer choice penalises as no answer of its own
    (a question, a bare lead-in or fragment, talk about the article: _no_answer_shapes), whatever its score."""
    return not any(_no_answer_shapes(sentence, settings))


def _with_token_match(hits: list[Hit], competing: list, settings: Settings,
                      reading: QuestionReading | None) -> list:
    """`competing` with the token match (qa/answering/token_match.py) added to the scores of the best
    `token_match_candidates` of them: a rerank of the few that can win (10 chose the same answers as all).
    Before that choice, every candidate loses `restatement_penalty` x how much of it restates the question
    and its passage's subject (token_match.restatement). `reading`: the question's token vectors against the
    index's (its candidates' and their passages' subjects', stored at build time); None: no token match.
    Also returned: each rescored candidate's token match (by its position in `competing`)."""
    if reading is None or settings.token_match_weight == 0 or not competing:
        return competing, {}
    if settings.restatement_penalty:
        said = [0.0] * len(competing)
        for position, members in _by_passage(competing, range(len(competing))).items():
            values = reading.restatements(hits[position].chunk, [competing[i][3] for i in members])
            for i, value in zip(members, values):
                said[i] = value
        competing = [(c[0] - settings.restatement_penalty * value, *c[1:]) for c, value in zip(competing, said)]
    chosen = sorted(range(len(competing)), key=lambda i: -competing[i][0])[:settings.token_match_candidates]
    rescored, matched = list(competing), {}
    for position, members in _by_passage(competing, chosen).items():
        matches = reading.token_matches(hits[position].chunk, [competing[i][3] for i in members],
                                        settings.token_match_focus)
        for i, match in zip(members, matches):
            score, *rest = competing[i]
            rescored[i] = (score + settings.token_match_weight * match, *rest)
            matched[i] = float(match)
    return rescored, matched


def _heading_fits(index: Index, hits: list[Hit], reading: QuestionReading) -> dict[int, float]:
    """How well each hit's section heading (with its article's title: the passage's subject, whose token vectors
    the build stored) fits the question, by the hit's position: late interaction (qa/answering/token_match.py)
    with the question's idf weights. Passages of one section share their subject, read once."""
    by_subject: dict[tuple[str, str], float] = {}
    fits = {}
    for position, hit in enumerate(hits):
        chunk = index.chunks[hit.chunk]
        key = (chunk.source, chunk.section)
        if key not in by_subject:
            by_subject[key] = reading.headings(chunk.source, [hit.chunk])[0]
        fits[position] = by_subject[key]
    return fits


def _with_heading_fit(index: Index, hits: list[Hit], competing: list, settings: Settings,
                      reading: QuestionReading | None) -> list:
    """`competing` with each candidate of an article without example questions lowered by `heading_fit_weight` x
    how much worse its section's heading fits the question than the best-fitting section of its article among
    the candidates' passages (_heading_fits): a page on one subject matches every question on it, and its
    headings ("Outlook", "Prevention", "Inheritance") say which part is asked. Never raised: the best-fitting
    section of each article keeps its score, so the heading decides between the sections of one article, not
    between two articles. An article with example questions is left alone: its examples, written for its
    sections, already steer which one answers (qa.answering.search.example_lifts). An article of one section
    among the candidates (SQuAD's paragraphs under their title), a stand-in model without token vectors or an
    index built before them: unchanged."""
    if reading is None or settings.heading_fit_weight == 0 or not competing or len(reading.question.vectors) == 0:
        return competing
    plain = sorted({c[2] for c in competing
                    if index.chunks[hits[c[2]].chunk].source not in index.articles_with_examples})
    fits = dict(zip(plain, _heading_fits(index, [hits[p] for p in plain], reading).values()))
    best: dict[str, float] = {}
    sections: dict[str, set[str]] = {}
    for position, fit in fits.items():
        chunk = index.chunks[hits[position].chunk]
        best[chunk.source] = max(fit, best.get(chunk.source, fit))
        sections.setdefault(chunk.source, set()).add(chunk.section)
    rescored = []
    for c in competing:
        source = index.chunks[hits[c[2]].chunk].source
        if c[2] in fits and len(sections[source]) > 1:
            c = (c[0] - settings.heading_fit_weight * (best[source] - fits[c[2]]), *c[1:])
        rescored.append(c)
    return rescored


def _by_passage(competing: list, which) -> dict[int, list[int]]:
    """The candidates `which` (positions in `competing`) grouped by their passage (its position among the hits),
    in order: their passage's subject is read once for all of them."""
    grouped: dict[int, list[int]] = {}
    for i in which:
        grouped.setdefault(competing[i][2], []).append(i)
    return grouped


def match_label(found: bool, holds_answer: bool, margin: float, score: float, best_score: float,
                settings: Settings, strong: bool | None = None) -> str:
    """How well a passage matches the question, in words a lay reader understands.

    - the passage the answer is quoted from: STRONG when `strong` (the fitted bars of qa/fitted/labels.json:
      refusal's margin and the answer's cosine) or, when not given, when refusal's margin over its bar
      reaches `strong_match_margin` (the articles clearly answer), else PARTIAL (answered, but near the bar:
      the articles may answer only part of the question);
    - any other passage: PARTIAL when its rank score is within `partial_match_share` of the best
      passage's (close to the best, it often holds part of the answer), else WEAK;
    - when the articles do not answer the question, every passage is WEAK.
    """
    if not found:
        return WEAK
    if holds_answer:
        return STRONG if (margin >= settings.strong_match_margin if strong is None else strong) else PARTIAL
    return PARTIAL if best_score > 0 and score >= settings.partial_match_share * best_score else WEAK


def _confidence(index: Index, question: str, hits: list[Hit], chosen: Hit, examples: np.ndarray,
                expansions: Sequence[Expansion], weights: dict[str, float], settings: Settings,
                reading: QuestionReading | None = None) -> Confidence:
    """What refusal weighs, from the candidates of the article the answer comes from.

    `weights`: the searched words (the question's, with a follow-up's topic and the synonyms' additions)
    and their idf, as answer choice weighs them.

    Only that article's passages and example questions count: another article's
    example question, however close, does not vouch for this answer.
    """
    article = index.chunks[chosen.chunk].source
    mine = [hit for hit in hits if index.chunks[hit.chunk].source == article]
    sentences = index.article_sentences.get(article, np.zeros(0, dtype=np.int64))
    translated = {term for e in expansions if any(t in index.vocabulary for t in content_terms(" ".join(e.adds)))
                  for term in content_terms(e.typed)}
    terms = content_terms(question)
    total = sum(index.idf.get(t, index.max_idf) for t in terms)
    unknown = sum(index.max_idf for t in terms if t not in index.vocabulary and t not in translated)
    held = _terms(index.chunks[chosen.chunk].index_text)
    searched = sum(weights.values())
    coverage = sum(w for t, w in weights.items() if t in held) / searched if searched else 0.0
    others = [hit.sentence for hit in hits if index.chunks[hit.chunk].source != article]
    best = max(hit.sentence for hit in mine)
    # The subject words the synonyms translated into the article's words are the article's too.
    held = article_terms(index.chunks, article) | translated
    if reading is not None:
        shown = [hit.chunk for hit in mine[:settings.answer_passages]]
        # Each question piece's closest piece in the answer's passages: read only when a word is not held.
        subject = missing_in_context(reading.question, settings.subject_common_rank, held,
                                     lambda: reading.closest(shown))
    else:
        subject = missing(salient_terms(question, settings.subject_common_rank), held)
    contrast = best - max(others) if others else 0.0
    # Refusal's gate: a specific name the article lacks, read where the article does not stand out (qa/models/refusal.py).
    standing_out = min(1.0, max(0.0, 1.0 - contrast / settings.unnamed_contrast))
    name = standing_out * unnamed(question, held, article_words(index.chunks, article), settings.subject_common_rank,
                                  settings.unnamed_min_salience) if standing_out > 0 else 0.0
    return Confidence(article=article, sentence=best, contrast=contrast,
                      example=float(examples[sentences].max(initial=0.0)), coverage=coverage,
                      unknown=unknown / total if total else 0.0,
                      has_examples=article in index.articles_with_examples, subject=subject, unnamed=name)


def _shape_bonus(sentence: str, weights: dict[str, float], settings: Settings) -> float:
    """Small nudges on top of cosine similarity; `weights`: the question's words and their idf."""
    bonus = 0.0
    terms = _terms(sentence)
    total = sum(weights.values())
    if total > 0:
        bonus += settings.overlap_weight * sum(weights[t] for t in terms & weights.keys()) / total
    question, fragment, about_the_article = _no_answer_shapes(sentence, settings)
    return (bonus - settings.question_penalty * question - settings.fragment_penalty * fragment
            - settings.meta_penalty * about_the_article)


def _no_answer_shapes(sentence: str, settings: Settings) -> tuple[bool, bool, bool]:
    """The shapes of a sentence that is no answer of its own: (a question, which restated is not its answer; a
    lead-in or a fragment, which says too little on its own; talk about the article itself)."""
    stripped = sentence.rstrip()
    return (stripped.endswith("?"), stripped.endswith(":") or len(_terms(sentence)) < settings.fragment_terms,
            _about_the_article(sentence))


# Sentences about the article rather than its topic ("In this article, we
# will explore ...", "Read on as we examine ...", "In summary, ..."): they echo
# the words of every question on the topic and answer none of them.
_META = re.compile(r"\b(?:(?:this|our) (?:article|post|guide|blog|page)|we will|we'll|let's|let us|read on|"
                   r"in summary|to summari[sz]e|in conclusion|to conclude|many people (?:are|wonder|ask)|"
                   r"curious about)\b", re.IGNORECASE)

# What kind of answer a question asks for, by its wording, and how a sentence
# shows it has one: the classic answer-type check of extractive QA.
_AMOUNT_OF_TIME = (r"\b(?:\d+|a few|several|one|two|three|four|five|six|ten|hours?|days?|weeks?|months?|years?|"
                   r"minutes?)\s*(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?)\b")
# When something begins ("kicks in within minutes") does not say how long it lasts, and back.
_ONSET_WORDS = r"\bwithin\b|\b(?:begins?|starts?|onset|emerges?|kicks? in|appears?|takes? effect)\b"
_LASTING_WORDS = (r"\blasts\b|\blasting\b|\blast (?:for|up to|about|around|between|from|only|longer|\d)|\bpersists?\b|\bremains?\b|\bfor up to\b|\bshort-lived\b|\blong-lasting\b|"
                  r"\bwears? off\b|\bhalf-life\b|\bduration\b")
_ANSWER_TYPES = (
    ("onset", re.compile(r"\bhow (?:soon|quickly|fast)\b|\bhow long (?:until|till|before|after|does it take|"
                         r"do they take|will it take)\b|\bhow much time (?:until|before)\b", re.I),
     re.compile(_ONSET_WORDS + "|" + _AMOUNT_OF_TIME, re.I)),
    ("duration", re.compile(r"\bhow long\b|\bhow much time\b", re.I),
     re.compile(_LASTING_WORDS + "|" + _AMOUNT_OF_TIME, re.I)),
    ("number", re.compile(r"\bhow (?:many|much|often)\b|\bwhat (?:dose|dosage|amount|percentage|number)\b", re.I),
     re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|dozens?|hundreds?|thousands?|"
                r"several|once|twice)\b", re.I)),
    ("time", re.compile(r"\bwhen\b|\bwhat year\b", re.I),
     re.compile(r"\b(?:1[89]|20)\d\d\b|\b(?:decades?|century|since|after|before|during|within)\b", re.I)),
    ("reason", re.compile(r"\bwhy\b|\bhow come\b|\bwhat causes\b", re.I),
     re.compile(r"\b(?:because|due to|since|as a result|therefore|so that|which is why|primarily|"
                r"mechanism|targets?|acts? on|leads? to|causes?)\b", re.I)),
)
# A sentence that speaks only of the other side of a time question answers it wrongly, whatever
# amount of time it names: (the other side's words, this side's words).
_CONTRARY = {"duration": (re.compile(_ONSET_WORDS, re.I), re.compile(_LASTING_WORDS, re.I)),
             "onset": (re.compile(_LASTING_WORDS, re.I), re.compile(_ONSET_WORDS, re.I))}


def answer_type(question: str) -> str | None:
    """'onset', 'duration', 'number', 'time', 'reason' or None, from the question's wording."""
    for name, asks, _ in _ANSWER_TYPES:
        if asks.search(question):
            return name
    return None


def _type_bonus(sentence: str, wanted: str | None, settings: Settings) -> float:
    if wanted is None:
        return 0.0
    if wanted in _CONTRARY:
        other_side, this_side = _CONTRARY[wanted]
        if other_side.search(sentence) and not this_side.search(sentence):
            return -settings.answer_type_bonus
    shows = next(has for name, _, has in _ANSWER_TYPES if name == wanted)
    return settings.answer_type_bonus if shows.search(sentence) else 0.0


__all__ = ["answer", "resolve_query", "is_followup", "match_label"]


@lru_cache(maxsize=65536)
def _terms(sentence: str) -> frozenset[str]:
    """Content terms of a corpus sentence; cached because the same sentences recur across questions."""
    return frozenset(content_terms(sentence))


@lru_cache(maxsize=65536)
def _about_the_article(sentence: str) -> bool:
    """_META's verdict on a corpus sentence; cached, as _terms is: the same sentences recur across questions."""
    return _META.search(sentence) is not None
