"""A tall building's board is drawn a few whole floors at a time, never splitting a floor."""

from __future__ import annotations

from cloud.console.pages.board import PAGE_CELLS, floor_pages
from cloud.leases.board import BoardUnit, UnitState


def units(floors: int, per_floor: int) -> list[BoardUnit]:
    return [
        BoardUnit(unit_id=f * 1000 + n, code=f"{f}-{n}", floor=f, layout="",
                  state=UnitState.VACANT, lease_id=None, end_date=None, overdue_fen=0)
        for f in range(floors, 0, -1)
        for n in range(per_floor)
    ]  # fmt: skip


def test_pages_hold_whole_floors_within_the_cell_budget() -> None:
    building = units(50, 20)
    pages = floor_pages(building)
    assert [u for page in pages for u in page] == building
    assert all(len(page) <= PAGE_CELLS for page in pages)
    assert len(pages) == 10
    for page in pages:
        assert len({u.floor for u in page}) * 20 == len(page)
    assert pages[0][0].floor == 50


def test_a_floor_wider_than_the_budget_is_one_page() -> None:
    pages = floor_pages(units(2, PAGE_CELLS + 5))
    assert [len(p) for p in pages] == [PAGE_CELLS + 5, PAGE_CELLS + 5]


def test_a_small_building_is_one_page() -> None:
    assert len(floor_pages(units(4, 20))) == 1
    assert floor_pages([]) == []
