"""What a reply shows around its answer (qa/answering/context.py, qa/answering/triage.py in the engine, match labels).

The context rules run on real chunking of small articles written here (no
model needed); the engine tests run the real engine over the five articles.
"""

from __future__ import annotations

import pytest

from qa.answering.answer import match_label
from qa.answering.result import NOT_FOUND, PARTIAL, STRONG, WEAK
from qa.reading.chunking import chunk_article
from qa.answering.context import AnswerContext, ArticleList, answer_context, points_back
from qa.reading.formats.text import parse_article
from qa.settings import Settings
from qa.answering.triage import EMERGENCY_LINES, SMALL_TALK_REPLIES, Triage

ITEMS = [f"Symptom number {n}: a line long enough to fill a good part of a small passage." for n in range(1, 13)]
ARTICLE = "\n\n".join([
    "Withdrawal Guide",
    "Symptoms",
    "Withdrawal is hard for most people. Common symptoms include:",
    "\n".join(f"  • {item}" for item in ITEMS),
    "Treatment",
    "Doctors carefully control doses to ensure safety. Recreational use often involves higher doses. "
    "This increases the risk of addiction and adverse effects.",
    "This paragraph opens with a word that points back, but to another paragraph.",
    "Lists",
    "\n".join(f"  • Unled item {n} with enough words to make the passage fill up soon." for n in range(1, 9)),
])


def chunks_of(text: str = ARTICLE, chunk_chars: int = 300):
    return chunk_article(parse_article(text, "guide.txt", Settings()), Settings(chunk_chars=chunk_chars))


def where(chunks, sentence: str) -> int:
    return next(i for i, c in enumerate(chunks) if sentence in c.sentences)


def test_an_item_of_a_list_split_over_passages_gets_the_whole_list_and_its_lead_in():
    chunks = chunks_of()
    holding = [i for i, c in enumerate(chunks) if any(item in c.text for item in ITEMS)]
    assert len(holding) >= 3  # the list really is split
    for item in (ITEMS[0], ITEMS[5], ITEMS[-1]):  # first part, middle part, last part
        context = answer_context(chunks, where(chunks, item), item)
        assert context == AnswerContext(list=ArticleList("Common symptoms include:", tuple(ITEMS)))


def test_the_lead_in_sentence_gets_its_list_but_an_earlier_sentence_of_its_paragraph_does_not():
    chunks = chunks_of()
    lead = "Common symptoms include:"
    assert answer_context(chunks, where(chunks, lead), lead).list == ArticleList(lead, tuple(ITEMS))
    earlier = "Withdrawal is hard for most people."
    assert answer_context(chunks, where(chunks, earlier), earlier) == AnswerContext()


def test_a_list_without_a_lead_in_is_joined_from_its_parts():
    chunks = chunks_of()
    items = tuple(f"Unled item {n} with enough words to make the passage fill up soon." for n in range(1, 9))
    context = answer_context(chunks, where(chunks, items[-1]), items[-1])
    assert context == AnswerContext(list=ArticleList(None, items))


def test_a_sentence_that_points_back_gets_the_sentence_before_it_in_its_paragraph():
    chunks = chunks_of(chunk_chars=1000)
    sentence = "This increases the risk of addiction and adverse effects."
    assert answer_context(chunks, where(chunks, sentence), sentence) == \
        AnswerContext(before="Recreational use often involves higher doses.")
    # ... and across the seam of two passages, which share the sentence before.
    narrow = chunks_of(chunk_chars=150)
    positions = [i for i, c in enumerate(narrow) if sentence in c.sentences]
    assert [narrow[i].sentences.index(sentence) for i in positions] == [1, 0]  # first in the second passage
    for position in positions:
        assert answer_context(narrow, position, sentence).before == "Recreational use often involves higher doses."
    # Never across a paragraph: the first sentence of one points back to another topic as often as not.
    first = "This paragraph opens with a word that points back, but to another paragraph."
    assert answer_context(chunks, where(chunks, first), first) == AnswerContext()


@pytest.mark.parametrize("sentence, expected", [
    ("This increases the risk.", True), ("It works within minutes.", True), ("They can vary.", True),
    ("These effects are rare.", True), ("“This is key,” she said.", True), ("Those who use it...", True),
    ("Ketamine is an anesthetic.", False), ("Itching is common.", False), ("Therefore, no.", False),
])
def test_words_that_point_back(sentence, expected):
    assert points_back(sentence) is expected


def test_match_labels_read_the_margin_and_the_score_against_the_best():
    settings = Settings()
    assert match_label(True, True, settings.strong_match_margin, 3.0, 3.0, settings) == STRONG
    assert match_label(True, True, settings.strong_match_margin - 0.01, 3.0, 3.0, settings) == PARTIAL
    assert match_label(True, False, 5.0, 2.7, 3.0, settings) == PARTIAL  # within 90% of the best
    assert match_label(True, False, 5.0, 2.6, 3.0, settings) == WEAK
    assert match_label(False, False, -1.0, 3.0, 3.0, settings) == WEAK  # nothing answers: all weak


