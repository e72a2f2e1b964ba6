"""The reply a person sees, as HTML: pure functions from the engine's objects to markup.

Owns the wording and markup of everything the chat page shows about an
answer (`format_reply`): first the line to call the emergency number when the
question sounds like an emergency, then the answer sentence (with the
sentence it points back to, or inside its whole list) + numbered citation,
collapsible sources with a plain label each ("strong match") and the answer
highlighted, their scores behind a toggle; or a plain "not found" with the
articles' titles; or the short reply to a greeting or thanks. Also the
articles panel, the start-up panel (`format_status`: the stage, its sentence,
a progress bar), the reply to a question asked before anything answers
(`format_waiting`) and the feedback line.

Takes a `qa.answering.result.Result`, a `qa.serving.status.StartupStatus` or `qa.serving.interface.ArticleInfo`s
and returns a string: no engine, no page, no state, so its tests run on results
of an engine over the fake embedder, in the fast tier.

Safety: every piece of text that comes from the person or from the articles
goes through `escape_text()` (html.escape plus entity-encoding of Markdown
syntax) before it is put into a reply, so markup shows as the text typed.
Gradio's chatbot sanitizes HTML as well, but the page does not rely on it.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

from qa.answering.result import MAY_HELP, Passage, Result
from qa.serving.interface import ArticleInfo
from qa.serving.status import FAILED, READY, STAGE_TITLES, StartupStatus, waiting_note
from qa.answering.triage import emergency_line

# The look of the classes written here (and of the page around them): app.py hands it to Gradio.
STYLES = (Path(__file__).with_name("render.css")).read_text(encoding="utf-8")
# A list answer shows this many items at most before "N more items" (a table read as a list can be long).
LIST_ITEMS_SHOWN = 12

# Markdown would act on these even inside escaped text; as character
# references they are shown as themselves and mean nothing to the renderer.
_MARKDOWN_CHARS = {c: f"&#{ord(c)};" for c in "\\`*_[]{}()#+-!|~$:="}
_LINE_BREAKS = re.compile(r"[ \t]*(?:\r\n|\r|\n)\s*")


def escape_text(text: str) -> str:
    """Untrusted text as inert characters for Markdown + HTML; `html.unescape` gives it back."""
    return "".join(_MARKDOWN_CHARS.get(ch) or html.escape(ch, quote=True) for ch in text)


def text_html(text: str) -> str:
    """Untrusted text for a reply: escaped, with its line breaks as <br> (so no blank lines,
    and the reply stays one HTML block that Markdown leaves alone)."""
    return _LINE_BREAKS.sub("<br>", escape_text(text))


def highlight(text: str, sentence: str | None) -> str:
    """The passage as HTML, with the answer sentence (when in it) in <mark>."""
    at = text.find(sentence) if sentence else -1
    if at < 0:
        return text_html(text)
    end = at + len(sentence)
    return f"{text_html(text[:at])}<mark>{text_html(sentence)}</mark>{text_html(text[end:])}"


def format_match(passage: Passage) -> str:
    """The passage's plain match label ("strong match", "partial match", "weak match"), styled by its kind."""
    kind = passage.match.split()[0]  # "strong" | "partial" | "weak"
    return f'<span class="qa-match qa-match-{kind}">{text_html(passage.match)}</span>'


def format_source(number: int, passage: Passage) -> str:
    """One numbered source: title, section, its plain match label, and the passage text."""
    return (f'<div class="qa-source"><div class="qa-source-head"><b>[{number}]</b> {text_html(passage.title)}'
            f' <span class="qa-section">› {text_html(passage.section)}</span> {format_match(passage)}</div>'
            f'<div class="qa-passage">{highlight(passage.text.strip(), passage.answer)}</div></div>')


