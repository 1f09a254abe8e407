"""The bounds of every money, price, rate and quantity billing takes in, defined once.

The API's request models, the CSV importer and the billing run's own checks of stored rows all
use these, so a value refused at one door is refused at every door. The products are chosen to
stay far inside int64 (and the fen columns): the dearest unit price times the largest quantity
is `MAX_LINE_FEN` (10^15 fen), about 9,000 times below int64's limit, so a sum of thousands of
such lines still fits.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field

from cloud.billing.errors import BillingError

MAX_FEN = 2_000_000_000  # one amount (rent, deposit, payment, fee): 20,000,000.00 yuan; int32
MAX_PRICE = Decimal(10_000)  # yuan per unit (kWh, m³)
PRICE_PLACES = 6
MAX_QUANTITY = Decimal(1_000_000_000)  # units on one line, and a tier's bounds
QUANTITY_PLACES = 4  # what the readings' Numeric(18, 4) columns keep
MAX_LINE_FEN = 10**15  # MAX_PRICE (10^6 fen) x MAX_QUANTITY: the largest line a run writes
MAX_SPIKE_MULTIPLE = Decimal(1000)
FIRST_DAY = date(2000, 1, 1)  # calendar dates billing accepts (Month.parse's range)
LAST_DAY = date(2100, 12, 31)
MAX_LEASE_YEARS = 20  # Civil Code art. 705: a lease term may not exceed twenty years
MAX_BACK_MONTHS = 3  # default of ANJU_BILLING_MAX_BACK_MONTHS
BASIS_POINTS = 10_000  # a share in basis points: 10,000 = the whole


def at_most(places: int) -> AfterValidator:
    """Trailing zeros beyond `places` dropped ("1.000000000000" -> "1.000000" for 6): pydantic
    counts decimals without them but keeps them, and the text is stored as given ("1.00")."""
    step = Decimal(1).scaleb(-places)

    def trim(value: Decimal) -> Decimal:
        exponent = value.as_tuple().exponent
        return value.quantize(step) if isinstance(exponent, int) and exponent < -places else value

    return AfterValidator(trim)


# Request fields (pydantic refuses non-finite decimals by default; these add the ranges).
Fen = Annotated[int, Field(ge=0, le=MAX_FEN, description="Fen (分), at most 2,000,000,000.")]
PositiveFen = Annotated[int, Field(ge=1, le=MAX_FEN, description="Fen (分), 1..2,000,000,000.")]
Price = Annotated[
    Decimal,
    Field(ge=0, le=MAX_PRICE, decimal_places=PRICE_PLACES, description="Yuan per unit, 0..10,000."),
    at_most(PRICE_PLACES),
]
Quantity = Annotated[
    Decimal,
    Field(ge=0, le=MAX_QUANTITY, decimal_places=QUANTITY_PLACES, description="Units, 0..10^9."),
    at_most(QUANTITY_PLACES),
]
SpikeMultiple = Annotated[Decimal, Field(gt=0, le=MAX_SPIKE_MULTIPLE, decimal_places=2), at_most(2)]
Day = Annotated[date, Field(ge=FIRST_DAY, le=LAST_DAY)]
BasisPoints = Annotated[
    int, Field(ge=0, le=BASIS_POINTS, description="Basis points, 0..10,000 (10,000 = all).")
]


def check_fen(value: int, what: str, *, signed: bool = False, high: int = MAX_FEN) -> int:
    """`value` if it is whole fen within the bounds, else BillingError naming `what`."""
    low = -high if signed else 0
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BillingError(f"{what} {value!r} is outside {low:,}..{high:,} fen")
    return value


def check_basis_points(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= BASIS_POINTS:
        raise BillingError(f"{what} {value!r} is outside 0..{BASIS_POINTS:,} basis points")
    return value


def check_decimal(
    value: Decimal, what: str, *, high: Decimal, low: Decimal = Decimal(0)
) -> Decimal:
    if not value.is_finite() or not low <= value <= high:
        raise BillingError(f"{what} {value} is outside {low}..{high}")
    return value


def check_span(start: date, end: date) -> None:
    """A lease's days: inside the calendar billing knows, at most MAX_LEASE_YEARS long."""
    for name, day in (("start_date", start), ("end_date", end)):
        if not FIRST_DAY <= day <= LAST_DAY:
            raise BillingError(f"{name} {day} is outside {FIRST_DAY} to {LAST_DAY}")
    if (end.year - MAX_LEASE_YEARS, end.month, end.day) >= (start.year, start.month, start.day):
        raise BillingError(f"end_date: {start} to {end} is longer than {MAX_LEASE_YEARS} years")
