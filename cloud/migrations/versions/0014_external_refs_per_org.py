"""external refs are unique per organisation; leases name their organisation

An import by one organisation must neither find nor collide with another's rows that happen to
carry the same id from an old system.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 04:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0002 left the global constraints unnamed: PostgreSQL named them, SQLite needs a convention.
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _global_name(table: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"{table}_external_ref_key"
    return f"uq_{table}_external_ref"


def upgrade() -> None:
    with op.batch_alter_table("leases", naming_convention=_NAMING) as batch_op:
        batch_op.add_column(sa.Column("org_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE leases SET org_id = "
        "(SELECT properties.org_id FROM properties WHERE properties.id = leases.property_id)"
    )
    for table in ("tenants", "leases"):
        with op.batch_alter_table(table, naming_convention=_NAMING) as batch_op:
            if table == "leases":
                batch_op.alter_column("org_id", existing_type=sa.Integer(), nullable=False)
                batch_op.create_foreign_key("fk_leases_org_id", "organisations", ["org_id"], ["id"])
            batch_op.drop_constraint(_global_name(table), type_="unique")
            batch_op.create_unique_constraint(
                f"uq_{table}_org_external_ref", ["org_id", "external_ref"]
            )


def downgrade() -> None:
    """Fails if two organisations share an external ref (the old rule cannot hold them)."""
    for table in ("tenants", "leases"):
        with op.batch_alter_table(table, naming_convention=_NAMING) as batch_op:
            batch_op.drop_constraint(f"uq_{table}_org_external_ref", type_="unique")
            batch_op.create_unique_constraint(_global_name(table), ["external_ref"])
            if table == "leases":
                batch_op.drop_constraint("fk_leases_org_id", type_="foreignkey")
                batch_op.drop_column("org_id")
