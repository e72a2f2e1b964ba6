"""Reader of saved web pages (`.html`, `.htm`), as a browser saves them.

Owns: turning a page into an article. The main text is found by
trafilatura (the maintained extractor for exactly this: it drops
navigation, ads, scripts, cookie banners, comment sections, related-article
lists and footers); this module only maps its XML onto the article: `<head>`
-> section heading, `<p>` -> paragraph, `<list>`/`<item>` -> list items (a
nested list's items join their parent list), table rows -> list items with
cells joined by " | ", and the page's title.

Before extraction, anchors without `href` (named anchors that only mark a
place: `<h2><div><a name="x">Heading</a></div></h2>`) are unwrapped: trafilatura
reads them as links and drops the heading as a menu otherwise.

Title: the page's main heading (an `<h1>` its `<title>` or og:title begins
or ends with); else og:title or `<title>` without the site's name (a part
that names the site, by og:site_name or host name; of parts split by " | ",
the longest); else the article's first `<h1>`; else the file name.

Limits: what trafilatura keeps is what is read; a page whose article sits in
an unusual container may lose text, or keep a block of furniture. A short
line of plain text that is not a sentence ("Share", "Author, Article and
Disclosure Information") is a label, not text, and is dropped; a short line
that is all bold (a question included) is a heading. A page with no paragraph of prose (a form, an
index page, an empty page) is refused with "no article text found".
"""

from __future__ import annotations

import re

from qa.reading.article import Article, ArticleBuilder, clean_heading, tidy
from qa.reading.text import split_sentences
from qa.settings import Settings

_SENTENCE_END = re.compile(r"[.!?…][\"”’)\]]*$")
_SEPARATOR = re.compile(r"\s+(?:[|•·»]|-|–|—|::)\s+")
_INLINE = {"hi", "ref", "lb", "span"}


def read_html(data: bytes, source: str, settings: Settings) -> Article:
    import trafilatura
    from lxml import etree

    if not data.strip():
        raise ValueError("empty file")
    tree = trafilatura.load_html(data)
    if tree is None:
        raise ValueError("not an HTML page (no markup could be parsed)")
    for anchor in list(tree.iter("a")):
        if not anchor.get("href"):
            anchor.drop_tag()  # a place marker, not a link
    heading_titles = _heading_and_titles(tree)
    xml = trafilatura.extract(
        tree, output_format="xml", with_metadata=True, include_formatting=True, include_comments=False,
        include_tables=True, include_images=False, include_links=False, deduplicate=False)
    if not xml:
        raise ValueError("no article text found (a form, an index page or an empty page?)")
    doc = etree.fromstring(xml.encode("utf-8"))
    main = doc.find("main")
    if main is None or not _has_prose(main, settings):
        raise ValueError("no article text found (no paragraph of prose: a form, an index page or an empty page?)")
    builder = ArticleBuilder(source, settings, back_matter_ends_at_heading=True)
    title = _page_title(*heading_titles, doc)
    if title:
        builder.set_title(title)
    _walk(main, builder, in_quote=False)
    return builder.build()


def _has_prose(main, settings: Settings) -> bool:
    """At least two sentences of `settings.prose_sentence_min_words` words or more, ending as sentences do."""
    sentences = [s for p in main.iter("p", "item") for s in split_sentences(_text(p))]
    return sum(1 for s in sentences if len(s.split()) >= settings.prose_sentence_min_words and _SENTENCE_END.search(s)) >= 2


