"""Reading an operator's CSV as a stream of rows: UTF-8 (with or without BOM) or GBK/GB18030.

Files from old systems are large and not always clean, so nothing here holds more than one row,
and a row that cannot be read is a bad row (its line number and what is wrong), never the end of
the file: the encoding is decided once per file, and a line that is not valid in it spoils only
its own row; values and lines have size caps. Reasons never quote a value: it may be personal.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import BinaryIO

from cloud.billing.bounds import MAX_FEN
from protocols.errors import AnjuError

ENCODINGS = {"utf-8": "utf-8", "gbk": "gb18030"}  # GB18030 is a superset of GBK
FIELD_LIMIT = 128 * 1024  # characters in one value; no column of ours needs more than 300
LINE_LIMIT = 1024 * 1024  # bytes of one physical line
_BLOCK = 1 << 20


class CsvError(AnjuError):
    pass


@dataclass(frozen=True)
class Row:
    line: int  # the line of the file where the row starts (the header is line 1)
    values: dict[str, str]
    column: str = ""  # with `problem`: the column at fault ("" for the whole row)
    problem: str = ""  # why the row cannot be read; empty for a readable row


def detect(f: BinaryIO) -> str:
    """'utf-8', unless most lines with non-ASCII bytes are not UTF-8 ('gbk'). Decided by counting
    lines, so one stray GBK row in a UTF-8 file stays one bad row. Reads the file once."""
    good = bad = 0
    f.seek(0)
    while block := f.read(_BLOCK):
        block += f.readline(LINE_LIMIT)  # end on a line boundary
        if block.isascii():
            continue
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            good += sum(not line.isascii() for line in block.split(b"\n"))
            continue
        for line in block.split(b"\n"):
            if not line.isascii():
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    bad += 1
                else:
                    good += 1
    f.seek(0)
    return "gbk" if bad > good else "utf-8"


class Lines:
    """The file's physical lines, each decoded alone; counts lines and bytes, and remembers the
    lines that could not be read (until the reader takes the row they belong to)."""

    def __init__(self, f: BinaryIO, encoding: str) -> None:
        self.f = f
        self.encoding = encoding
        self.codec = ENCODINGS[encoding]
        self.line = 0
        self.bytes = 0
        self.problems: dict[int, str] = {}

    def __iter__(self) -> Iterator[str]:
        while raw := self.f.readline(LINE_LIMIT):
            self.line += 1
            self.bytes += len(raw)
            if self.line == 1 and self.codec == "utf-8":
                raw = raw.removeprefix(codecs.BOM_UTF8)
            if len(raw) == LINE_LIMIT and not raw.endswith(b"\n"):
                self._skip_rest()
                self.problems[self.line] = f"a line is longer than {LINE_LIMIT // 1024} KB"
                yield "\n"
                continue
            try:
                yield raw.decode(self.codec)
            except UnicodeDecodeError:
                self.problems[self.line] = (
                    f"not valid {self.encoding} (the file is read as {self.encoding})"
                )
                yield raw.decode(self.codec, "replace")

    def _skip_rest(self) -> None:
        while rest := self.f.readline(LINE_LIMIT):
            self.bytes += len(rest)
            if rest.endswith(b"\n"):
                return

    def problem_up_to(self, last: int) -> str:
        """The first problem of the lines up to `last` (forgotten after this)."""
        found = [self.problems.pop(n) for n in sorted(self.problems) if n <= last]
        return found[0] if found else ""


def read_rows(
    lines: Lines, required: set[str], optional: set[str], limits: Mapping[str, int]
) -> Iterator[Row]:
    """Check the header (CsvError), then yield each non-empty row, readable or not. A value over
    its column's `limits` (characters) or containing NUL makes a bad row."""
    csv.field_size_limit(FIELD_LIMIT)
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error:
        raise CsvError(f"line 1: a value is longer than {FIELD_LIMIT // 1024} KB") from None
    if problem := lines.problem_up_to(lines.line):
        raise CsvError(f"line 1: {problem}")
    missing = sorted(required - set(header))
    if missing:
        raise CsvError(f"missing column(s): {', '.join(missing)} (found: {', '.join(header)})")
    unknown = sorted(set(header) - required - optional)
    if unknown:
        raise CsvError(f"unknown column(s): {', '.join(unknown)}")
    while True:
        first = lines.line + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error:  # the only one the default dialect raises is the field limit
            lines.problem_up_to(lines.line)
            yield Row(first, {}, "", f"a value is longer than {FIELD_LIMIT // 1024} KB")
            continue
        if lines.problems and (problem := lines.problem_up_to(lines.line)):
            yield Row(first, {}, "", problem)
            continue
        if not any(v.strip() for v in record):
            continue
        if len(record) > len(header):
            yield Row(first, {}, "", f"{len(record)} values, the header has {len(header)}")
            continue
        values = {h: v.strip() for h, v in zip(header, record, strict=False)}
        yield Row(first, values, *_value_problem(values, limits))


def count_rows(lines: Lines) -> int:
    """The rows `read_rows` will yield (non-empty records after the header), for progress;
    reading the whole file once, holding one record at a time."""
    csv.field_size_limit(FIELD_LIMIT)
    reader = csv.reader(lines)
    n = -1  # the header
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return max(n, 0)
        except csv.Error:  # an over-long value: read_rows yields it as a bad row
            n += 1
            continue
        if n < 0 or any(v.strip() for v in record):
            n += 1


def _value_problem(values: Mapping[str, str], limits: Mapping[str, int]) -> tuple[str, str]:
    for column, value in values.items():
        if "\x00" in value:
            return column, "contains a NUL character"
        if len(value) > limits.get(column, FIELD_LIMIT):
            return column, f"is longer than {limits[column]} characters"
    return "", ""


def yuan_to_fen(text: str) -> int:
    """'1,800.50' → 180050; more than two decimals, a negative amount or one beyond the
    billing bounds (`1e400` is finite) is an error."""
    try:
        amount = Decimal(text.replace(",", "").replace("¥", "").strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None
    exponent = amount.as_tuple().exponent
    if not amount.is_finite() or amount < 0 or not isinstance(exponent, int) or exponent < -2:
        raise ValueError(f"{text!r} must be a non-negative amount with at most 2 decimals")
    if amount * 100 > MAX_FEN:
        raise ValueError(f"{text!r} is more than {MAX_FEN // 100:,} yuan")
    return int(amount * 100)
