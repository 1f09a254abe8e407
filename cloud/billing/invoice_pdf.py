"""An invoice as a PDF, in Chinese or English, with every line saying what it is."""

from __future__ import annotations

from collections.abc import Sequence

from cloud.billing.money import yuan
from cloud.models import Invoice, InvoiceLine
from cloud.pdf import Document

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
) -> bytes:
    t = LABELS[language]
    kinds: dict[str, str] = t["kinds"]  # type: ignore[assignment]
    doc = Document(
        title=f"{t['title']} {invoice.number}",
        language=language,
        facts=[
            (str(t["property"]), property_name),
            (str(t["unit"]), unit_code),
            (str(t["tenant"]), tenant_name),
            (str(t["issued"]), str(invoice.issue_date)),
            (str(t["due"]), str(invoice.due_date)),
            (str(t["status"]), str(invoice.status)),
        ],
    )
    rows = [
        [
            f"{line.period_start} ~ {line.period_end}",
            f"{kinds.get(str(line.kind), str(line.kind))}: {_escape(line.description)}",
            yuan(line.amount_fen),
        ]
        for line in lines
    ]
    rows.append(["", str(t["total"]), yuan(invoice.total_fen)])
    rows.append(["", str(t["paid"]), yuan(invoice.paid_fen)])
    rows.append(["", str(t["owed"]), yuan(invoice.total_fen - invoice.paid_fen)])
    doc.tables.append(((str(t["period"]), str(t["item"]), str(t["amount"])), rows))
    doc.notes.append(str(t["note"]))
    return doc.render()


def _escape(text: str) -> str:
    """Paragraphs take a little XML markup; user text must not."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
