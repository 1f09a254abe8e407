"""PDF documents for the cloud (invoices; leases' contracts can use the same): one place that
knows the fonts and the page layout.

Chinese text uses ReportLab's built-in CID font STSong-Light: the PDF names the font and every
reader supplies it (Adobe's Asian font packs, pdf.js, poppler), so no font file has to ship with
us. Latin text uses Helvetica.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

CJK_FONT = "STSong-Light"
LATIN_FONT = "Helvetica"
_registered: list[str] = []


def font_for(language: str) -> str:
    if language.lower().startswith("zh"):
        if not _registered:
            pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
            _registered.append(CJK_FONT)
        return CJK_FONT
    return LATIN_FONT


@dataclass
class Document:
    """A title, label/value facts, then tables; rendered to PDF bytes."""

    title: str
    language: str = "en"
    facts: list[tuple[str, str]] = field(default_factory=list)
    tables: list[tuple[Sequence[str], Sequence[Sequence[str]]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    author: str = "Anju"

    def render(self) -> bytes:
        font = font_for(self.language)
        body = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=13)
        head = ParagraphStyle("head", fontName=font, fontSize=16, leading=22, spaceAfter=6)
        out = io.BytesIO()
        doc = SimpleDocTemplate(
            out,
            pagesize=A4,
            title=self.title,
            author=self.author,
            leftMargin=18 * mm,
            rightMargin=18 * mm,
            topMargin=16 * mm,
            bottomMargin=16 * mm,
        )
        story: list[object] = [Paragraph(self.title, head)]
        if self.facts:
            facts = Table(
                [[Paragraph(k, body), Paragraph(v, body)] for k, v in self.facts],
                colWidths=[40 * mm, None],
            )
            story += [facts, Spacer(1, 5 * mm)]
        for header, rows in self.tables:
            data = [[Paragraph(f"<b>{h}</b>", body) for h in header]]
            data += [[Paragraph(c, body) for c in row] for row in rows]
            table = Table(data, repeatRows=1)
            table.setStyle(
                TableStyle(
                    [
                        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ]
                )
            )
            story += [table, Spacer(1, 5 * mm)]
        story += [Paragraph(n, body) for n in self.notes]
        doc.build(story)
        return out.getvalue()
