"""Reading an operator's CSV: UTF-8 (with or without BOM) or GBK/GB18030, header row required."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from protocols.errors import AnjuError

ENCODINGS = {"utf-8": "utf-8-sig", "gbk": "gb18030"}  # GB18030 is a superset of GBK


class CsvError(AnjuError):
    pass


@dataclass(frozen=True)
class Row:
    line: int  # line number in the file (the header is line 1)
    values: dict[str, str]


def decode(data: bytes, encoding: str = "auto") -> str:
    if encoding != "auto":
        try:
            return data.decode(ENCODINGS.get(encoding.lower(), encoding))
        except (UnicodeDecodeError, LookupError) as exc:
            raise CsvError(f"the file is not valid {encoding}: {exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise CsvError("the file is neither UTF-8 nor GBK; save it as UTF-8") from None


def read_rows(text: str, required: set[str], optional: set[str]) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = sorted(required - set(header))
    if missing:
        raise CsvError(f"missing column(s): {', '.join(missing)} (found: {', '.join(header)})")
    unknown = sorted(set(header) - required - optional)
    if unknown:
        raise CsvError(f"unknown column(s): {', '.join(unknown)}")
    reader.fieldnames = header
    rows = []
    for record in reader:
        if None in record:
            raise CsvError(f"line {reader.line_num}: more values than columns")
        values = {k: (v or "").strip() for k, v in record.items()}
        if any(values.values()):
            rows.append(Row(reader.line_num, values))
    return rows


def yuan_to_fen(text: str) -> int:
    """'1,800.50' → 180050; more than two decimals or a negative amount is an error."""
    try:
        amount = Decimal(text.replace(",", "").replace("¥", "").strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None
    exponent = amount.as_tuple().exponent
    if not amount.is_finite() or amount < 0 or not isinstance(exponent, int) or exponent < -2:
        raise ValueError(f"{text!r} must be a non-negative amount with at most 2 decimals")
    return int(amount * 100)
