"""meters: a surrogate id; the gateway's meter id becomes `code`, unique per organisation; the
bound gateway is a foreign key (one meter per code on a gateway)

Existing rows keep their id as their code. A binding to a gateway that is not registered, or is
placed in another property, is dropped; an unplaced gateway whose bound meters are all in one
property is placed there. Meter swaps follow the new ids. Meters and swaps are small tables: they
are copied through memory into the new ones.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 04:40:00
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIELDS = ("property_id", "building_id", "unit_id", "kind", "utility", "profile", "digits")
SWAP_FIELDS = ("swapped_at", "old_final", "new_initial")
SWAP_TYPES = {
    "swapped_at": sa.DateTime(timezone=True),
    "old_final": sa.Numeric(precision=18, scale=4),
    "new_initial": sa.Numeric(precision=18, scale=4),
}


def _meter_columns() -> list[Any]:
    def enum(name: str, *values: str) -> sa.Enum:
        return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=24)

    return [
        sa.Column("property_id", sa.Integer(), nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("kind", enum("meter_kind", "submeter", "master"), nullable=False),
        sa.Column(
            "utility", enum("utility", "electricity", "water", "hot_water", "gas"), nullable=False
        ),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("digits", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(kind = 'submeter' AND unit_id IS NOT NULL) OR (kind = 'master' AND unit_id IS NULL)",
            name="ck_meters_binding",
        ),
        sa.CheckConstraint("digits IS NULL OR digits BETWEEN 3 AND 12", name="ck_meters_digits"),
        sa.ForeignKeyConstraint(["building_id"], ["buildings.id"]),
        sa.ForeignKeyConstraint(["property_id"], ["properties.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"]),
    ]


def _swap_columns(key: sa.types.TypeEngine[Any]) -> list[Any]:
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("old_meter_id", key, nullable=False),
        sa.Column("new_meter_id", key, nullable=False),
        sa.Column("swapped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("old_final", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("new_initial", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.ForeignKeyConstraint(["new_meter_id"], ["meters.id"]),
        sa.ForeignKeyConstraint(["old_meter_id"], ["meters.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("new_meter_id"),
        sa.UniqueConstraint("old_meter_id"),
    ]


def _indexes() -> None:
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.create_index("ix_meters_property", ["property_id"], unique=False)
        batch_op.create_index("ix_meters_unit", ["unit_id"], unique=False)


def _rows(sql: str, **types: sa.types.TypeEngine[Any]) -> list[dict[str, Any]]:
    query = sa.text(sql).columns(**types)
    return [dict(r) for r in op.get_bind().execute(query).mappings()]


def _insert(table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        op.get_bind().execute(table.insert(), rows)


def _swaps(key: sa.types.TypeEngine[Any], swaps: list[dict[str, Any]], new: dict[Any, Any]) -> None:
    """Create meter_swaps with meter keys of type `key`, refilled with `swaps` through `new`."""
    table = op.create_table("meter_swaps", *_swap_columns(key))
    assert table is not None
    _insert(
        table,
        [
            {
                "old_meter_id": new[s["old_meter_id"]],
                "new_meter_id": new[s["new_meter_id"]],
                **{k: s[k] for k in SWAP_FIELDS},
            }
            for s in swaps
        ],
    )


def _bindings(meters: list[dict[str, Any]]) -> None:
    """Keep a meter's gateway only if it is one of the meter's property (placing an unplaced
    gateway whose meters are all in one property there)."""
    placed = {r["id"]: r["property_id"] for r in _rows("SELECT id, property_id FROM gateways")}
    served: dict[str, set[int]] = defaultdict(set)
    for m in meters:
        if m["gateway_id"] in placed:
            served[m["gateway_id"]].add(m["property_id"])
    for gateway_id, properties in served.items():
        if placed[gateway_id] is None and len(properties) == 1:
            placed[gateway_id] = properties.pop()
            op.get_bind().execute(
                sa.text("UPDATE gateways SET property_id = :p WHERE id = :g"),
                {"p": placed[gateway_id], "g": gateway_id},
            )
    for m in meters:
        if m["gateway_id"] is not None and placed.get(m["gateway_id"]) != m["property_id"]:
            m["gateway_id"] = None


def upgrade() -> None:
    meters = _rows("SELECT m.*, p.org_id FROM meters m JOIN properties p ON p.id = m.property_id")
    meters.sort(key=lambda m: str(m["id"]))
    swaps = _rows("SELECT * FROM meter_swaps ORDER BY id", **SWAP_TYPES)
    _bindings(meters)
    op.drop_table("meter_swaps")
    op.drop_table("meters")
    table = op.create_table(
        "meters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("gateway_id", sa.String(length=64), nullable=True),
        *_meter_columns(),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"], name="fk_meters_org_id"),
        sa.ForeignKeyConstraint(["gateway_id"], ["gateways.id"], name="fk_meters_gateway_id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code", "org_id", name="uq_meters_code_org"),
        sa.UniqueConstraint("gateway_id", "code", name="uq_meters_gateway_code"),
    )
    _indexes()
    assert table is not None
    keep = ("org_id", "gateway_id", *FIELDS)
    _insert(table, [{"code": m["id"], **{k: m[k] for k in keep}} for m in meters])
    new_id = {r["code"]: r["id"] for r in _rows("SELECT id, code FROM meters")}
    _swaps(sa.Integer(), swaps, new_id)


def downgrade() -> None:
    meters = _rows("SELECT * FROM meters ORDER BY id")
    codes = [m["code"] for m in meters]
    if len(set(codes)) < len(codes):
        raise RuntimeError("two organisations have meters of the same id: cannot downgrade")
    code_of = {m["id"]: m["code"] for m in meters}
    swaps = _rows("SELECT * FROM meter_swaps ORDER BY id", **SWAP_TYPES)
    op.drop_table("meter_swaps")
    op.drop_table("meters")
    table = op.create_table(
        "meters",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("gateway_id", sa.String(length=64), nullable=True),
        *_meter_columns(),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes()
    assert table is not None
    _insert(
        table,
        [
            {"id": m["code"], "gateway_id": m["gateway_id"], **{k: m[k] for k in FIELDS}}
            for m in meters
        ],
    )
    _swaps(sa.String(length=64), swaps, code_of)
