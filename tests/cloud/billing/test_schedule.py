"""Schedules and proration, with the worked examples of BRIEF §5 computed by hand."""

import dataclasses
from datetime import date
from fractions import Fraction

import pytest

from cloud.billing.errors import BillingError
from cloud.billing.proration import Anchor, Proration, prorate
from cloud.billing.schedule import LeaseTerms, escrow_reasons, rent_for, schedule
from cloud.leases.service import needs_supervised_account
from cloud.models import Lease

RENT = 180000  # 1,800.00


def test_brief_example_march_15_to_31() -> None:
    """1,800.00/month, occupied Mar 15-31 -> 1800 * 17 / 31 = 987.10."""
    march = Anchor(2026, 3, 1)
    got = prorate(RENT, march, date(2026, 3, 15), date(2026, 3, 31), Proration.CALENDAR)
    assert got.amount == 98710
    assert got.months[0].days_used == 17
    assert got.months[0].days_in == 31
    assert "17/31" in got.explain(RENT)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        (Proration.CALENDAR, 98710),  # 1800 * 17/31 = 987.096...
        (Proration.THIRTY_DAY, 102000),  # 1800 * 17/30
        (Proration.ANNUAL, 100603),  # 1800 * 12 * 17/365 = 1006.027...
    ],
)
def test_proration_methods(method: Proration, expected: int) -> None:
    got = prorate(RENT, Anchor(2026, 3, 1), date(2026, 3, 15), date(2026, 3, 31), method)
    assert got.amount == expected


def test_billing_day_makes_a_prorated_stub_with_the_deposit() -> None:
    terms = LeaseTerms(
        start=date(2026, 3, 15),
        end=date(2026, 6, 30),
        monthly_rent=RENT,
        deposit=RENT,
        billing_day=1,
    )
    periods = schedule(terms)
    assert [(p.start, p.end) for p in periods] == [
        (date(2026, 3, 15), date(2026, 3, 31)),
        (date(2026, 4, 1), date(2026, 4, 30)),
        (date(2026, 5, 1), date(2026, 5, 31)),
        (date(2026, 6, 1), date(2026, 6, 30)),
    ]
    assert periods[0].rent == 98710
    assert periods[0].deposit == RENT
    assert periods[0].due == date(2026, 3, 15)
    assert periods[1].due == date(2026, 3, 25)
    assert [p.rent for p in periods[1:]] == [RENT] * 3


def test_month_end_rule_for_a_lease_from_january_31() -> None:
    anchor = Anchor.of(date(2026, 1, 31))
    assert anchor.month_start(1) == date(2026, 3, 1)  # no Feb 31: the 1st of March
    assert anchor.month_start(2) == date(2026, 3, 31)
    assert anchor.month_start(3) == date(2026, 5, 1)
    terms = LeaseTerms(start=date(2026, 1, 31), end=date(2027, 1, 30), monthly_rent=RENT)
    periods = schedule(terms)
    assert [p.end for p in periods] == [
        date(2026, 2, 28),
        date(2026, 3, 30),
        date(2026, 4, 30),
        date(2026, 5, 30),
        date(2026, 6, 30),
        date(2026, 7, 30),
        date(2026, 8, 30),
        date(2026, 9, 30),
        date(2026, 10, 30),
        date(2026, 11, 30),
        date(2026, 12, 30),
        date(2027, 1, 30),
    ]
    assert all(p.rent == RENT for p in periods)


def test_month_end_rule_in_a_leap_year() -> None:
    periods = schedule(
        LeaseTerms(start=date(2028, 1, 31), end=date(2028, 4, 30), monthly_rent=RENT)
    )
    assert [(p.start, p.end) for p in periods] == [
        (date(2028, 1, 31), date(2028, 2, 29)),
        (date(2028, 3, 1), date(2028, 3, 30)),
        (date(2028, 3, 31), date(2028, 4, 30)),
    ]


def test_ya_yi_fu_san() -> None:
    """押一付三: first bill = deposit + 3 * rent; then every 3 months, due 7 days before."""
    terms = LeaseTerms.ya_fu(
        ya=1, fu=3, start=date(2026, 1, 1), end=date(2026, 12, 31), monthly_rent=RENT
    )
    periods = schedule(terms)
    assert periods[0].total == 720000
    assert periods[0].due == date(2026, 1, 1)
    assert [(p.start, p.end, p.due, p.total) for p in periods[1:]] == [
        (date(2026, 4, 1), date(2026, 6, 30), date(2026, 3, 25), 540000),
        (date(2026, 7, 1), date(2026, 9, 30), date(2026, 6, 24), 540000),
        (date(2026, 10, 1), date(2026, 12, 31), date(2026, 9, 24), 540000),
    ]
    assert escrow_reasons(terms) == []


@pytest.mark.parametrize("cycle", [2, 6, 12])
def test_every_cycle_covers_the_lease(cycle: int) -> None:
    terms = LeaseTerms(
        start=date(2026, 1, 10), end=date(2027, 1, 9), monthly_rent=RENT, cycle_months=cycle
    )
    periods = schedule(terms)
    assert len(periods) == 12 // cycle
    assert all(p.rent == cycle * RENT for p in periods)


def test_escrow_flag() -> None:
    start, end = date(2026, 1, 1), date(2026, 12, 31)
    six = LeaseTerms(start=start, end=end, monthly_rent=RENT, cycle_months=6)
    assert len(escrow_reasons(six)) == 1
    two_six = LeaseTerms.ya_fu(ya=2, fu=6, start=start, end=end, monthly_rent=RENT)
    assert len(escrow_reasons(two_six)) == 2


