"""People: tenants (and their co-tenants). Personal numbers are stored only encrypted.

Each `*_enc` column holds an AES-256-GCM envelope from `cloud.security.crypto` (it names its key
id, so keys rotate); each `*_bidx` holds a keyed HMAC of the normalised value for exact lookup.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloud.models.base import Base


class Tenant(Base):
    __tablename__ = "tenants"
    __table_args__ = (
        Index("ix_tenants_property_name", "property_id", "name"),
        Index("ix_tenants_name", "name", postgresql_ops={"name": "text_pattern_ops"}),
        Index("ix_tenants_id_number_bidx", "id_number_bidx"),
        Index("ix_tenants_phone_bidx", "phone_bidx"),
        Index("ix_tenants_bank_card_bidx", "bank_card_bidx"),
        UniqueConstraint("org_id", "external_ref", name="uq_tenants_org_external_ref"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    # The property that registered the person: decides which staff may see them.
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    name: Mapped[str] = mapped_column(String(100))
    id_doc_type: Mapped[str] = mapped_column(String(16), default="cn_id")  # cn_id, passport, ...
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_bidx: Mapped[str] = mapped_column(String(64))
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_bidx: Mapped[str | None] = mapped_column(String(64))
    bank_card_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    bank_card_bidx: Mapped[str | None] = mapped_column(String(64))
    email_enc: Mapped[bytes | None] = mapped_column(LargeBinary)  # where reminders go
    email_bidx: Mapped[str | None] = mapped_column(String(64))
    # Import idempotency: the operator's id for this person in their old system (unique in the
    # organisation only: another operator's old system may use the same ids).
    external_ref: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
