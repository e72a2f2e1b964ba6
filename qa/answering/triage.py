"""Triage: what kind of message a question is, before and beside its answer.

Owns three small decisions on the text of a question, and the fixed lines
that go with them:

- **emergency** (`emergency_kind`): the question says something is
  happening now that needs help at once: someone is not breathing, won't
  wake up, is overdosing, has blue lips, is having a seizure ("medical"),
  or the person writing thinks of ending their life ("crisis"). The reply
  then opens with a line to call the local emergency number, before any
  quote. It is a list of phrases, not a model: each phrase describes a
  person in trouble now ("he won't wake up", "she's not breathing",
  "I want to kill myself"), never the topic ("can you overdose on
  ketamine", "does narcan help someone start breathing again", "does
  ketamine reduce suicidal thoughts"), and a negation just before it
  ("isn't actually overdosing") cancels it. tests/test_triage.py holds the
  product's question sets to it: no ordinary question may fire;
- **small talk** (`small_talk_kind`): a message made only of greetings,
  thanks, goodbyes or an "ok" gets a short friendly reply, not "not found";
- **language** (`language_of`): a question not in English is not searched
  (the articles and the model are English, so a match there is on shared
  drug names only); the reply says that the articles are in English, in
  that language too when it is one of `NOT_ENGLISH_NOTES`. Two cues, no
  dependency: the writing system (Han, kana, Hangul, Cyrillic, Arabic ...
  letters outnumbering Latin ones), and for Latin-script languages, common
  words that are not English ("ist", "bei", "¿", "pourquoi", "ayuda").

Limits: English phrases only, so an emergency written in another language
gets the not-English note (whose page still shows the emergency number
note). The word lists recognise Spanish, German, French, Portuguese,
Italian and Dutch; a Latin-script question in another language, or one of
a word or two ("naloxona ketamina"), reads as English and is searched.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

# ---------------------------------------------------------------------------- emergency

EMERGENCY_LINES = {
    "medical": ("This sounds like an emergency: call your local emergency number now "
                "(911 in the US and Canada, 112 in Europe, 999 in the UK) and stay with the person."),
    "crisis": ("If you are thinking about ending your life, please call your local emergency number "
               "or a crisis line now (in the US and Canada, call or text 988). You don't have to face this alone."),
}

# A person in trouble now. Each phrase names a state ("won't wake up"), not a topic ("overdose"),
# grouped by the situation it describes: what the reply's passage should be about.
_MEDICAL = {
    "overdose": [
        r"\b(?:not|isn't|isnt|aren't|arent|wasn't|wasnt|stopped|quit|barely|hardly|no longer) breathing\b",
        r"\b(?:can't|cant|cannot|can not|couldn't|couldnt) breathe\b",
        r"\bstruggling to breathe\b|\bgasping for (?:air|breath)\b",
        r"\b(?:won't|wont|will not|isn't|isnt|not) (?:wake|waking) (?:up|him|her|them)?\b",
        r"\b(?:can't|cant|cannot|can not|couldn't|couldnt) (?:wake|rouse) (?:him|her|them|my|up|\w+ up)\b",
        r"\b(?:he|she|they|he's|she's|they're|hes|shes|theyre|is|are|i'm|im)(?: \w+)? (?:unresponsive|not responding|"
        r"(?:won't|wont) respond)\b(?! to)",
        r"\b(?:is|he's|hes|she's|shes|they're|theyre|are|am|i'm|im) (?:now |still |completely )?unconscious\b",
        r"\bpassed out and\b",
        r"\boverdosing\b|\b(?:just |has |have |had |he |she |they |i |friend |someone )overdosed\b",
        r"\bod'?d\b|\bo\.d\.'?d\b|\boded\b",
        r"\b(?:having|had|is having) an? (?:opioid |drug |ketamine |fentanyl |heroin )?overdose\b",
        r"\b(?:i|he|she|they|we|my \w+(?: \w+)?) (?:just )?(?:took|did|had|used|snorted|drank) (?:way )?too much\b",
        r"\b(?:his|her|their|my|your|friend's) lips (?:are |is |turning |turned |going |went |look |looks |"
        r"have gone )?(?:blue|purple|grey|gray)\b",
        r"\b(?:has|have|got|with) (?:blue|purple) lips\b|\b(?:turning|turned|going|gone) blue\b",
    ],
    "seizure": [
        r"\b(?:having|had|is having|in the middle of) (?:a )?(?:seizure|seizures|fit|convulsions)\b",
        r"\b(?:is|he's|hes|she's|shes|they're|theyre|keeps|started) (?:seizing|convulsing|fitting)\b|\bconvulsing\b",
    ],
    "choking": [
        r"\bchoking on (?:his|her|their|my) (?:own )?vomit\b",
    ],
}
# What the articles would say to do in each situation, in the words articles use for it. Added to
# the question's search, so the passage shown under the emergency line is on what to do now (an
# overdose: naloxone, breathing, CPR), not on whatever drug the question happens to name.
EMERGENCY_SUBJECTS = {
    "overdose": "overdose emergency, what to do: call for help, give naloxone (Narcan), rescue breathing, CPR",
    "seizure": "seizure emergency, what to do: first aid, keep the person safe, recovery position, breathing",
    "choking": "choking on vomit emergency, what to do: recovery position, clear the airway, breathing, overdose",
}
# The person writing, about themselves, now.
_CRISIS = [
    r"\bkill(?:ing)? myself\b",
    r"\b(?:want|wanna|wanting|going|planning|plan|thinking about|thought about|urges?) to (?:hurt|harm|cut) myself\b",
    r"\b(?:end|ending|take|taking) my (?:own )?life\b",
    r"\bi (?:\w+ )?(?:want|wanna|wanted) (?:to )?die\b|\bi wish i (?:was|were) dead\b|\bbetter off dead\b",
    r"\b(?:i'm|im|i am|i feel|i've been feeling|feeling) (?:so |very |really |really really )?suicidal\b",
    r"\b(?:i have|i'm having|im having|i am having|i keep having|i've been having|ive been having|i get) "
    r"(?:\w+ )?(?:suicidal thoughts|thoughts of (?:suicide|killing myself|ending (?:it|my life)|dying))\b",
    r"\bdon'?t want to (?:live|be alive|wake up)(?: anymore)?\b",
]
# "isn't actually overdosing", "not having an overdose": a negation shortly before cancels a phrase.
_NEGATION = re.compile(r"\b(?:not|isn't|isnt|aren't|arent|wasn't|wasnt|never|no|didn't|didnt|without)\b(?:\s+\w+){0,2}\s*$")
# Negations that are part of the phrase itself ("not breathing", "won't wake up").
_SELF_NEGATED = re.compile(r"^(?:not|isn't|isnt|aren't|arent|wasn't|wasnt|won't|wont|will not|doesn't|doesnt|"
                           r"didn't|didnt|can't|cant|cannot|can not|couldn't|couldnt|don't|dont|no longer)\b")
_MEDICAL_RE = {situation: [re.compile(p) for p in patterns] for situation, patterns in _MEDICAL.items()}
_CRISIS_RE = [re.compile(p) for p in _CRISIS]


def _plain(text: str) -> str:
    """Lower case, straight apostrophes, single spaces: what the phrase lists are written against."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'").replace("‘", "'")
    return " ".join(text.split())


