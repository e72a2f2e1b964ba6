"""Questions end to end through the real engine over the five real articles."""

from __future__ import annotations


import pytest

from conftest import CORPUS, write_corpus
from qa.answering.answer import answer_type, is_followup, resolve_query
from qa.answering.result import NOT_FOUND
from qa.serving.engine import Engine
from qa.models.refusal import answer_everything
from qa.errors import QuestionError
from qa.settings import Settings
from qa.answering.synonyms import Expansion

NALOXONE = "naloxone-and-ketamine.txt"


def test_naloxone_does_not_reverse_ketamine(engine):
    result = engine.ask("does naloxone reverse ketamine")
    assert result.found
    assert "does not reverse the effects of Ketamine" in result.answer
    assert result.answer_source.source == NALOXONE
    assert result.passages[0].source == NALOXONE
    assert result.answer in result.answer_source.text  # quoted verbatim from its passage
    assert result.answer_source.answer == result.answer  # and marked there for highlighting
    scores = [p.score for p in result.passages]
    assert scores == sorted(scores, reverse=True) and len(scores) == engine.settings.top_k


def test_off_topic_question_is_not_found(engine):
    result = engine.ask("what is the capital of France")
    assert not result.found
    assert result.answer is None and result.message == NOT_FOUND
    assert result.to_dict()["answer"] == NOT_FOUND and result.to_dict()["answer_source"] is None



@pytest.mark.parametrize("question", ["can I give naloxone to my dog", "what is the street price of ketamine"])
def test_questions_near_the_topic_the_articles_do_not_answer_are_refused(engine, question):
    result = engine.ask(question)
    assert not result.found and result.answer is None and result.message == NOT_FOUND
    assert result.margin < 0
    # The same signals clear the bar for a question the articles do answer.
    answered = engine.ask("does naloxone reverse ketamine")
    assert answered.margin > 0
    assert answered.confidence.sentence > result.confidence.sentence

def test_street_names_are_searched_with_the_articles_words(engine):
    result = engine.ask("does narcan work on ketamine")
    assert result.found and result.answer_source.source == NALOXONE
    assert "Naloxone" in result.answer
    assert Expansion("narcan", ("naloxone",)) in result.expansions
    assert result.query == "does narcan work on ketamine"  # the question itself is not rewritten


SPRAVATO = """Spravato Facts

Approval Of Spravato

In this article, we will explore the story of Spravato and the FDA. In 2019, the FDA approved the nasal spray for adults with depression. Many patients ask about the nasal spray.
"""


def test_answer_has_the_kind_of_answer_asked_for_not_talk_about_the_article(tmp_path, embedder):
    write_corpus(tmp_path / "corpus", {"spravato.txt": SPRAVATO})
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    engine = Engine.open(settings, build="missing", embedder=embedder)
    question = "when was Spravato approved by the FDA"
    assert answer_type(question) == "time"
    assert engine.ask(question).answer == "In 2019, the FDA approved the nasal spray for adults with depression."
    # Without the meta-discourse penalty and the answer-type bonus, the sentence that
    # merely repeats the question's words would win: the features are what decide.
    plain = Engine(settings.replace(meta_penalty=0.0, answer_type_bonus=0.0), embedder, engine.index)
    assert plain.ask(question).answer.startswith("In this article")