# ------------------------------------------------------------------ the real engine

def test_a_list_answer_carries_the_whole_list(engine):
    result = engine.ask("what are the symptoms of opioid withdrawal")
    assert result.found and result.context.list is not None
    listed = result.context.list
    assert listed.lead == "Common symptoms include:" and len(listed.items) == 10
    assert any(result.answer in item for item in listed.items)
    article = (engine.settings.corpus_dir / "ketamine-for-opioid-withdrawal.txt").read_text(encoding="utf-8")
    assert all(item in article for item in listed.items) and listed.lead in article  # verbatim
    row = result.to_dict()
    assert row["kind"] == "answer" and row["context"] == {"before": None, "list": listed.to_dict()}


def test_an_answer_that_points_back_carries_the_sentence_before(engine):
    index = engine.current_index()
    sentence = "This increases the risk of addiction and adverse effects like memory loss and bladder issues."
    position = next(i for i, c in enumerate(index.chunks) if sentence in c.sentences)
    assert answer_context(index.chunks, position, sentence).before == \
        "Recreational use, on the other hand, often involves higher doses and lacks medical oversight."


def test_an_emergency_question_gets_the_emergency_line_and_still_its_answer(engine):
    result = engine.ask("my friend took special k and now he won't wake up, will narcan help??")
    assert result.triage == Triage(emergency="medical", situation="overdose")
    assert result.emergency == EMERGENCY_LINES["medical"]
    assert result.found and "does not reverse" in result.answer
    assert result.to_dict()["emergency"] == EMERGENCY_LINES["medical"]
    assert engine.ask("does naloxone reverse ketamine").to_dict()["emergency"] is None


@pytest.mark.parametrize("question", ["he used heroin and his lips are turning blue what do i do",
                                      "my friend overdosed and is not breathing"])
def test_an_overdose_the_articles_do_not_answer_gets_the_emergency_line_and_the_naloxone_passage(engine, question):
    result = engine.ask(question)
    assert result.emergency == EMERGENCY_LINES["medical"]
    assert result.kind in ("answer", "may_help") and result.message != NOT_FOUND
    if result.kind == "may_help":
        assert result.passages[0].match == "may help"
    # What to do in an overdose, not what the question's drug is used for: without the situation's
    # words in the search, the first passage was about ketamine for opioid withdrawal.
    first = result.passages[0]
    assert "naloxone" in first.text.lower() and "overdose" in first.text.lower()


def test_small_talk_and_other_languages_are_not_searched(tiny_engine):
    engine = tiny_engine  # triage runs before any vector is read
    thanks = engine.ask("ok thanks")
    assert (thanks.kind, thanks.found, thanks.passages, thanks.message) == \
        ("small_talk", False, (), SMALL_TALK_REPLIES["thanks"])
    assert thanks.to_dict()["answer"] == SMALL_TALK_REPLIES["thanks"]
    german = engine.ask("hilft Naloxon bei Ketamin?")
    assert german.kind == "not_english" and not german.found and german.passages == ()
    assert "The articles are in English" in german.message and "Die Artikel sind auf Englisch" in german.message
    # Small talk gives a follow-up no topic.
    assert engine.ask("why not?", ["hello"]).kind == "not_found"


def test_labels_on_a_real_answer_and_a_refusal(engine):
    answered = engine.ask("does naloxone reverse ketamine")
    assert answered.answer_source.match == STRONG  # the clearest question the articles answer
    assert [p.match for p in answered.passages if p is not answered.answer_source] != [] and \
        all(p.match in (PARTIAL, WEAK) for p in answered.passages if p is not answered.answer_source)
    refused = engine.ask("what is the capital of France")
    assert {p.match for p in refused.passages} == {WEAK}


# ----------------------------------------------------------------------------- two sentences quoted together

SPAN_ARTICLE = "\n\n".join([
    "Calipers Guide",
    "Sites",
    "The specific sites used vary in men and women.\nFor women, the triceps and thigh are used.\n"
    "For men, the chest and abdomen are used.",
    "Advantages: calipers are cheap and quick:",
    "  • Cheap to buy online.\n  • Quick to use at home.",
    "Accuracy",
    "The skill of the person matters most.",
])


def test_the_neighbours_of_a_sentence_are_its_paragraph_lines_in_its_section_never_a_list_or_past_a_heading():
    from qa.answering.context import neighbours
    chunks = chunks_of(SPAN_ARTICLE, chunk_chars=2000)
    first, women, men = ("The specific sites used vary in men and women.", "For women, the triceps and thigh are used.",
                         "For men, the chest and abdomen are used.")
    chunk = chunks[where(chunks, women)]
    assert neighbours(chunk, first) == (None, women)  # the section's first sentence: nothing before it
    assert neighbours(chunk, women) == (first, men)  # one sentence a line, as many web pages write them
    # The next line leads into a list (or is an item): a list answer is shown as its whole list instead.
    assert neighbours(chunk, men) == (women, None)
    assert neighbours(chunk, "Cheap to buy online.") == (None, None)
    # Another section, even in the same passage (short sections share one), is never quoted with it.
    accuracy = chunks[where(chunks, "The skill of the person matters most.")]
    assert neighbours(accuracy, "The skill of the person matters most.") == (None, None)
    assert neighbours(chunk, "a sentence that is not in the passage") == (None, None)


