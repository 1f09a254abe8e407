"""doors, visitor passes, PINs, offline codes and access lists

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 19:46:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "offline_code_issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("door_id", sa.Integer(), nullable=False),
        sa.Column("door_code", sa.String(length=64), nullable=False),
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("property_id", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.Column("issued_by", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_offline_code_issues_door", "offline_code_issues", ["door_id", "issued_at"])
    op.create_table(
        "access_list_versions",
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("body_enc", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["gateway_id"],
            ["gateways.id"],
        ),
        sa.PrimaryKeyConstraint("gateway_id", "version"),
    )
    op.create_table(
        "gateway_access",
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("compiled_version", sa.BigInteger(), nullable=False),
        sa.Column("compiled_hash", sa.String(length=64), nullable=False),
        sa.Column("compiled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("sent_version", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_version", sa.BigInteger(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["gateway_id"],
            ["gateways.id"],
        ),
        sa.PrimaryKeyConstraint("gateway_id"),
    )
    op.create_table(
        "doors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("property_id", sa.Integer(), nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column(
            "scope",
            sa.Enum(
                "unit",
                "building",
                "property",
                name="door_scope",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(scope = 'unit' AND unit_id IS NOT NULL AND building_id IS NOT NULL) OR (scope = 'building' AND unit_id IS NULL AND building_id IS NOT NULL) OR (scope = 'property' AND unit_id IS NULL AND building_id IS NULL)",
            name="ck_doors_scope",
        ),
        sa.ForeignKeyConstraint(
            ["building_id"],
            ["buildings.id"],
        ),
        sa.ForeignKeyConstraint(
            ["gateway_id"],
            ["gateways.id"],
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gateway_id", "code", name="uq_doors_gateway_code"),
    )
    op.create_index("ix_doors_gateway_id", "doors", ["gateway_id"])
    op.create_index("ix_doors_property", "doors", ["property_id"])
    op.create_table(
        "pin_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("pin_hash", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(tenant_id IS NULL) != (user_id IS NULL)", name="ck_pin_credentials_subject"
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id"),
        sa.UniqueConstraint("user_id"),
    )
    op.create_table(
        "visitor_passes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("property_id", sa.Integer(), nullable=False),
        sa.Column("visitor_name", sa.String(length=100), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=200), nullable=False),
        sa.Column("issued_by_user_id", sa.Integer(), nullable=False),
        sa.Column("issued_by_tenant_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("max_uses BETWEEN 1 AND 100", name="ck_visitor_passes_uses"),
        sa.CheckConstraint("valid_until > valid_from", name="ck_visitor_passes_window"),
        sa.ForeignKeyConstraint(
            ["issued_by_tenant_id"],
            ["tenants.id"],
        ),
        sa.ForeignKeyConstraint(
            ["issued_by_user_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_visitor_passes_property_until", "visitor_passes", ["property_id", "valid_until"]
    )
    op.create_table(
        "visitor_pass_doors",
        sa.Column("pass_id", sa.Integer(), nullable=False),
        sa.Column("door_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["door_id"], ["doors.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["pass_id"], ["visitor_passes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pass_id", "door_id"),
    )
    op.create_index("ix_visitor_pass_doors_door_id", "visitor_pass_doors", ["door_id"])


def downgrade() -> None:
    op.drop_index("ix_visitor_pass_doors_door_id", table_name="visitor_pass_doors")
    op.drop_table("visitor_pass_doors")
    op.drop_index("ix_visitor_passes_property_until", table_name="visitor_passes")
    op.drop_table("visitor_passes")
    op.drop_table("pin_credentials")
    op.drop_index("ix_doors_property", table_name="doors")
    op.drop_index("ix_doors_gateway_id", table_name="doors")
    op.drop_table("doors")
    op.drop_table("gateway_access")
    op.drop_table("access_list_versions")
    op.drop_index("ix_offline_code_issues_door", table_name="offline_code_issues")
    op.drop_table("offline_code_issues")