def test_a_sentence_summing_up_the_article_loses_to_the_specific_answer(tmp_path, embedder):
    # Articles without example questions, as a maintainer may drop them: the model as it ships,
    # and no bank to find the answer. (The model tuned on the bank finds it without the penalty.)
    # Two of the real articles: the one with the answer, and another to be scored against.
    write_corpus(tmp_path / "corpus", {name: (CORPUS / name).read_text(encoding="utf-8")
                                       for name in ("ketamine-reversal-effect.txt", NALOXONE)})
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    engine = Engine.open(settings, build="missing", embedder=embedder)
    assert engine.index.manifest["model"]["tuned"] is None
    question = "what does debriefing after ketamine treatment involve"
    index = engine.index
    assert index.genericness.shape == (len(index.sentences),)
    assert -1.0 <= float(index.genericness.min()) and float(index.genericness.max()) <= 1.0
    # Answer whatever the confidence, to compare sentences.
    answers_anything = answer_everything(engine.settings.model)
    answer = Engine(engine.settings, engine.embedder, index, answers_anything).ask(question).answer
    assert answer.startswith("Debriefing: Discuss the experience")
    # Without the penalty, an overview sentence close to the whole article's gist wins (the token match off
    # too: reading the question's words against the sentences', it also chooses the specific answer here).
    plain = Engine(engine.settings.replace(generic_penalty=0.0, token_match_weight=0.0), engine.embedder, index,
                   answers_anything)
    overview = plain.ask(question).answer
    assert overview.startswith("Understanding the treatment process")
    sentence_id = index.sentences.index
    assert index.genericness[sentence_id(overview)] > index.genericness[sentence_id(answer)]


@pytest.mark.parametrize("question, kind", [
    ("how long does ketamine last", "duration"), ("how soon does naloxone work", "onset"),
    ("how long until withdrawal starts", "onset"), ("how many sessions are needed", "number"),
    ("what dose is used", "number"), ("when did the FDA approve it", "time"), ("why not?", "reason"),
    ("does naloxone reverse ketamine", None)])
def test_answer_types_come_from_the_question_wording(question, kind):
    assert answer_type(question) == kind


NALOXONE_TIMING = """Naloxone Timing

How Fast And How Long

Naloxone usually starts working within 2 to 5 minutes of a dose. Its effects last 30 to 90 minutes, which is shorter than many opioids last. A second dose may be needed if breathing slows again.
"""


def test_how_long_something_lasts_is_not_answered_by_when_it_starts(tmp_path, embedder):
    write_corpus(tmp_path / "corpus", {"timing.txt": NALOXONE_TIMING})
    engine = Engine.open(Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index"),
                         build="missing", embedder=embedder)
    assert engine.ask("how long does naloxone last").answer.startswith("Its effects last 30 to 90 minutes")
    assert engine.ask("how soon does naloxone start working").answer.startswith("Naloxone usually starts working")


def test_followup_takes_its_topic_from_the_history(engine):
    alone = engine.ask("why not?")
    followed = engine.ask("why not?", ["does naloxone reverse ketamine"])
    assert followed.found and followed.answer_source.source == NALOXONE
    assert followed.answer != engine.ask("does naloxone reverse ketamine").answer
    assert "naloxone" in followed.query.lower()
    assert alone.query == "why not?"


NALOXONE_FAQ = """Naloxone And Ketamine

Does Naloxone Reverse Ketamine?

Naloxone does not reverse the effects of ketamine. The reason is that naloxone only blocks opioid receptors, while ketamine acts on NMDA receptors. Naloxone is sold as a nasal spray.

Side Effects

Ketamine can cause nausea and dizziness.
"""


def naloxone_faq_engine(folder, embedder) -> Engine:
    write_corpus(folder / "corpus", {"naloxone.txt": NALOXONE_FAQ})
    return Engine.open(Settings(corpus_dir=folder / "corpus", index_dir=folder / "index"),
                       build="missing", embedder=embedder)


def test_a_followup_gets_a_new_answer_not_the_one_already_given(tmp_path, embedder):
    engine = naloxone_faq_engine(tmp_path, embedder)
    first = "does naloxone reverse ketamine"
    assert engine.ask(first).answer == "Naloxone does not reverse the effects of ketamine."
    # The restored topic matches that answer best again; the follow-up wants the next thing.
    assert engine.ask("why not?", [first]).answer == \
        "The reason is that naloxone only blocks opioid receptors, while ketamine acts on NMDA receptors."
    # Every earlier answer counts, also those of earlier follow-ups, each asked with its own history.
    assert engine.ask("why?", [first, "why not?"]).answer not in {
        "Naloxone does not reverse the effects of ketamine.",
        "The reason is that naloxone only blocks opioid receptors, while ketamine acts on NMDA receptors."}
    # A question that stands on its own is answered as always, even when asked again.
    assert engine.ask(first, [first]).answer == "Naloxone does not reverse the effects of ketamine."