def test_the_answer_is_quoted_with_its_neighbour_only_when_their_scores_are_too_close_to_call():
    from qa.answering.answer import _quoted
    chunks = chunks_of(SPAN_ARTICLE, chunk_chars=2000)
    first, women, men = ("The specific sites used vary in men and women.", "For women, the triceps and thigh are used.",
                         "For men, the chest and abdomen are used.")
    chunk = chunks[where(chunks, women)]
    settings = Settings(answer_span_margin=0.15)
    scores = {first: 1.0, women: 0.9, men: 0.5}
    assert _quoted(chunk, first, 1.0, scores, settings) == (first, women)  # article order, the best first here
    assert _quoted(chunk, women, 0.95, {first: 0.9, women: 0.95, men: 0.85}, settings) == (first, women)
    # The closer of the two neighbours; after it in the article, it comes after.
    assert _quoted(chunk, women, 0.95, {first: 0.7, women: 0.95, men: 0.85}, settings) == (women, men)
    assert _quoted(chunk, first, 1.0, {first: 1.0, women: 0.8}, settings) == (first,)  # a clear winner
    assert _quoted(chunk, first, 1.0, {first: 1.0}, settings) == (first,)  # a neighbour that did not compete
    assert _quoted(chunk, first, 1.0, scores, settings.replace(answer_span_margin=0.0)) == (first,)
    assert _quoted(chunk, first, 1.0, scores, settings.replace(answer_span_chars=60)) == (first,)  # too long
    # A neighbour answer choice counts as no answer (talk about the article, a question, a lead-in) never joins.
    meta, fact = "In this article, we will explore the story of the spray.", "In 2019, the spray was approved for adults."
    talk = chunks_of("\n\n".join(["Spray", "Approval", f"{meta} {fact}"]), chunk_chars=2000)
    assert _quoted(talk[0], fact, 1.0, {meta: 0.99, fact: 1.0}, settings) == (fact,)


def test_a_claim_is_quoted_with_the_caveat_that_follows_it():
    from qa.answering.answer import _quoted
    from qa.answering.context import opens_with_caveat
    claim, caveat, other = ("Case reports cite naltrexone as a promising treatment.",
                            "However, more research is needed to know if it works.", "It is taken by mouth.")
    chunks = chunks_of("\n\n".join(["Guide", "Treatment", f"{claim} {caveat}", other]), chunk_chars=2000)
    chunk = chunks[where(chunks, claim)]
    settings = Settings(answer_span_margin=0.15)
    assert opens_with_caveat(caveat) and opens_with_caveat("But not always.") and not opens_with_caveat(claim)
    assert not opens_with_caveat("Butter is a fat.")  # a word, not the start of one
    assert _quoted(chunk, claim, 1.0, {claim: 1.0, caveat: 0.2}, settings) == (claim, caveat)  # whatever its score
    assert _quoted(chunk, claim, 1.0, {claim: 1.0}, settings.replace(answer_keeps_caveat=False)) == (claim,)
    assert _quoted(chunk, caveat, 1.0, {claim: 0.2, caveat: 1.0}, settings) == (caveat,)  # a caveat's claim: not
    assert _quoted(chunk, claim, 1.0, {claim: 1.0}, settings.replace(answer_span_chars=60)) == (claim,)


def test_an_answer_of_two_sentences_is_both_quoted_and_both_given_in_a_conversation(tiny_engine):
    # The fake embedder's scores mean nothing: a margin this wide joins any neighbours there are.
    tiny_engine.settings = tiny_engine.settings.replace(answer_span_margin=10.0)
    first = "naloxone reverses opioid overdose within minutes"
    result = tiny_engine.ask(first)
    assert result.found and result.answer_sentences == ("Naloxone reverses opioid overdose within minutes.",
                                                        "It binds to opioid receptors in the brain.")
    assert result.answer == " ".join(result.answer_sentences)
    assert result.context.before is None  # the sentence "It" points back to is quoted, not shown again
    # A follow-up wants something new: the sentence chosen is not its answer again (the neighbour quoted with it
    # was support, as the context is: a follow-up may ask for it).
    assert result.answer_sentence == "Naloxone reverses opioid overdose within minutes."
    followup = tiny_engine.ask("why?", [first])
    assert followup.answer_sentence != result.answer_sentence
    tiny_engine.settings = tiny_engine.settings.replace(answer_span_margin=0.0)
    assert len(tiny_engine.ask(first).answer_sentences) == 1