@pytest.mark.parametrize(
    ("cycle", "deposit", "flags"),
    [
        (3, RENT, 0),  # 押一付三 is the most allowed without supervision
        (6, RENT, 1),
        (3, RENT + 1, 1),  # one fen over a month's deposit
        (12, 2 * RENT, 2),
    ],
)
def test_escrow_edges_and_both_callers_agree(cycle: int, deposit: int, flags: int) -> None:
    # a two-month lease billed half-yearly still agreed to collect six months at once
    start, end = date(2026, 1, 1), date(2026, 2, 28)
    terms = LeaseTerms(start=start, end=end, monthly_rent=RENT, cycle_months=cycle, deposit=deposit)
    lease = Lease(rent_fen=RENT, payment_cycle_months=cycle, deposit_fen=deposit)
    assert len(escrow_reasons(terms)) == flags
    assert needs_supervised_account(lease) is bool(flags)


def test_lease_ending_mid_period_is_prorated() -> None:
    terms = LeaseTerms(start=date(2026, 1, 15), end=date(2026, 5, 20), monthly_rent=300000)
    last = schedule(terms)[-1]
    # rent month May 15 - Jun 14 has 31 days, 6 used: 3000 * 6/31 = 580.645...
    assert (last.start, last.end, last.rent) == (date(2026, 5, 15), date(2026, 5, 20), 58065)


def test_regenerating_never_touches_invoiced_days() -> None:
    terms = LeaseTerms.ya_fu(
        ya=1, fu=3, start=date(2026, 1, 1), end=date(2026, 12, 31), monthly_rent=RENT
    )
    rest = schedule(terms, after=date(2026, 3, 31))
    assert rest[0].start == date(2026, 4, 1)
    assert all(p.deposit == 0 for p in rest)
    # The operator switches to monthly billing on Feb 15, having invoiced through Feb 15.
    monthly = dataclasses.replace(terms, cycle_months=1)
    rest = schedule(monthly, after=date(2026, 2, 15))
    assert (rest[0].start, rest[0].end) == (date(2026, 2, 16), date(2026, 2, 28))
    assert rest[0].rent == 83571  # 1800 * 13/28 = 835.714...


def test_rent_for_a_span_refuses_days_outside_the_lease() -> None:
    terms = LeaseTerms(start=date(2026, 1, 1), end=date(2026, 6, 30), monthly_rent=RENT)
    assert rent_for(terms, date(2026, 1, 1), date(2026, 2, 28)) == 2 * RENT
    with pytest.raises(BillingError):
        rent_for(terms, date(2025, 12, 31), date(2026, 1, 31))


def test_bad_terms_are_refused_with_the_reason() -> None:
    with pytest.raises(BillingError, match="cycle"):
        LeaseTerms(start=date(2026, 1, 1), end=date(2026, 6, 30), monthly_rent=1, cycle_months=4)
    with pytest.raises(BillingError, match="before it starts"):
        LeaseTerms(start=date(2026, 1, 2), end=date(2026, 1, 1), monthly_rent=1)


def test_a_one_day_span_costs_one_day() -> None:
    got = prorate(
        RENT, Anchor(2026, 3, 1), date(2026, 3, 15), date(2026, 3, 15), Proration.CALENDAR
    )
    assert got.amount == 5806  # 1800 / 31 = 58.064...
    assert [(m.used_start, m.used_end, m.days_used) for m in got.months] == [
        (date(2026, 3, 15), date(2026, 3, 15), 1)
    ]


def test_a_span_ending_on_a_rent_months_first_day_includes_that_day() -> None:
    anchor = Anchor(2026, 1, 15)
    got = prorate(RENT, anchor, date(2026, 1, 15), date(2026, 2, 15), Proration.CALENDAR)
    first, last = got.months
    assert (first.full, first.month_start, first.month_end) == (
        True,
        date(2026, 1, 15),
        date(2026, 2, 14),
    )
    assert (last.used_start, last.used_end, last.fraction) == (
        date(2026, 2, 15),
        date(2026, 2, 15),
        Fraction(1, 28),
    )
    assert got.amount == RENT + 6429  # 1800 / 28 = 64.2857...
    assert got.explain(RENT) == (
        "2026-01-15..2026-02-14 full month 1,800.00; 2026-02-15..2026-02-15 1/28 * 1,800.00"
    )


def test_month_index_on_first_days_and_before_the_anchor() -> None:
    anchor = Anchor(2026, 3, 15)
    assert anchor.month_index(date(2026, 3, 15)) == 0
    assert anchor.month_index(date(2026, 4, 14)) == 0
    assert anchor.month_index(date(2026, 4, 15)) == 1
    assert anchor.month_index(date(2026, 3, 14)) == -1
    assert anchor.month_index(date(2025, 1, 20)) == -14
    assert anchor.month_index(date(2025, 1, 10)) == -15
    assert anchor.month_index(date(2028, 12, 15)) == 33
    month_end = Anchor.of(date(2026, 1, 31))
    assert month_end.month_index(date(2026, 3, 1)) == 1  # the rent month that starts Mar 1
    assert month_end.month_index(date(2026, 3, 30)) == 1
    assert month_end.month_index(date(2026, 3, 31)) == 2


@pytest.mark.parametrize(
    ("method", "days", "expected"),
    [
        (Proration.THIRTY_DAY, 30, Fraction(1)),  # Mar 1-30 of a 31-day rent month
        (Proration.CALENDAR, 30, Fraction(30, 31)),
        (Proration.ANNUAL, 30, Fraction(360, 365)),
    ],
)
def test_a_thirty_day_month_is_whole_only_for_thirty_day_proration(
    method: Proration, days: int, expected: Fraction
) -> None:
    got = prorate(RENT, Anchor(2026, 3, 1), date(2026, 3, 1), date(2026, 3, days), method)
    assert got.months[0].fraction == expected
