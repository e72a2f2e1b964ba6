"""Triage (qa/answering/triage.py): emergencies, small talk and language, on real questions.

Pure text: no model. The phrase lists are held to every question the product
has (the labelled sets in eval/, the question bank, the training examples):
none of them may fire, except the few listed in DELIBERATELY_FIRING, which
describe a person in danger now.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.answering.triage import (EMERGENCY_LINES, EMERGENCY_SUBJECTS, emergency_situation, NOT_ENGLISH, Triage, emergency_kind, language_of, not_english_message,
                       small_talk_kind, triage)

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "seeds"  # the tests' copy of the seed corpus (conftest.CORPUS)

# Questions of the product's sets that say someone is in danger now: the emergency line is right for them.
DELIBERATELY_FIRING = {
    "will narcan help if my friend took too much k": "medical",  # a friend who took too much, now
    "can this stuff help if I keep having thoughts of ending my life?": "crisis",  # the writer's own thoughts
}


def product_questions() -> list[str]:
    """Every question (and earlier question) of eval/sets/, eval/training/ and corpus/questions/."""
    files = [*sorted((ROOT / "eval" / "sets").glob("*.jsonl")), *sorted((ROOT / "eval" / "training").glob("*.jsonl")),
             *sorted((CORPUS / "questions").glob("*.jsonl"))]
    questions = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                questions += [row["question"], *row.get("history", [])]
    return questions


def test_no_ordinary_question_of_the_product_is_triaged():
    questions = product_questions()
    assert len(questions) > 2000  # the sets are there
    fired = {q: triage(q) for q in questions if triage(q) != Triage()}
    assert fired == {q: Triage(emergency=kind, situation=emergency_situation(q)) for q, kind in DELIBERATELY_FIRING.items()}


# ------------------------------------------------------------------ emergencies

MEDICAL = [
    "my friend took special k and now he won't wake up, will narcan help??",  # from the issue
    "he's not breathing what do i do", "my boyfriend isnt breathing after ket", "she stopped breathing",
    "i cant wake him up", "can't wake my friend up after he did k", "I think my brother is overdosing on fentanyl",
    "my friend overdosed on ketamine", "i think she ODed", "he's od'd what do I do", "his lips are blue",
    "her lips are turning blue after snorting ket", "he’s turning blue", "my friend is having a seizure after ketamine",
    "she's seizing", "he is convulsing", "someone is unresponsive after taking k", "he's unconscious and breathing slow",
    "she passed out and won't wake up", "my son has blue lips", "my friend took too much ket", "he is choking on his vomit",
    "HELP my roommate can't breathe",
]
CRISIS = [
    "I want to kill myself", "i want to die", "I'm suicidal, will ketamine therapy help",
    "I have suicidal thoughts every night", "i keep having thoughts of ending my life", "I dont want to live anymore",
    "thinking about ending my life", "i feel suicidal", "i really want to die", "I keep wanting to hurt myself",
]
# About the topic, not about someone in danger now (several close to the phrases on purpose).
ORDINARY = [
    "can you overdose on ketamine", "how quick does the overdose nose spray wake someone up?",
    "does narcan help someone start breathing again", "does ketamine reduce suicidal thoughts",
    "Is it safe to give naloxone to someone who isn't actually having an opioid overdose?",
    "can ketamine cause seizures", "what does a ketamine overdose look like", "does ketamine slow your breathing",
    "can ketamine make you unconscious", "is ketamine used for depression that won't respond to meds",
    "what should i do if someone overdoses", "can ketamine help suicidal patients", "will ketamine make me less suicidal",
    "does a k-hole feel like dying", "how long until naloxone wakes someone up", "what are blue lips a sign of",
    "can i hurt myself if i take ket while drunk", "am i going to die if i mix ket and alcohol",
    "my friend did k last night and didn't wake up until noon, is that normal?",
]


@pytest.mark.parametrize("question", MEDICAL)
def test_someone_in_danger_now_is_a_medical_emergency(question):
    assert emergency_kind(question) == "medical"


@pytest.mark.parametrize("question", CRISIS)
def test_thoughts_of_ending_ones_life_are_a_crisis(question):
    assert emergency_kind(question) == "crisis"
    assert emergency_situation(question) is None  # its own words are what to search for


@pytest.mark.parametrize("question", MEDICAL)
def test_a_medical_emergency_names_the_situation_whose_words_are_searched(question):
    assert emergency_situation(question) in EMERGENCY_SUBJECTS


def test_the_situation_follows_what_is_happening():
    assert emergency_situation("he used heroin and his lips are turning blue") == "overdose"
    assert emergency_situation("she is having a seizure right now") == "seizure"
    assert emergency_situation("he's choking on his vomit") == "choking"
    assert [q for q in ORDINARY if emergency_situation(q)] == []


def test_questions_about_the_topic_are_not_emergencies():
    assert [q for q in ORDINARY if emergency_kind(q)] == []


def test_the_emergency_lines_say_to_call_the_local_emergency_number():
    for line in EMERGENCY_LINES.values():
        assert "call your local emergency number" in line and len(line) < 200


# ------------------------------------------------------------------ small talk

@pytest.mark.parametrize("message, kind", [
    ("ok thanks", "thanks"), ("thank you so much!", "thanks"), ("Thanks!!", "thanks"), ("cool, thanks", "thanks"),
    ("thx", "thanks"), ("hi there", "greeting"), ("hello :)", "greeting"), ("good morning", "greeting"),
    ("how are you?", "greeting"), ("bye", "goodbye"), ("ok", "acknowledgement"), ("👍", "acknowledgement"),
    ("who are you", "about"), ("help", "about"), ("what can you do?", "about"),
])
def test_greetings_and_thanks_are_small_talk(message, kind):
    assert small_talk_kind(message) == kind
    assert triage(message) == Triage(small_talk=kind)


@pytest.mark.parametrize("message", [
    "why not?", "ok so what about opioids", "thanks, and does naloxone reverse ketamine?", "k", "is that all",
    "hi, does narcan work on ketamine", "hello is ketamine addictive", "good morning, can I take ket with subs",
])
def test_a_question_with_a_greeting_is_still_a_question(message):
    assert small_talk_kind(message) is None


# ------------------------------------------------------------------ language

@pytest.mark.parametrize("question, language", [
    ("¿la naloxona revierte la ketamina?", "es"), ("La ketamina es adictiva?", "es"), ("por favor ayuda", "es"),
    ("hilft Naloxon bei Ketamin?", "de"), ("ist Ketamin gefährlich", "de"), ("Was ist Ketamin?", "de"),
    ("Quels sont les effets secondaires de la kétamine ?", "fr"), ("Est-ce que la naloxone agit sur la kétamine ?", "fr"),
    ("O que é cetamina?", "pt"), ("纳洛酮能逆转氯胺酮吗", "zh"), ("ナロキソンはケタミンに効きますか", "ja"),
    ("케타민은 중독성이 있나요?", "ko"), ("Налоксон помогает при кетамине?", "ru"), ("Кетамін небезпечний?", "uk"),
    ("كيتامين آمن؟", "ar"), ("Is ketamine verslavend? Wat zijn de risico's?", "nl"),
])
def test_questions_in_other_languages_are_recognised(question, language):
    assert language_of(question) == language
    assert triage(question) == Triage(language=language)


@pytest.mark.parametrize("question", [
    "is ketamina the same as ketamine", "what does 'Spravato' mean", "can I use Narcan (naloxona) nasal spray",
    "what did Müller et al find about ketamine", "is ketamine legal in México", "what is a k-hole",
    "de-escalation with ketamine", "was ketamine ever legal", "is 氯胺酮 the chinese name of ketamine",
    "is esketamine (Spravato) safe?", "come down from ketamine how long", "is ketamine used at the la jolla clinic",
    "does the von Willebrand factor change with ketamine", "is there a .com site about narcan",
])
def test_english_questions_with_foreign_words_stay_english(question):
    assert language_of(question) is None


def test_the_note_says_the_articles_are_in_english_in_both_languages():
    assert not_english_message("de") == NOT_ENGLISH + " Die Artikel sind auf Englisch: Bitte stellen Sie Ihre " \
                                                      "Frage auf Englisch."
    assert not_english_message("he") == NOT_ENGLISH  # no translation: English only