def _fires(patterns: list[re.Pattern], text: str) -> bool:
    for pattern in patterns:
        for match in pattern.finditer(text):
            if _SELF_NEGATED.match(match.group(0)) or not _NEGATION.search(text[:match.start()]):
                return True
    return False


def emergency_kind(question: str) -> str | None:
    """'crisis' (thoughts of ending one's life), 'medical' (someone in danger now), or None."""
    return _emergency(question)[0]


def emergency_situation(question: str) -> str | None:
    """The medical situation a question describes ("overdose", "seizure", "choking": EMERGENCY_SUBJECTS'
    keys), or None. A crisis question has none: its own words are the subject to search for."""
    return _emergency(question)[1]


def _emergency(question: str) -> tuple[str | None, str | None]:
    """(emergency_kind, emergency_situation) of a question, its phrases read once for both."""
    text = _plain(question)
    if _fires(_CRISIS_RE, text):
        return "crisis", None
    situation = next((situation for situation, patterns in _MEDICAL_RE.items() if _fires(patterns, text)), None)
    return ("medical" if situation else None), situation


# ---------------------------------------------------------------------------- small talk

SMALL_TALK_REPLIES = {
    "greeting": "Hello! Ask me a question about the articles, and I'll quote the sentence that answers it.",
    "thanks": "You're welcome! Ask another question whenever you like.",
    "goodbye": "Take care!",
    "about": ("I answer questions about the articles listed on this page by quoting the sentence from them "
              "that answers it, with its source. Ask in English, in your own words."),
    "acknowledgement": "Ask another question whenever you like.",
}
# Words that carry the kind, most telling first; the other words only go along with them.
_SMALL_TALK_CORE = {
    "thanks": {"thanks", "thank", "thx", "thanx", "ty", "tysm", "cheers", "appreciate", "appreciated", "grateful"},
    "goodbye": {"bye", "goodbye", "byebye", "cya", "farewell", "goodnight"},
    "greeting": {"hi", "hello", "hey", "hiya", "howdy", "heya", "greetings", "morning", "afternoon", "evening",
                 "hallo"},
    "acknowledgement": {"ok", "okay", "okey", "kk", "cool", "great", "nice", "awesome", "perfect", "alright",
                        "understood", "gotcha", "wow", "sure", "yes", "yeah", "yep", "fine", "good"},
}
_SMALL_TALK_FILLER = {"so", "very", "much", "a", "lot", "lots", "you", "u", "again", "all", "there", "everyone",
                      "guys", "folks", "friend", "bot", "really", "it", "that", "that's", "thats", "was", "is",
                      "helpful", "got", "see", "later", "have", "nice", "day", "good", "great", "the", "info",
                      "for", "and", "oh", "ah", "well", "then", "i", "it's", "its", "just", "too", "super",
                      "anyway", "makes", "sense", "to", "me", "this", "help", "your", "doctor", "doc", "man",
                      "mate", "buddy", "dude", "bro", "sir", "maam", "kindly", "bunch", "tons"}