def format_scores(passages: Sequence[Passage], result: Result) -> str:
    """The numbers behind the labels, folded away: for the curious, and for debugging."""
    rows = "".join(f'<li class="qa-score">[{number}] score {p.score:.4f} · similarity {p.dense:.2f} · '
                   f"keywords {p.lexical:.2f}</li>" for number, p in enumerate(passages, 1))
    return (f'<details class="qa-numbers"><summary>Scores</summary><ul>{rows}</ul>'
            f'<p class="qa-score">How clearly the articles answer: {result.margin:+.2f} (the refusal '
            f"model's log-odds over its bar; below 0 it says “not found”)</p></details>")


def format_articles_list(articles: Iterable[ArticleInfo]) -> str:
    return "<ul>" + "".join(f"<li>{text_html(a.title)}</li>" for a in articles) + "</ul>"


def format_emergency(line: str | None) -> str:
    """The line to call the emergency number, first in the reply, when the question sounds like one."""
    return f'<p class="qa-emergency" role="alert"><b>{text_html(line)}</b></p>' if line else ""


def format_answer(result: Result, citation: str) -> str:
    """The answer sentence, with the sentence it points back to before it, or inside its whole list.

    Everything here is article text, verbatim; the answer is marked when text around it is shown."""
    answer, context = result.answer, result.context
    if context.list is None:
        before = f'<span class="qa-before">{text_html(context.before)}</span> ' if context.before else ""
        sentence = f"<mark>{text_html(answer)}</mark>" if context.before else text_html(answer)
        return f'<p class="qa-answer">{before}{sentence}{citation}</p>'
    listed = context.list
    lead = (f'<p class="qa-lead">{highlight(listed.lead, answer if answer in listed.lead else None)}</p>'
            if listed.lead else "")
    hit = next((i for i, item in enumerate(listed.items) if answer in item), -1)
    shown = max(LIST_ITEMS_SHOWN, hit + 1)
    items = [f"<li>{highlight(item, answer if i == hit else None)}</li>" for i, item in enumerate(listed.items)]
    more = (f'<details class="qa-more"><summary>{len(items) - shown} more items</summary>'
            f'<ul>{"".join(items[shown:])}</ul></details>' if len(items) > shown else "")
    return (f'<div class="qa-answer qa-list-answer">{lead}<ul>{"".join(items[:shown])}</ul>{more}'
            f'<p class="qa-cite">{citation.strip()}</p></div>')


def format_reply(result: Result, articles: Sequence[ArticleInfo] = ()) -> str:
    """The reply for one engine result: the emergency line when there is one, then the answer +
    citation + collapsible sources; or not found; or the short reply to small talk."""
    emergency = format_emergency(result.emergency)
    if result.kind in ("small_talk", "not_english"):
        return f'<div class="qa-reply">{emergency}<p>{text_html(result.message)}</p></div>'
    if result.kind == "may_help":  # on the subject, not answered: the closest passages, shown open
        offered = [p for p in result.passages if p.match == MAY_HELP]
        sources = "".join(format_source(i, p) for i, p in enumerate(offered, 1))
        return f'<div class="qa-reply">{emergency}<p>{text_html(result.message)}</p>{sources}</div>'
    if not (result.found and result.answer):
        covered = (f"<p>The articles cover:</p>{format_articles_list(articles)}"
                   "<p>Try asking in words these articles would use.</p>" if articles else "")
        return f'<div class="qa-reply">{emergency}<p>{text_html(result.message)}</p>{covered}</div>'
    passages = list(result.passages)
    source = result.answer_source
    if source is not None and source not in passages:  # it is always among the hits today; stay right anyway
        passages.insert(0, source)
    citation = f" <sup>[{passages.index(source) + 1}]</sup>" if source is not None else ""
    origin = (f'<p class="qa-origin">From <i>{text_html(source.title)}</i> — {text_html(source.section)}'
              f' {format_match(source)}</p>' if source is not None else "")
    searched = (f'<p class="qa-query">Read as a follow-up: “{text_html(result.query)}”</p>'
                if result.query != result.question else "")
    if result.expansions:
        words = "; ".join(f"{text_html(e.typed)} → {text_html(', '.join(e.adds))}" for e in result.expansions)
        searched += f'<p class="qa-query">Also searched with the articles’ words: {words}</p>'

    sources = "".join(format_source(i, p) for i, p in enumerate(passages, 1))
    return (f'<div class="qa-reply">{emergency}{format_answer(result, citation)}{origin}'
            f"<details><summary>Sources ({len(passages)} passages)</summary>{searched}{sources}"
            f"{format_scores(passages, result)}</details></div>")