def _walk(element, builder: ArticleBuilder, in_quote: bool) -> None:
    """The article's blocks in reading order."""
    children = list(element)
    if (element.text or "").strip():
        _paragraph(element.text, builder, bold=False, in_quote=in_quote)
    for position, child in enumerate(children):
        tag = child.tag
        if tag == "head":
            builder.heading(_text(child))
        elif tag == "p":
            after = children[position + 1].tag if position + 1 < len(children) else None
            _paragraph(_text(child), builder, bold=_all_bold(child), in_quote=in_quote, before_list=after == "list")
        elif tag == "list":
            _list(child, builder)
            builder.end_list()
        elif tag == "table":
            for row in child.iter("row"):
                cells = [_text(cell) for cell in row.iter("cell")]
                builder.item(" | ".join(cell for cell in cells if cell))
            builder.end_list()
        elif tag == "quote":
            _walk(child, builder, in_quote=True)
        elif tag == "code":
            builder.paragraph(_text(child))
        elif tag in _INLINE:
            _paragraph(_text(child), builder, bold=child.get("rend") == "#b", in_quote=in_quote)
        elif tag != "graphic":
            _walk(child, builder, in_quote)
        if (child.tail or "").strip():
            _paragraph(child.tail, builder, bold=False, in_quote=in_quote)


def _paragraph(text: str, builder: ArticleBuilder, bold: bool, in_quote: bool, before_list: bool = False) -> None:
    text = tidy(text)
    if not text:
        return
    words = len(text.split())
    heading_like = words <= builder.settings.bold_heading_max_words and not text.endswith((".", ",", ":", ";"))
    if bold and heading_like and not in_quote and not before_list:
        builder.heading(text)  # <p><b>How fast does it work?</b></p>: a heading in all but name
        return
    if words <= builder.settings.label_max_words and not _SENTENCE_END.search(text) and not text.endswith(":"):
        if before_list:
            builder.paragraph(text)  # the line that leads into a list
        return  # a label: a button, a byline, a caption ("Summary", "Share this article")
    builder.paragraph(text)


def _list(element, builder: ArticleBuilder) -> None:
    for item in element.iterchildren("item"):
        nested = [child for child in item if child.tag == "list"]
        own = "".join(_text_without(item, nested))
        builder.item(tidy(own))
        for sub in nested:
            _list(sub, builder)


def _text_without(element, skip) -> list[str]:
    parts = [element.text or ""]
    for child in element:
        if child not in skip:
            parts.append("".join(child.itertext()))
        parts.append(child.tail or "")
    return parts


def _text(element) -> str:
    return tidy(" ".join(element.itertext()) if element.tag == "row" else "".join(element.itertext()))


def _all_bold(paragraph) -> bool:
    children = list(paragraph)
    return (len(children) == 1 and children[0].tag == "hi" and children[0].get("rend") == "#b"
            and not (paragraph.text or "").strip() and not (children[0].tail or "").strip())


def _heading_and_titles(tree) -> tuple[str, list[str], set[str]]:
    """The page's main heading (an <h1> its <title> or og:title begins or ends with), its titles, its site names."""
    titles = [tidy(t) for t in tree.xpath("//meta[@property='og:title']/@content | //title/text()") if tidy(t)]
    sites = {_letters(t) for t in tree.xpath("//meta[@property='og:site_name']/@content | "
                                             "//meta[@name='application-name']/@content") if _letters(t)}
    for h1 in tree.iter("h1"):
        heading = clean_heading(h1.text_content())
        if len(heading.split()) >= 2 and any(t.lower().startswith(heading.lower()) or
                                             t.lower().endswith(heading.lower()) for t in titles):
            return heading, titles, sites
    return "", titles, sites


def _page_title(heading: str, titles: list[str], sites: set[str], doc) -> str:
    """The main heading; else og:title or <title> without the site's name ("How X Works | Site")."""
    if heading:
        return heading
    sites = sites | {_letters(doc.get("sitename") or ""), _letters((doc.get("hostname") or "").rsplit(".", 1)[0])}
    sites.discard("")
    for title in titles:
        parts = _SEPARATOR.split(title)
        kept = [part for part in parts if _letters(part) not in sites]
        if len(kept) > 1 and "|" in title:
            kept = [max(kept, key=len)]  # "Section | How X Works | Site": the longest part is the article's
        if kept:
            return " - ".join(kept) if len(kept) < len(parts) else title
    for head in doc.iter("head"):
        if head.get("rend") == "h1":
            return tidy("".join(head.itertext()))
    return ""


def _letters(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower().removeprefix("www."))
