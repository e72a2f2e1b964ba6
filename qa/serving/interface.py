"""What a page asks of an engine: the `AnswersQuestions` interface, and the article list it returns.

Two things satisfy it: `qa.serving.engine.Engine`, in the caller's process (the command
line, tests, benchmarks), and `qa.serving.service.EngineProcess`, the same engine in a
process of its own (the chat page). Both are opened one way, `Engine.open`:
the engine process calls it through qa/serving/startup.py, which builds what is
missing in the background first. The page (app.py, qa/serving/chat.py) is written
against this interface only, so it cannot tell the two apart, and tests give
it an in-process engine over the fake embedder.

Also the shape of a request to ask (`ask_request`, `ask_arguments`): the one type
check of every way in (`--jsonl`, the page's `/ask`, `POST /api/ask`).

No imports beyond the standard library, qa/errors.py and qa/serving/status.py: the page's
process reads this before (and without) loading the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

from qa.errors import QuestionError
from qa.serving.status import StartupStatus

if TYPE_CHECKING:  # for the annotations only: the page's process does not load the answering code for them
    from qa.answering.result import Result
    from qa.settings import Settings


@dataclass(frozen=True)
class ArticleInfo:
    """One indexed article, as the page lists it."""

    source: str
    title: str
    passages: int


@runtime_checkable
class AnswersQuestions(Protocol):
    """The engine as a page sees it; the same objects and errors (qa.errors.QAError) from either kind."""

    settings: Settings

    def ask(self, question: str, history: Sequence[str] = ()) -> Result:
        """Answer one question; `history`: the earlier questions of the conversation, oldest first."""
        ...

    def articles(self) -> list[ArticleInfo]:
        """The live index's articles, by title."""
        ...

    def built_at(self) -> str:
        """When the live index was built (ISO 8601)."""
        ...

    def generation(self) -> str:
        """The live index generation's name: a vote records which build answered."""
        ...

    def status(self) -> StartupStatus:
        """What answers now and, while something is prepared in the background, how far that is."""
        ...

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until questions can be asked (at once for an engine in this process)."""
        ...


def ask_request(request: object) -> tuple[str, list[str]]:
    """(question, history) of a request object {"question": "...", "history": ["...", ...]} (a line of
    `python -m qa ask --jsonl`, the body of POST /api/ask), or QuestionError saying what is wrong with its
    shape; other keys are ignored. The question's text is checked by `Engine.ask` (clean_question)."""
    if not isinstance(request, dict) or "question" not in request:
        raise QuestionError('expected a JSON object like {"question": "...", "history": ["..."]}')
    return ask_arguments(request["question"], request.get("history"))


def ask_arguments(question: object, history: object) -> tuple[str, list[str]]:
    """(question, history) when the question is text and the history a list of texts (None: none), else
    QuestionError: the one type check of every way in (the page's /ask, /api/ask, --jsonl)."""
    if not isinstance(question, str):
        raise QuestionError("The question must be text.")
    history = [] if history is None else history
    if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
        raise QuestionError("The history must be a list of earlier questions, and each must be text.")
    return question, history


__all__ = ["AnswersQuestions", "ArticleInfo", "ask_arguments", "ask_request"]
