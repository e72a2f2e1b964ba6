"""What the chat page says about its own corpus: its title, the line under it, its example questions.

Owns the page's words. Each comes from the settings when set (QA_PAGE_TITLE,
QA_PAGE_INTRO, QA_PAGE_EXAMPLES, or app.py's --title / --intro / --example),
else from the corpus folder, so a page over other articles never speaks of
the seed articles' topic:

- examples: one question per article from the question bank
  (corpus/questions/), the one closest in words to the article's file name,
  which names its topic ("naloxone-and-ketamine.txt" -> "does naloxone
  reverse ketamine"); articles with the most example questions first, as
  the best covered. Without a bank: the article headings that are
  questions ("What is Naloxone?");
- title and intro: neutral lines that name no topic.

Read from files only, no model and no index: the page is built when the app
starts, before the engine has loaded.

Limits: bank questions of an article no longer in the folder are left out.
Headings are read from the first `HEADING_FILES` article files only, so a
large corpus without a bank does not hold up the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qa.models.question_bank import load_bank
from qa.settings import Settings
from qa.reading.text import ANAPHORA, content_terms, words

TITLE = "Ask the articles"
INTRO = ("Ask a question in English. The answer is a sentence quoted from the articles listed here, "
         "with the passage it comes from.")
EXAMPLES = 4  # buttons under the chat: enough to show the range, few enough to read at a glance
HEADING_FILES = 20  # article files read for question headings when there is no question bank


@dataclass(frozen=True)
class PageText:
    title: str
    intro: str
    examples: tuple[str, ...]


def page_text(settings: Settings) -> PageText:
    """The page's title, intro line and example questions: the settings', else derived from the corpus."""
    examples = settings.page_examples or tuple(example_questions(Path(settings.corpus_dir), settings))
    return PageText(settings.page_title or TITLE, settings.page_intro or INTRO, tuple(examples))


def example_questions(corpus_dir: Path, settings: Settings, count: int = EXAMPLES) -> list[str]:
    """Up to `count` questions, one per article: from the question bank, else from question headings."""
    return bank_examples(corpus_dir, count) or heading_examples(corpus_dir, settings, count)


def bank_examples(corpus_dir: Path, count: int = EXAMPLES) -> list[str]:
    """Per article, its bank question closest in words to its file name; best covered articles first."""
    entries, _ = load_bank(corpus_dir)
    by_article: dict[str, list[str]] = {}
    for entry in entries:
        if (Path(corpus_dir) / entry.source).is_file():
            by_article.setdefault(entry.source, []).append(entry.question)
    chosen = []
    for source in sorted(by_article, key=lambda s: (-len(by_article[s]), s)):
        topic = set(content_terms(Path(source).stem.replace("-", " ").replace("_", " ")))

        def closeness(question: str) -> tuple[float, int, str]:
            terms = set(content_terms(question))
            return -len(terms & topic) / max(1, len(terms | topic)), len(question), question
        chosen.append(min(by_article[source], key=closeness))
    return chosen[:count]


def heading_examples(corpus_dir: Path, settings: Settings, count: int = EXAMPLES) -> list[str]:
    """The first heading that is a question in each of the first articles."""
    from qa.reading.corpus import corpus_files, file_type, read_article  # the readers import their libraries

    try:
        files = [path for path in corpus_files(corpus_dir) if file_type(path.name)][:HEADING_FILES]
    except Exception:  # noqa: BLE001 - no folder: no examples; the engine reports the folder itself
        return []
    chosen = []
    for path in files:
        try:
            article = read_article(path.read_bytes(), path.name, settings)
        except (OSError, ValueError):
            continue
        question = next((s.heading for s in article.sections if s.heading.rstrip().endswith("?")
                         and not ANAPHORA & set(words(s.heading))), None)  # "How does it work?" needs its article
        if question and question not in chosen:
            chosen.append(question)
        if len(chosen) == count:
            break
    return chosen


__all__ = ["PageText", "page_text", "example_questions", "bank_examples", "heading_examples", "TITLE", "INTRO"]