_ABOUT = re.compile(r"^(?:help|who are you|what are you|what can you do|what can i ask(?: you)?|"
                    r"how does this work|what is this|how do i use this|how are you(?: doing)?(?: today)?)$")
_TOKEN = re.compile(r"[a-z']+")
_SMALL_TALK_WORDS = frozenset().union(*_SMALL_TALK_CORE.values()) | _SMALL_TALK_FILLER


def small_talk_kind(question: str) -> str | None:
    """'greeting', 'thanks', 'goodbye', 'about' or 'acknowledgement' when the whole message is that; else None."""
    text = _plain(question).strip(" .,!?;:)(-~*")
    text = re.sub(r"[!?.,;:~*()]+", " ", text).strip()
    if _ABOUT.match(text):
        return "greeting" if text.startswith("how are you") else "about"
    if not re.search(r"[^\W_]", text):
        return "acknowledgement"  # only emoji or punctuation: "👍", "🙏", "..."
    tokens = _TOKEN.findall(text)
    if not tokens or len(tokens) > 8 or len("".join(tokens)) < len(re.sub(r"[\W_]", "", text)):
        return None  # digits or other letters: not only small talk
    if not all(token in _SMALL_TALK_WORDS for token in tokens):
        return None
    for kind, core in _SMALL_TALK_CORE.items():
        if any(token in core for token in tokens):
            return kind
    return None


# ---------------------------------------------------------------------------- language

