"""Invariants of the billing rules, checked with hypothesis."""

import itertools
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from cloud.billing.allocation import OPERATOR, Basis, UnitBasis, allocate
from cloud.billing.money import split
from cloud.billing.payments import OpenItem, apply_payment
from cloud.billing.pricing import Tier, tiered
from cloud.billing.proration import DAY, Proration
from cloud.billing.schedule import CYCLES, LeaseTerms, schedule

dates = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))
amounts = st.integers(min_value=0, max_value=10**9)


@given(
    total=st.integers(min_value=-(10**9), max_value=10**9),
    weights=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=40).filter(
        any
    ),
)
def test_split_sums_exactly_and_each_part_is_within_a_fen(total: int, weights: list[int]) -> None:
    parts = split(total, weights)
    assert sum(parts) == total
    whole = sum(weights)
    for part, w in zip(parts, weights, strict=True):
        assert abs(part - Fraction(total * w, whole)) < 1
    assert parts == split(total, weights)  # deterministic


@st.composite
def leases(draw: st.DrawFn) -> LeaseTerms:
    start = draw(dates)
    return LeaseTerms(
        start=start,
        end=start + timedelta(days=draw(st.integers(min_value=0, max_value=1200))),
        monthly_rent=draw(amounts),
        cycle_months=draw(st.sampled_from(CYCLES)),
        deposit=draw(amounts),
        due_days_before=draw(st.integers(min_value=0, max_value=40)),
        proration=draw(st.sampled_from(list(Proration))),
        billing_day=draw(st.none() | st.integers(min_value=1, max_value=31)),
    )


@given(leases())
def test_periods_cover_the_lease_exactly_and_nothing_outside_it(terms: LeaseTerms) -> None:
    periods = schedule(terms)
    assert periods[0].start == terms.start
    assert periods[-1].end == terms.end
    for a, b in itertools.pairwise(periods):
        assert b.start == a.end + DAY
    assert all(terms.start <= p.due <= p.start or p.index == 0 for p in periods)
    assert sum(p.deposit for p in periods) == terms.deposit
    assert all(0 <= p.rent <= terms.cycle_months * terms.monthly_rent for p in periods)


@given(leases())
def test_a_full_period_costs_exactly_the_rent(terms: LeaseTerms) -> None:
    for p in schedule(terms):
        if p.full:
            assert p.rent == len(p.months) * terms.monthly_rent
        for m in p.months:
            if m.used_start == m.month_start and m.used_end == m.month_end:
                assert m.full
            else:  # only the 30-day method counts 30 days of a 31-day month as full
                assert 0 <= m.fraction <= 1
                assert not m.full or terms.proration is Proration.THIRTY_DAY


@given(leases(), st.integers(min_value=0, max_value=1200))
def test_regenerating_after_invoiced_days_bills_only_the_rest(
    terms: LeaseTerms, invoiced_days: int
) -> None:
    after = terms.start + timedelta(days=invoiced_days)
    rest = schedule(terms, after=after)
    if after >= terms.end:
        assert rest == []
        return
    assert rest[0].start == after + DAY
    assert rest[-1].end == terms.end
    assert all(p.deposit == 0 for p in rest)
    full = {p.start: p for p in schedule(terms)}
    for p in rest:  # whole periods after the cut are billed exactly as before
        if p.start in full:
            assert p == full[p.start]


@given(
    amount=st.integers(min_value=1, max_value=10**8),
    balances=st.lists(st.integers(min_value=1, max_value=10**7), max_size=12),
)
def test_payments_reconcile(amount: int, balances: list[int]) -> None:
    items = [OpenItem(f"i{n}", date(2026, 1, 1) + timedelta(n), b) for n, b in enumerate(balances)]
    got = apply_payment(amount, items)
    assert sum(got.applied.values()) + got.credit == amount
    owed = {i.key: i.balance for i in items}
    assert all(0 < v <= owed[k] for k, v in got.applied.items())
    if got.credit:
        assert got.applied == owed  # credit only once everything is paid
    assert sum(owed.values()) - sum(got.applied.values()) == max(sum(owed.values()) - amount, 0)


@given(
    amount=amounts,
    basis=st.sampled_from(list(Basis)),
    owner=st.fractions(min_value=0, max_value=1, max_denominator=100),
    rows=st.lists(
        st.tuples(st.integers(0, 200), st.integers(0, 6), st.integers(0, 5000), st.integers(0, 31)),
        min_size=1,
        max_size=30,
    ),
)
def test_allocations_sum_to_the_bill(
    amount: int, basis: Basis, owner: Fraction, rows: list[tuple[int, int, int, int]]
) -> None:
    units = [
        UnitBasis(
            key=f"u{n}",
            area=Decimal(area),
            occupants=occ,
            usage=Decimal(used),
            occupied_days=days,
            period_days=31,
        )
        for n, (area, occ, used, days) in enumerate(rows)
    ]
    got = allocate(amount, units, basis, owner_fraction=owner)
    assert sum(got.shares.values()) == amount
    total = sum(got.weights.values())
    if total:  # each part within one fen of its exact share (RUBS: owner first, then the basis)
        for key, weight in got.weights.items():
            owned = amount * owner if key == OPERATOR else 0
            exact = amount * (1 - owner) * weight / total + owned
            assert abs(got.shares[key] - exact) < 1, key
    assert all(v >= 0 for v in got.shares.values())
    vacant = [u.key for u in units if u.occupied_days == 0]
    if basis is not Basis.USAGE:
        assert all(got.shares[k] == 0 for k in vacant)


@given(
    a=st.decimals(min_value=0, max_value=5000, places=2),
    b=st.decimals(min_value=0, max_value=5000, places=2),
)
def test_tiered_cost_is_additive_across_bills(a: Decimal, b: Decimal) -> None:
    tiers = [
        Tier(Decimal(0), Decimal(100), Fraction(10)),
        Tier(Decimal(100), Decimal(500), Fraction(15)),
        Tier(Decimal(500), None, Fraction(20)),
    ]
    whole = sum((p.cost for p in tiered(a + b, tiers).parts), Fraction(0))
    first = sum((p.cost for p in tiered(a, tiers).parts), Fraction(0))
    second = sum((p.cost for p in tiered(b, tiers, prior=a).parts), Fraction(0))
    assert whole == first + second