def format_message(text: str) -> str:
    """A plain notice (prompt, refusal, error) as a reply."""
    return f'<div class="qa-reply"><p>{text_html(text)}</p></div>'


def format_articles_panel(articles: Sequence[ArticleInfo], built_at: str) -> str:
    rows = "".join(f"<tr><td>{text_html(a.title)}</td><td class='qa-num'>{a.passages}</td></tr>" for a in articles)
    return (f'<div class="qa-panel"><h3>Indexed articles</h3>'
            f"<table><thead><tr><th>Article</th><th class='qa-num'>Passages</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
            f'<p class="qa-built">Index built {text_html(format_time(built_at))}</p></div>')


def format_time(iso: str) -> str:
    """'2026-11-22T02:49:44+00:00' -> '2026-11-22 02:49 UTC'; anything unparsable as it is."""
    try:
        moment = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return iso or "at an unknown time"
    if moment.tzinfo is not None:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M")


def format_progress(status: StartupStatus) -> str:
    """The stage, the status's sentence and, while something runs, a progress bar with the fraction done and
    the time left (a bar without a value, which browsers show as busy, while neither is known yet)."""
    head = f'<p class="qa-stage"><b>{text_html(STAGE_TITLES.get(status.stage, status.stage))}</b></p>'
    bar = ""
    if status.stage not in (READY, FAILED):
        known = status.fraction is not None
        value = f' value="{status.fraction:.3f}"' if known else ""
        done = [f"{status.fraction:.0%} done"] if known else []
        done += [f"about {format_seconds(status.seconds_left)} left"] if status.seconds_left else []
        bar = (f'<div class="qa-progress"><progress max="1"{value} aria-label="start-up progress"></progress>'
               f'<span class="qa-progress-text">{text_html(" · ".join(done) or "working…")}</span></div>')
    return f'{head}<p class="qa-status-text">{text_html(status.message)}</p>{bar}'


def format_seconds(seconds: float) -> str:
    """45 -> '45 s', 130 -> '2 min 10 s'."""
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60} s".replace(" 0 s", "")


def format_status(status: StartupStatus) -> str:
    """The start-up panel: the stage, what answers now, and what is still being prepared."""
    return (f'<div class="qa-status" data-stage="{html.escape(status.stage)}" role="status" aria-live="polite">'
            f"{format_progress(status)}</div>")


def format_waiting(status: StartupStatus, question: str) -> str:
    """The reply to a question asked before anything answers: the emergency line when the question sounds
    like one (the engine's triage, qa/answering/triage.py), then what is happening and that the answer will follow."""
    emergency = format_emergency(emergency_line(question))
    return (f'<div class="qa-reply qa-waiting">{emergency}{format_progress(status)}'
            f'<p>{text_html(waiting_note(status))}</p></div>')


def with_note(reply: str, note: str | None) -> str:
    """The reply with a note at its end (inside its block), e.g. that answers will improve shortly."""
    if not note or not reply.endswith("</div>"):
        return reply
    return f'{reply[:-len("</div>")]}<p class="qa-improving">{text_html(note)}</p></div>'


def feedback_status(message: str) -> str:
    return f'<p class="qa-feedback" role="status">{text_html(message)}</p>' if message else ""


__all__ = ["escape_text", "text_html", "highlight", "format_reply", "format_answer", "format_source", "format_match",
           "format_scores", "format_emergency", "format_message", "format_articles_list", "format_articles_panel",
           "format_time", "format_status", "format_progress", "format_seconds", "format_waiting", "with_note",
           "feedback_status", "LIST_ITEMS_SHOWN", "STYLES"]
