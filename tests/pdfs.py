"""PDFs made for the tests with fpdf2, shaped like real articles (core fonts: latin-1 text only)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from fpdf import FPDF

RUNNING_HEADER = "Journal of Community Health - Vol 12, Issue 3"
RUNNING_FOOTER = "Downloaded from example.org on 3 March 2024"
TITLE = "Naloxone Nasal Spray Given by Bystanders"
HEADINGS = ["Background", "Results"]
# A sentence split over two lines at a hyphen ("symp-" / "toms").
ANSWER = ("Withdrawal symptoms were the most common adverse event, seen in one of every eight people "
          "revived.")

_FILLER = ("Community programmes hand out naloxone kits and teach people who use drugs, their families and "
           "outreach workers how to recognise an opioid overdose. Trainees learn to check for breathing, to "
           "call for help and to give the spray into one nostril while waiting for the ambulance. ")


class _Article(FPDF):
    def header(self) -> None:
        self.set_font("Helvetica", "I", 9)
        self.cell(0, 8, RUNNING_HEADER, align="C", new_x="LMARGIN", new_y="NEXT")
        self.ln(4)

    def footer(self) -> None:
        self.set_y(-18)
        self.set_font("Helvetica", "", 9)
        self.cell(0, 5, RUNNING_FOOTER, align="C", new_x="LMARGIN", new_y="NEXT")
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="C")


def _lines(pdf: FPDF, lines: list[str]) -> None:
    pdf.set_font("Helvetica", "", 11)
    for line in lines:
        pdf.cell(0, 5.5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3.5)


def _paragraph(pdf: FPDF, text: str) -> None:
    _lines(pdf, textwrap.wrap(text, 92, break_on_hyphens=False))


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def article_pdf(path: Path, password: str | None = None) -> Path:
    """Three pages: a title, two headings, running header and footer, page numbers, hyphenated line ends."""
    pdf = _Article()
    pdf.alias_nb_pages()
    pdf.set_auto_page_break(True, 24)
    if password is not None:
        pdf.set_encryption(owner_password="owner-secret", user_password=password)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(0, 11, TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    _heading(pdf, HEADINGS[0])
    _paragraph(pdf, "Opioid overdose is a leading cause of preventable death. Naloxone is a short-acting opioid "
                    "antagonist that restores breathing within minutes of being given. " + _FILLER)
    for number in range(7):
        _paragraph(pdf, f"Programme {number + 1} trained volunteers in a single evening session. " + _FILLER * 2)
    _heading(pdf, HEADINGS[1])
    _lines(pdf, [
        "Of the 412 overdoses in which bystanders gave the nasal spray, 391 were reversed without further",
        "doses. The median time from the first dose to a response was three minutes. Withdrawal symp-",
        "toms were the most common adverse event, seen in one of every eight people revived. The dose-",
        "dependent effect was seen in the smaller group that received a second spray, and no one needed",
        "a third dose before the ambulance arrived.",
    ])
    for number in range(9):
        _paragraph(pdf, f"Site {number + 1} reported similar results over the two years of the study. " + _FILLER)
    pdf.output(str(path))
    return path


def scanned_pdf(path: Path) -> Path:
    """Two pages that are pictures of text, as a scanner makes them: no text layer."""
    from PIL import Image, ImageDraw

    pdf = FPDF()
    for page in range(2):
        image = Image.new("L", (600, 800), 255)
        draw = ImageDraw.Draw(image)
        for row in range(30):
            draw.text((40, 40 + row * 24), f"Scanned line {row} of page {page + 1} about naloxone.", fill=0)
        pdf.add_page()
        pdf.image(image, x=10, y=10, w=190)
    pdf.output(str(path))
    return path