def test_a_chat_followup_recalls_the_earlier_answer_instead_of_asking_again(tmp_path, embedder):
    chat = naloxone_faq_engine(tmp_path, embedder)
    first = "does naloxone reverse ketamine"
    chat.ask(first)
    before = embedder.texts_encoded
    in_chat = chat.ask("why not?", [first])
    assert embedder.texts_encoded - before == 2  # the restored topic and the follow-up's own words
    # A batch that never saw the first question answers it again: one encode more, the same answer.
    batch = Engine(chat.settings, embedder, chat.index)
    before = embedder.texts_encoded
    assert batch.ask("why not?", [first]).answer == in_chat.answer
    assert embedder.texts_encoded - before == 3


def test_followup_detection():
    settings = Settings()
    assert is_followup("why not?") and is_followup("and the benefits?") and is_followup("what about its side effects?")
    assert not is_followup("what are the risks of ketamine for opioid withdrawal")
    assert resolve_query("and the benefits?", ["what are the risks of ketamine", "and the benefits?"],
                         settings).startswith("what are the risks of ketamine")
    assert resolve_query("does naloxone reverse ketamine", ["what is ketamine"], settings) == \
        "does naloxone reverse ketamine"


# ------------------------------------------------------------------ mechanics: the fake embedder's tiny engine

TINY_ANSWER = "Naloxone reverses opioid overdose within minutes."
TINY_QUESTION = "does naloxone reverse opioid overdose within minutes"


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "\x00\x01"])
def test_empty_question_gets_a_clear_message(tiny_engine, question):
    with pytest.raises(QuestionError, match="Please type a question"):
        tiny_engine.ask(question)


def test_huge_question_is_refused_with_its_size(tiny_engine):
    with pytest.raises(QuestionError, match="102,400 characters long; please keep it to at most 2,000"):
        tiny_engine.ask("k" * 102_400)


def test_markup_and_control_characters_are_just_text(tiny_engine):
    result = tiny_engine.ask("<b>does</b> naloxone\x07 reverse opioid overdose within <i>minutes</i>?")
    assert result.found and result.answer == TINY_ANSWER and result.answer_source.source == "alpha.txt"
    assert "\x07" not in result.question and "<b>does</b>" in result.question  # markup is text, kept as typed


def test_bad_history_items_are_ignored(tiny_engine):
    result = tiny_engine.ask("why not?", ["", "x" * 5000, TINY_QUESTION])
    assert result.query.startswith(TINY_QUESTION)  # the topic comes from the one usable earlier question
    alone = tiny_engine.ask("why not?", ["", "x" * 5000])
    assert alone.query == "why not?"


def test_articles_panel_data(tiny_engine):
    articles = tiny_engine.articles()
    assert [a.title for a in articles] == ["Alpha Article About Naloxone", "Beta Article About Ketamine",
                                           "Gamma Notes On Withdrawal"]
    assert sum(a.passages for a in articles) == len(tiny_engine.index.chunks)
    assert tiny_engine.built_at()


def test_engine_picks_up_a_new_build_without_restart(tiny_engine, fake_embedder):
    from qa.indexing.build import build as build_index
    settings = tiny_engine.settings
    question = "which hormone regulates the sleep cycle"
    (settings.corpus_dir / "sleep.txt").write_text(
        "Sleep And Melatonin\n\nMelatonin Basics\n\nMelatonin is a hormone that regulates the sleep cycle.\n")
    assert "added: sleep.txt" in tiny_engine.stale_reason()
    before = tiny_engine.index.generation
    build_index(settings, fake_embedder)
    result = tiny_engine.ask(question)
    assert tiny_engine.index.generation != before
    assert result.found and result.answer_source.source == "sleep.txt"
    (settings.corpus_dir / "sleep.txt").unlink()
    build_index(settings, fake_embedder)
    assert "sleep.txt" not in {p.source for p in tiny_engine.ask(question).passages}