NOT_ENGLISH = "The articles are in English, so I can only answer questions asked in English."
NOT_ENGLISH_NOTES = {
    "es": "Los artículos están en inglés: por favor, haga su pregunta en inglés.",
    "de": "Die Artikel sind auf Englisch: Bitte stellen Sie Ihre Frage auf Englisch.",
    "fr": "Les articles sont en anglais : merci de poser votre question en anglais.",
    "pt": "Os artigos estão em inglês: por favor, faça a sua pergunta em inglês.",
    "it": "Gli articoli sono in inglese: per favore, fai la domanda in inglese.",
    "nl": "De artikelen zijn in het Engels: stel uw vraag alstublieft in het Engels.",
    "zh": "这些文章是英文的，请用英文提问。",
    "ja": "記事は英語で書かれています。英語で質問してください。",
    "ko": "글은 영어로 되어 있습니다. 영어로 질문해 주세요.",
    "ru": "Статьи написаны на английском языке: пожалуйста, задайте вопрос по-английски.",
    "uk": "Статті написані англійською мовою: будь ласка, поставте запитання англійською.",
    "ar": "المقالات باللغة الإنجليزية، يرجى طرح سؤالك باللغة الإنجليزية.",
}
# Writing systems by the first word of their characters' Unicode names.
_SCRIPTS = {"CJK": "zh", "HIRAGANA": "ja", "KATAKANA": "ja", "HANGUL": "ko", "CYRILLIC": "ru", "ARABIC": "ar",
            "HEBREW": "he", "GREEK": "el", "DEVANAGARI": "hi", "THAI": "th", "BENGALI": "bn", "TAMIL": "ta",
            "ARMENIAN": "hy", "GEORGIAN": "ka", "ETHIOPIC": "am"}
_UKRAINIAN_LETTERS = frozenset("іїєґІЇЄҐ")
# Common words of each language that are not English words, nor English fragments.
_WORDS = {
    "es": "el los las del y que qué es está están estoy por para una uno cómo cuál cuáles cuándo dónde puede "
          "puedo pueden su sus pero más muy también hay tiene tengo sobre esto este esta ayuda sirve funciona "
          "hace porqué cuánto cuanto tomar tomé amigo amiga mucho sí después antes hacer debo efectos",
    "de": "der das und ist nicht mit bei wie warum wann kann können hilft helfen ein eine einen einem ich mein "
          "meine mir mich sind für auf oder gegen wirkt wirken noch auch nach wenn wird sich gibt welche "
          "welcher wieviel viel lange nehmen genommen freund freundin habe haben sollte darf dass zwischen "
          "nebenwirkungen",
    "fr": "les des du et est une pour avec dans qui quoi comment pourquoi quand cette je mon mes elle sur pas "
          "peut fait aux où sont être avoir est-ce combien quels quelle quel j'ai ami amie après avant effets",
    "pt": "uma é não para por que como quando onde meu minha ajuda pode dos das isso esse essa são tem tomar "
          "tomei amigo depois antes sem quanto quanta efeitos você",
    "it": "gli è perché mio mia aiuta può della delle dei sono questo questa cosa quanto prendere preso amico "
          "dopo senza effetti quando",
    "nl": "een niet wat waarom wanneer kan helpt mijn ik bij voor ook zijn heeft hebben welke zonder vriend",
}
# Words that are also English, or fragments of English words split at a hyphen or a dot ("de-escalate",
# "webmd.com", "von Willebrand"), count half, for each language they belong to.
_HALF_WORDS = {
    "la": "es fr it", "de": "es fr pt nl", "con": "es it", "en": "es fr nl", "le": "fr it", "se": "es pt it",
    "si": "es fr it", "un": "es fr it", "ma": "fr it", "il": "fr it", "na": "pt", "da": "pt it", "em": "pt",
    "um": "pt", "ce": "fr", "au": "fr", "ou": "fr pt", "ne": "fr", "van": "nl", "het": "nl", "al": "es",
    "lo": "es it", "mi": "es it", "tu": "es fr pt it", "ni": "es", "di": "it", "che": "it", "com": "pt",
    "von": "de", "per": "it", "come": "it", "met": "nl", "son": "es", "sin": "es",
}
_LANGUAGE_WORDS = {language: frozenset(words.split()) for language, words in _WORDS.items()}
_HALF_LANGUAGES = {word: frozenset(languages.split()) for word, languages in _HALF_WORDS.items()}
# English function words and everyday verbs: each is a vote for English ("was" is German too: left out).
_ENGLISH = frozenset("""
the a an is are were be been being do does did done can could will would should shall may might must have
has had i you he she it we they me my your his her its our their this that these those what which who whom
whose when where why how of to in on at by for with from about into after before without and or but if not
no yes so than then there here all any some much many more most other such only just also very too up out off
over under again once get got take took use used make help work works safe bad good long often anyone someone
""".split())
# Letters English words do not carry; "¿" and "¡" open a Spanish question. Each counts one word.
_MARKS = {"es": frozenset("¿¡ñ"), "de": frozenset("ßäöü"), "fr": frozenset("çœ"), "pt": frozenset("ãõ")}


