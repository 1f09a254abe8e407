"""An invoice as a PDF, in Chinese or English, with every line saying what it is.

Same mechanism as the contracts (`cloud.contracts`): fpdf2 with DejaVu Sans and a CJK fallback
font from Debian, so the bytes are the same for the same invoice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from cloud.billing.money import yuan
from cloud.models import Invoice, InvoiceLine

LABELS = {
    "zh-CN": {
        "title": "账单",
        "number": "账单号",
        "property": "物业",
        "unit": "房间",
        "tenant": "租客",
        "issued": "开具日期",
        "due": "到期日",
        "status": "状态",
        "period": "期间",
        "item": "项目",
        "amount": "金额（元）",
        "total": "合计",
        "paid": "已付",
        "owed": "未付",
        "kinds": {
            "rent": "租金",
            "deposit": "押金",
            "utility": "水电费",
            "common_area": "公摊",
            "late_fee": "滞纳金",
            "adjustment": "调整",
            "deposit_settlement": "押金结算",
        },
        "note": "金额以人民币元计。公摊按实际损耗分摊，不加价。",
    },
    "en": {
        "title": "Invoice",
        "number": "Number",
        "property": "Property",
        "unit": "Unit",
        "tenant": "Tenant",
        "issued": "Issued",
        "due": "Due",
        "status": "Status",
        "period": "Period",
        "item": "Item",
        "amount": "Amount (CNY)",
        "total": "Total",
        "paid": "Paid",
        "owed": "Owed",
        "kinds": {
            "rent": "Rent",
            "deposit": "Deposit",
            "utility": "Utilities",
            "common_area": "Common area",
            "late_fee": "Late fee",
            "adjustment": "Adjustment",
            "deposit_settlement": "Deposit settlement",
        },
        "note": "Amounts in CNY. Common-area shares pass on actual losses without mark-up.",
    },
}
LANGUAGES = tuple(LABELS)


def invoice_pdf(
    invoice: Invoice,
    lines: Sequence[InvoiceLine],
    *,
    language: str,
    property_name: str,
    unit_code: str,
    tenant_name: str,
    fonts: tuple[Path, Path],
) -> bytes:
    t = LABELS[language]
    kinds: dict[str, str] = t["kinds"]  # type: ignore[assignment]
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime.combine(invoice.issue_date, time(0), UTC))
    pdf.set_title(f"{t['title']} {invoice.number}")
    pdf.set_author(property_name)
    pdf.add_font("latin", fname=str(fonts[0]))
    pdf.add_font("cjk", fname=str(fonts[1]))
    pdf.set_fallback_fonts(["cjk"])
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    pdf.set_font("latin", size=16)
    pdf.cell(0, 11, f"{t['title']} {invoice.number}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("latin", size=10)
    facts = [
        (t["property"], property_name),
        (t["unit"], unit_code),
        (t["tenant"], tenant_name),
        (t["issued"], str(invoice.issue_date)),
        (t["due"], str(invoice.due_date)),
        (t["status"], str(invoice.status)),
    ]
    for label, value in facts:
        pdf.cell(40, 6, str(label))
        pdf.cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    rows = [(str(t["period"]), str(t["item"]), str(t["amount"]))]
    rows += [
        (
            f"{line.period_start} ~ {line.period_end}",
            f"{kinds.get(str(line.kind), str(line.kind))}: {line.description}",
            yuan(line.amount_fen),
        )
        for line in lines
    ]
    rows += [
        ("", str(t["total"]), yuan(invoice.total_fen)),
        ("", str(t["paid"]), yuan(invoice.paid_fen)),
        ("", str(t["owed"]), yuan(invoice.total_fen - invoice.paid_fen)),
    ]
    pdf.set_font("latin", size=9)
    heading = FontFace(emphasis=None, fill_color=(235, 235, 235))  # no bold face is loaded
    with pdf.table(
        col_widths=(45, 100, 29), text_align=("LEFT", "LEFT", "RIGHT"), headings_style=heading
    ) as table:
        for row in rows:
            cells = table.row()
            for text in row:
                cells.cell(text)
    pdf.ln(4)
    pdf.multi_cell(0, 5, str(t["note"]), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
