"""Articles as they really come: saved web pages, PDFs, and plain text that is not clean web text.

Real files built in tmp_path (PDFs made with fpdf2, see tests/pdfs.py) and three real saved
pages (tests/fixtures/web/); the question-per-page test uses the real model and a real index.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import pdfs
from conftest import CORPUS
from qa.reading.chunking import chunk_article
from qa.reading.corpus import ARTICLE_SUFFIXES, READERS, FileType, corpus_hashes, load_corpus, read_article
from qa.reading.formats.text import read_text
from qa.settings import Settings

WEB = Path(__file__).parent / "fixtures" / "web"

PAGES = {
    "healthline.com.fat.html": (
        "The 10 Best Ways to Measure Your Body Fat Percentage",
        ["Introduction", "1. Skinfold Calipers", "2. Body Circumference Measurements",
         "3. Dual-Energy X-ray Absorptiometry (DXA)", "4. Hydrostatic Weighing",
         "5. Air Displacement Plethysmography (Bod Pod)", "6. Bioelectrical Impedance Analysis (BIA)",
         "7. Bioimpedance Spectroscopy (BIS)", "8. Electrical Impedance Myography (EIM)", "9. 3-D Body Scanners",
         "10. Multi-Compartment Models (the Gold Standard)", "Which Method Is Best for You?"],
        ["related stories", "Read this next", "OUR BRANDS", "Newsletter", "ADVERTISEMENT", "Privacy",
         "cookie", "Medically reviewed", "Share on", "All rights reserved", "Evidence Based"]),
    "medicalnewstoday.com.318674.html": (
        "How does the brain turn unconscious information into conscious thought?",
        ["Introduction", "The hypothesis", "Examining the ‘a-ha!’ moment", "‘A-ha’ moment similar to making a decision"],
        ["Latest news", "Related Coverage", "OUR BRANDS", "Newsletter", "ADVERTISEMENT", "Sign up", "Privacy",
         "Medically reviewed", "Share on", "All rights reserved"]),
    "acpjournals.org.3075.html": (
        "The Effect of Influenza Vaccination for the Elderly on Hospitalization and Mortality",
        ["Background", "Objective", "Design", "Setting", "Participants", "Intervention", "Measurements", "Results",
         "Limitation", "Conclusion", "Primary Funding Source"],
        ["Crossref", "Google Scholar", "PMID", "Subscribe", "Author, Article and Disclosure Information",
         "Corresponding Author", "Disclosures"]),
}
# What a page's markup, scripts and styles look like when they leak into text.
MARKUP = re.compile(r"<[a-zA-Z/!][^>]*>|function\s*\(|window\.|var \w+\s*=|\{\s*\"|[{}]|&[a-z]+;|https?://")


def passages(article) -> list[str]:
    return [c.index_text for c in chunk_article(article, Settings())]


def all_text(article) -> str:
    return "\n".join(passages(article))


def read_file(path: Path):
    return read_article(path.read_bytes(), path.name, Settings())


# --------------------------------------------------------------------------- one place decides file types


def test_the_reader_table_is_the_only_list_of_file_types(tmp_path):
    assert set(ARTICLE_SUFFIXES) == set(READERS) >= {".txt", ".md", ".html", ".htm", ".pdf"}
    (tmp_path / "notes.rst").write_text("Notes Title\n\nA sentence about naloxone nasal spray.\n")
    (tmp_path / "page.html").write_bytes((WEB / "medicalnewstoday.com.318674.html").read_bytes())
    assert "notes.rst" not in corpus_hashes(tmp_path) and "page.html" in corpus_hashes(tmp_path)
    assert "not an article file" in load_corpus(tmp_path, Settings()).skipped[0].reason
    # a new type is one reader and one line of the table
    READERS[".rst"] = FileType("restructuredtext", read_text, True)
    try:
        loaded = load_corpus(tmp_path, Settings())
        assert [a.source for a in loaded.articles] == ["notes.rst", "page.html"]
        assert "notes.rst" in corpus_hashes(tmp_path)
    finally:
        del READERS[".rst"]


# --------------------------------------------------------------------------- saved web pages


@pytest.fixture(scope="module")
def pages():
    return {name: read_file(WEB / name) for name in PAGES}


@pytest.mark.parametrize("name", PAGES)
def test_page_title_and_headings_as_sections(pages, name):
    title, headings, _ = PAGES[name]
    article = pages[name]
    assert article.title == title
    assert [s.heading for s in article.sections] == headings


@pytest.mark.parametrize("name", PAGES)
def test_no_markup_script_or_menu_text_in_any_passage(pages, name):
    raw = (WEB / name).read_text(encoding="utf-8", errors="replace")
    text = all_text(pages[name])
    assert MARKUP.search(raw) and not MARKUP.search(text), MARKUP.search(text)
    for phrase in PAGES[name][2]:
        assert phrase in raw, f"the saved page should contain {phrase!r}, or the test proves nothing"
        assert phrase.lower() not in text.lower(), phrase


def test_page_lists_stay_lists_and_labels_go(pages):
    fat = pages["healthline.com.fat.html"]
    which = next(s for s in fat.sections if s.heading == "Which Method Is Best for You?")
    questions = next(b for b in which.blocks if b.is_list)
    assert questions.lead == "Here are several questions that may help you decide:"
    assert questions.items[:2] == ("What’s the purpose of assessing your body fat percentage?",
                                   "How important is high accuracy?")
    skinfold = fat.sections[1]
    assert any(item.startswith("Advantages: Skinfold calipers are very affordable") for b in skinfold.blocks
               for item in b.items)
    # the "Summary" label of each summary box is not a passage line; the summary itself is
    assert not any(b.lead == "Summary" for s in fat.sections for b in s.blocks)
    assert any(b.lead.startswith("Estimating body fat percentage with skinfold calipers") for b in skinfold.blocks)


def test_a_journal_page_loses_its_references_and_disclosures(pages):
    text = all_text(pages["acpjournals.org.3075.html"])
    assert "no evidence indicated that vaccination reduced hospitalizations or mortality" in text
    for phrase in ["Peasah SK", "doi:10.", "Influenza cost and cost-effectiveness studies globally", "Drafting of",
                   "Editors' Disclosures"]:
        assert phrase not in text, phrase


def test_extraction_is_deterministic(pages):
    for name in PAGES:
        assert read_file(WEB / name) == pages[name]


def _page(body: str, title: str = "Naloxone Basics | Example Health") -> bytes:
    return (f"<!DOCTYPE html><html><head><title>{title}</title><script>var tracking = {{id: 1}};</script>"
            "<style>body {color: red}</style></head><body>"
            "<nav><ul><li><a href='/'>Home</a></li><li><a href='/news'>News</a></li><li><a href='/a'>About us</a>"
            "</li></ul></nav><div id='cookie-banner'>We use cookies to improve your experience. <button>Accept"
            f"</button></div>{body}<footer><p>Copyright 2024 Example Health. All rights reserved.</p>"
            "<a href='/privacy'>Privacy policy</a></footer></body></html>").encode()


def test_a_small_page_keeps_headings_lists_and_bold_headings_and_drops_furniture():
    article = read_article(_page(
        "<article><h1>Naloxone Basics</h1>"
        "<p>Naloxone is a medicine that rapidly reverses an opioid overdose. It attaches to opioid receptors and "
        "blocks the effects of other opioids.</p>"
        "<h2>How is naloxone given?</h2><p>There are two forms that people without medical training can use:</p>"
        "<ul><li>a prefilled nasal spray given into one nostril;</li><li>an injection into the thigh muscle.</li></ul>"
        "<p><strong>Side effects</strong></p><p>Naloxone can cause sudden withdrawal symptoms in people who are "
        "dependent on opioids, such as nausea, sweating and a racing heart.</p>"
        "<h3>References</h3><ol><li>Smith J, Doe A. Naloxone in the community. Lancet. 2019;393:1234-40.</li></ol>"
        "</article><aside><h3>Related articles</h3><ul><li><a href='/x'>Ketamine explained</a></li>"
        "<li><a href='/y'>Opioids and you</a></li></ul></aside>"), "naloxone.html", Settings())
    assert article.title == "Naloxone Basics"
    assert [s.heading for s in article.sections] == ["Introduction", "How is naloxone given?", "Side effects"]
    given = article.sections[1].blocks
    assert given[0].lead == "There are two forms that people without medical training can use:"
    assert given[0].items == ("a prefilled nasal spray given into one nostril;", "an injection into the thigh muscle.")
    text = all_text(article)
    for furniture in ["Home", "About us", "cookies", "Accept", "tracking", "color", "Copyright", "Privacy",
                      "Related articles", "Ketamine explained", "Smith J"]:
        assert furniture not in text, furniture


def test_a_blog_post_in_windows_1252_loses_its_byline_share_buttons_and_comments():
    page = """<!DOCTYPE html><html><head><meta charset="windows-1252">
    <title>Ketamine and Depression – Clinic Blog</title></head><body>
    <header><nav><a href="/">Home</a> <a href="/blog">Blog</a></nav></header>
    <main><article class="post"><h1 class="entry-title">Ketamine and Depression</h1>
    <div class="entry-meta">Posted on March 3, 2023 by Dr. Jane Roe</div><div class="entry-content">
    <p>Ketamine is an anaesthetic that doctors also use for depression that has not responded to other
    treatment. It works differently from common antidepressants…</p>
    <p><strong>How fast does it work?</strong></p>
    <p>Many patients report that their mood improves within hours of an infusion, while ordinary
    antidepressants take weeks.</p>
    <table><tr><th>Form</th><th>Dose</th></tr><tr><td>Infusion</td><td>0.5 mg/kg over 40 minutes</td></tr>
    <tr><td>Nasal spray</td><td>56 or 84 mg</td></tr></table>
    <p>The café study found the effect lasted about a week after one infusion in most of the patients.</p>
    <div class="sharedaddy"><h3>Share this:</h3><ul><li><a href="/tw">Twitter</a></li>
    <li><a href="/fb">Facebook</a></li></ul></div></div></article>
    <div id="comments"><h2>3 thoughts on “Ketamine and Depression”</h2><ol class="commentlist"><li>
    <p>Great article, it helped me a lot with my own treatment decisions, thanks so much!</p></li></ol>
    <div id="respond"><h3>Leave a Reply</h3><form><textarea></textarea><input type="submit" value="Post">
    </form></div></div></main><footer><p>© 2023 Clinic. All rights reserved.</p></footer></body></html>"""
    article = read_article(page.encode("cp1252"), "blog.html", Settings())
    assert article.title == "Ketamine and Depression"
    assert [s.heading for s in article.sections] == ["Introduction", "How fast does it work?"]
    assert article.sections[1].blocks[1].items == ("Form | Dose", "Infusion | 0.5 mg/kg over 40 minutes",
                                                   "Nasal spray | 56 or 84 mg")
    text = all_text(article)
    assert "antidepressants…" in text and "The café study" in text
    for furniture in ["Posted on", "Jane Roe", "Share", "Twitter", "thoughts on", "Great article", "Leave a Reply",
                      "All rights reserved", "Home"]:
        assert furniture not in text, furniture


@pytest.mark.parametrize("title, site, expected", [
    ("What Naloxone Does | Example Health", None, "What Naloxone Does"),
    ("Example Health | What Naloxone Does", None, "What Naloxone Does"),
    ("Drugs | What Naloxone Does | Example Health", None, "What Naloxone Does"),
    ("What Naloxone Does - Example Health", "Example Health", "What Naloxone Does"),
    ("Ketamine – What You Need to Know", None, "Ketamine – What You Need to Know"),  # a dash inside a title
])
def test_without_a_main_heading_the_title_tag_gives_the_title_without_the_site_name(title, site, expected):
    page = _page("<div class='content'><p>Naloxone is a medicine that rapidly reverses an opioid overdose in a few "
                 "minutes.</p><p>It is safe to give even when you are not sure that someone took opioids.</p></div>",
                 title=title)
    if site:
        page = page.replace(b"</head>", f"<meta property='og:site_name' content='{site}'></head>".encode())
    assert read_article(page, "page.htm", Settings()).title == expected


@pytest.mark.parametrize("body", [
    "<form action='/login'><label>Email</label><input name='email'><label>Password</label>"
    "<input type='password'><button>Sign in</button></form>",
    "<h1>All articles</h1><ul>" + "".join(f"<li><a href='/a{i}'>Article number {i} about a health topic</a></li>"
                                          for i in range(40)) + "</ul>",
    "",
])
def test_a_page_with_no_article_is_skipped_with_a_warning(tmp_path, body):
    (tmp_path / "good.txt").write_text("Good Title\n\nA sentence about naloxone.\n")
    (tmp_path / "page.html").write_bytes(_page(body))
    loaded = load_corpus(tmp_path, Settings())
    assert [a.source for a in loaded.articles] == ["good.txt"]
    assert "no article text found" in loaded.skipped[0].reason


# --------------------------------------------------------------------------- PDFs


@pytest.fixture(scope="module")
def pdf_article(tmp_path_factory):
    path = pdfs.article_pdf(tmp_path_factory.mktemp("pdf") / "bystanders.pdf")
    return read_file(path)


def test_pdf_title_headings_and_paragraphs(pdf_article):
    assert pdf_article.title == pdfs.TITLE
    assert [s.heading for s in pdf_article.sections] == pdfs.HEADINGS
    background, results = pdf_article.sections
    # lines re-flowed into one paragraph each, a paragraph that crosses a page break included
    assert len(background.blocks) == 8 and len(results.blocks) == 10
    assert all(b.lead.endswith("waiting for the ambulance.") for b in background.blocks)
    assert any(pdfs.ANSWER in b.lead for b in results.blocks)  # "symp-" + "toms" joined
    assert any("The dose-dependent effect" in b.lead for b in results.blocks)  # a compound keeps its hyphen


def test_pdf_running_header_footer_and_page_numbers_are_gone(tmp_path, pdf_article):
    import pypdf

    raw = "\n".join(page.extract_text() for page in pypdf.PdfReader(pdfs.article_pdf(tmp_path / "x.pdf")).pages)
    text = all_text(pdf_article)
    for furniture in [pdfs.RUNNING_HEADER, pdfs.RUNNING_FOOTER, "Page 2 of 3", "Vol 12"]:
        assert furniture in raw, furniture
        assert furniture not in text, furniture
    assert not re.search(r"Page \d", text)


def test_scanned_encrypted_and_corrupt_pdfs_are_skipped_with_the_reason_and_the_build_goes_on(tmp_path):
    pdfs.article_pdf(tmp_path / "good.pdf")
    pdfs.scanned_pdf(tmp_path / "scan.pdf")
    pdfs.article_pdf(tmp_path / "locked.pdf", password="secret")
    pdfs.article_pdf(tmp_path / "owner-only.pdf", password="")  # restricted, but opens without a password
    (tmp_path / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20)
    (tmp_path / "truncated.pdf").write_bytes((tmp_path / "good.pdf").read_bytes()[:2500])
    (tmp_path / "binary.html").write_bytes(bytes(range(256)) * 40)
    loaded = load_corpus(tmp_path, Settings())
    assert [a.source for a in loaded.articles] == ["good.pdf"]  # owner-only.pdf: the same text, read once
    reasons = {s.source: s.reason for s in loaded.skipped}
    assert "no text layer" in reasons["scan.pdf"]
    assert "encrypted" in reasons["locked.pdf"] and "password" in reasons["locked.pdf"]
    assert reasons["owner-only.pdf"] == "same text as good.pdf"
    assert "not a readable PDF" in reasons["corrupt.pdf"]
    assert "not a readable PDF" in reasons["truncated.pdf"]
    assert reasons["binary.html"]
    assert set(loaded.hashes) == set(reasons) | {"good.pdf"}  # every file is hashed: a fixed file is rebuilt


# --------------------------------------------------------------------------- plain text that is not clean web text

PAPER_TITLE = ("Intranasal naloxone administered by trained bystanders in community settings: a multicentre "
               "observational cohort study of opioid overdose reversal, time to response and adverse events in "
               "three European cities")
BACKGROUND = ("Opioid overdose remains a leading cause of preventable death among people who use drugs. Naloxone "
              "is a short-acting opioid antagonist that displaces opioids from the mu receptor and restores "
              "breathing within minutes. Community distribution programmes train bystanders to recognise an "
              "overdose and to give the nasal spray before emergency services arrive.")
RESULTS = ("Of the 412 overdoses in which bystanders gave intranasal naloxone, 391 were reversed without further "
           "doses. The median time from the first dose to a response was three minutes, and withdrawal symptoms "
           "were the most common adverse event, seen in one of every eight people revived.")
METADATA = ["URL: https://example.org/articles/naloxone-bystanders", "Authors: Jane Doe, Ahmed Khan, Maria Rossi",
            "Jane Doe, Ahmed Khan, Maria Rossi", "Date: 2021-04-12", "2021-04-12", "DOI: 10.1234/jhr.2021.0042",
            "doi:10.1234/jhr.2021.0042", "License: cc-by", "cc-by-nc", "SHA: 3f5a9c0e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a3f",
            "3f5a9c0e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a3f", "Keywords: naloxone; overdose; bystander", "Abstract:",
            "Abstract: nan", "nan", "Published: 12 April 2021", "Anderson ML, Dobkin C, Gorry D"]
REFERENCES = ["1. Smith J, Brown K. Naloxone distribution and overdose deaths. Lancet. 2013;381:1580-9.",
              "2. Doe J, et al. Bystander response to overdose in three cities. Addiction. 2019;114(3):456-62.",
              "[3] Walley AY, Xuan Z, Hackman HH, et al. Opioid overdose rates and implementation of overdose "
              "education and nasal naloxone distribution. BMJ. 2013;346:f174"]


def _paper(wrap: int | None, blank_lines: bool = True) -> str:
    def body(text: str) -> list[str]:
        return textwrap.wrap(text, wrap, break_on_hyphens=False) if wrap else [text]
    gap = [""] if blank_lines else []
    return "\n".join([PAPER_TITLE, *METADATA, *gap, "Background", *body(BACKGROUND), *gap, "Results",
                      *body(RESULTS), *gap, "References", *REFERENCES])


@pytest.mark.parametrize("wrap, blank_lines", [(None, True), (100, True), (100, False), (72, False)])
def test_a_scientific_text_reads_cleanly_whatever_its_line_breaks(wrap, blank_lines):
    article = read_article(_paper(wrap, blank_lines).encode(), "paper.txt", Settings())
    assert article.title == PAPER_TITLE  # 203 characters on the first line
    assert [s.heading for s in article.sections] == ["Background", "Results"]
    assert [b.lead for b in article.sections[0].blocks] == [BACKGROUND]
    assert [b.lead for b in article.sections[1].blocks] == [RESULTS]
    text = all_text(article)
    for line in METADATA + REFERENCES:
        value = line.split(": ", 1)[-1]
        assert value not in text, line


def test_hard_wrapped_lines_are_reflowed_before_headings_are_looked_for():
    paragraphs = [f"Finding {n}: people who were given naloxone by a bystander recovered breathing within a few "
                  f"minutes in {n + 80} percent of the cases, and most of them needed no second dose before "
                  f"the ambulance came, according to the records of site {n}." for n in range(12)]
    wrapped = "\n".join(["Naloxone In The Community", "", "Method And Findings"] +
                        [line for p in paragraphs for line in textwrap.wrap(p, 100) + [""]])
    article = read_article(wrapped.encode(), "wrapped.txt", Settings())
    assert [s.heading for s in article.sections] == ["Method And Findings"]
    assert [b.lead for b in article.sections[0].blocks] == paragraphs
    # without blank lines between paragraphs, the short last line of each still ends it
    article = read_article(wrapped.replace("\n\n", "\n").encode(), "wrapped.txt", Settings())
    assert [s.heading for s in article.sections] == ["Method And Findings"]
    assert [b.lead for b in article.sections[0].blocks] == paragraphs


def test_words_hyphenated_at_line_ends_are_joined_and_compounds_keep_their_hyphen():
    lines = ["Naloxone Treatment Notes", "",
             "Clinicians reported that the nasal spray was the preferred form of treat-",
             "ment in almost every community programme, and that its effect was dose-",
             "dependent in people who had taken a long-acting opioid such as methadone before",
             "the overdose; a second spray was needed more often in that group than in the others."]
    article = read_article("\n".join(lines).encode(), "notes.txt", Settings())
    paragraph = article.sections[0].blocks[0].lead
    assert "preferred form of treatment in almost" in paragraph
    assert "its effect was dose-dependent in people" in paragraph


def test_abstract_label_goes_and_its_text_stays():
    text = ("Naloxone For Bystanders\nAbstract: Trained bystanders reversed most overdoses with the nasal spray.\n\n"
            "Methods\n\nWe followed 412 overdoses in three cities over two years.\n")
    article = read_article(text.encode(), "abstract.txt", Settings())
    assert article.sections[0].blocks[0].lead == "Trained bystanders reversed most overdoses with the nasal spray."
    assert [s.heading for s in article.sections] == ["Introduction", "Methods"]


def test_a_long_first_line_without_a_full_stop_is_the_title_but_later_ones_are_text():
    title = PAPER_TITLE + ", with a comparison of two rural districts"
    assert 240 < len(title) <= 250
    text = f"{title}\n\nNaloxone reverses overdoses.\n\n{PAPER_TITLE}\n"
    article = read_article(text.encode(), "long.txt", Settings())
    assert article.title == title
    assert [s.heading for s in article.sections] == ["Introduction"]
    assert article.sections[0].blocks[1].lead == PAPER_TITLE


def test_the_seed_articles_are_not_read_as_hard_wrapped_or_metadata():
    from qa.reading.formats.text import wrap_width

    for path in sorted(CORPUS.glob("*.txt")):
        lines = path.read_text(encoding="utf-8").split("\n")
        assert wrap_width(lines, Settings()) is None, path.name
        article = read_file(path)
        assert sum(len(s.blocks) for s in article.sections) >= 10


# --------------------------------------------------------------------------- answered from the page (real model)

QUESTIONS = [
    ("how long does a DXA scan take", "healthline.com.fat.html",
     "During a DXA scan, you lie on your back for approximately 10 minutes while an X-ray scans over you."),
    ("how many people did the scientists ask to do the direction discrimination task",
     "medicalnewstoday.com.318674.html",
     "To answer this question, the scientists asked five people to perform a “direction discrimination” task."),
    ("did vaccination reduce hospitalizations among elderly persons", "acpjournals.org.3075.html",
     "However, no evidence indicated that vaccination reduced hospitalizations or mortality among elderly persons."),
    ("how many of the overdoses were reversed by the nasal spray", "bystanders.pdf",
     "Of the 412 overdoses in which bystanders gave the nasal spray, 391 were reversed without further doses."),
]


def test_a_question_about_each_page_and_pdf_is_answered_from_it(tmp_path, embedder):
    from qa.serving.engine import Engine

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in PAGES:
        (corpus / name).write_bytes((WEB / name).read_bytes())
    pdfs.article_pdf(corpus / "bystanders.pdf")
    engine = Engine.open(Settings(corpus_dir=corpus, index_dir=tmp_path / "index", tune_epochs=0),
                         build="missing", embedder=embedder)
    for question, source, sentence in QUESTIONS:
        assert sentence in all_text(read_file(corpus / source)), "the answer must be in the file"
        result = engine.ask(question)
        assert result.found, question
        assert result.answer_source.source == source, (question, result.answer)
        assert sentence.endswith(result.answer) or result.answer in sentence or sentence in result.answer, \
            (question, result.answer)
