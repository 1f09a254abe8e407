"""Rendering a lease contract to PDF bytes. Deterministic: the same terms and language give the
same bytes, so the SHA-256 a signer saw can be checked again later."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from fpdf import FPDF

from cloud.contracts.templates import TEXT

Language = Literal["zh-CN", "en"]
LANGUAGES: tuple[Language, ...] = ("zh-CN", "en")


@dataclass(frozen=True)
class ContractData:
    """Everything printed on the contract (personal numbers already masked)."""

    lease_id: int
    landlord: str
    property_name: str
    address: str
    building: str
    unit_code: str
    area_m2: str
    layout: str
    tenant_name: str
    tenant_id_masked: str
    co_tenants: tuple[str, ...]
    occupants: int
    start: date
    end: date
    rent_fen: int
    deposit_fen: int
    cycle_months: int
    due_days_before: int
    proration: str
    late_fee_policy: str
    issued: datetime  # printed, and the PDF's creation date


def yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d}"


@lru_cache(maxsize=64)
def render(data: ContractData, language: Language, fonts: tuple[Path, Path]) -> bytes:
    t = TEXT[language]
    pdf = FPDF(format="A4")
    pdf.set_creation_date(data.issued.astimezone(UTC))
    pdf.set_title(t["title"])
    pdf.set_author(data.landlord)
    pdf.add_font("latin", fname=str(fonts[0]))
    pdf.add_font("cjk", fname=str(fonts[1]))
    pdf.set_fallback_fonts(["cjk"])
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_font("latin", size=18)
    pdf.cell(0, 12, t["title"], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("latin", size=9)
    pdf.cell(0, 6, t["number"].format(n=data.lease_id, issued=data.issued.date()),
             align="C", new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.ln(4)
    values = {
        **data.__dict__,
        "rent": yuan(data.rent_fen),
        "deposit": yuan(data.deposit_fen),
        "co_tenants": "、".join(data.co_tenants) if data.co_tenants else t["none"],
        "proration": t["proration"].get(data.proration, data.proration),
        "cycle": t["cycle"].get(data.cycle_months, str(data.cycle_months)),
    }
    for heading, body in t["sections"]:
        pdf.set_font("latin", size=12)
        pdf.cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("latin", size=10)
        pdf.multi_cell(0, 6, body.format(**values), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.ln(6)
    pdf.set_font("latin", size=10)
    pdf.multi_cell(0, 8, t["signatures"].format(**values), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def sha256(document: bytes) -> str:
    return hashlib.sha256(document).hexdigest()
