"""Face enrollment: biometric data under PIPL. Consent is recorded; the embeddings are kept only
encrypted (one AES-GCM envelope bound to the tenant); photos are never stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.models.base import Base


class FaceEnrollment(Base):
    __tablename__ = "face_enrollments"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    # 1-5 float32 embeddings, concatenated, sealed with context "face_enrollments:<tenant_id>"
    embeddings_enc: Mapped[bytes] = mapped_column(LargeBinary)
    photo_count: Mapped[int] = mapped_column(Integer)
    contract: Mapped[str] = mapped_column(String(128))  # model@version/dim/normalisation
    consent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consent_method: Mapped[str] = mapped_column(String(64))  # e.g. "paper form", "app"
    consent_note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