def language_of(question: str) -> str | None:
    """A code ('es', 'de', 'zh', ...) when the question is clearly not English; None for English or unsure."""
    text = unicodedata.normalize("NFC", question)
    latin, others = 0, {}  # letters by writing system, counted only when some letter may not be Latin
    if not text.isascii():
        for ch in text:
            if ch.isalpha():
                if ch.isascii():  # a to z: the common case, without looking up its name
                    latin += 1
                    continue
                name = unicodedata.name(ch, "")
                script = next((code for prefix, code in _SCRIPTS.items() if name.startswith(prefix)), None)
                if name.startswith("LATIN") or script is None:
                    latin += name.startswith("LATIN")
                else:
                    others[script] = others.get(script, 0) + 1
    if sum(others.values()) > latin:  # another writing system outnumbers Latin letters
        if "ja" in others:
            return "ja"  # Japanese writes with Han characters and kana
        script = max(others, key=others.get)
        return "uk" if script == "ru" and _UKRAINIAN_LETTERS & set(text) else script
    lowered = text.lower().replace("’", "'")
    tokens = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", lowered)
    english = sum(token in _ENGLISH for token in tokens)
    best, best_score = None, 0.0
    for language, vocabulary in _LANGUAGE_WORDS.items():
        score = sum(1.0 if token in vocabulary else 0.5 if language in _HALF_LANGUAGES.get(token, ()) else 0.0
                    for token in tokens)
        score += sum(lowered.count(mark) for mark in _MARKS.get(language, ()))
        if score > best_score:
            best, best_score = language, score
    return best if best_score >= 1.0 and best_score > english else None


def not_english_message(language: str) -> str:
    """The note for a question in `language`: in English, and in that language when there is a translation."""
    note = NOT_ENGLISH_NOTES.get(language)
    return f"{NOT_ENGLISH} {note}" if note else NOT_ENGLISH


# ---------------------------------------------------------------------------- together


@dataclass(frozen=True)
class Triage:
    """What kind of message a question is; all None for an ordinary English question."""

    emergency: str | None = None  # "medical" or "crisis": the reply opens with EMERGENCY_LINES[emergency]
    situation: str | None = None  # a medical emergency's EMERGENCY_SUBJECTS key: added to what is searched
    small_talk: str | None = None  # a SMALL_TALK_REPLIES key: answered with that line, not searched
    language: str | None = None  # a language code: not English, not searched

    @property
    def searched(self) -> bool:
        """Whether the question goes to search at all."""
        return self.small_talk is None and self.language is None


@functools.lru_cache(maxsize=1024)
def triage(question: str) -> Triage:
    """Emergency, small talk and language of one question (already cleaned by the engine).

    Kept for the last questions seen: one question is triaged more than once (a batch's `Engine.prepare`
    and its `ask`, each follow-up's earlier turns), and the answer depends on the text alone."""
    small_talk = small_talk_kind(question)
    if small_talk is not None:
        return Triage(small_talk=small_talk)
    emergency, situation = _emergency(question)
    return Triage(emergency=emergency, situation=situation, language=language_of(question))


def emergency_line(question: str) -> str | None:
    """The line a reply to `question` opens with when it sounds like an emergency (as `triage` decides); else None.
    What a page shows before the engine can answer; an engine's `Result.emergency` says the same."""
    kind = triage(question).emergency
    return EMERGENCY_LINES[kind] if kind else None


__all__ = ["Triage", "triage", "emergency_line", "emergency_kind", "emergency_situation", "small_talk_kind", "language_of", "not_english_message",
           "EMERGENCY_LINES", "EMERGENCY_SUBJECTS", "SMALL_TALK_REPLIES", "NOT_ENGLISH", "NOT_ENGLISH_NOTES"]
