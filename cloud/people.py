"""Creating and finding tenants; shared by the API, the importer and the demo seed. No commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.models import Property, Tenant
from cloud.security import pii
from cloud.security.crypto import FieldKeys


def new_tenant(
    session: Session,
    keys: FieldKeys,
    prop: Property,
    *,
    name: str,
    id_number: str,
    now: datetime,
    id_doc_type: str = "cn_id",
    phone: str | None = None,
    bank_card: str | None = None,
    email: str | None = None,
    external_ref: str | None = None,
) -> Tenant:
    """Validate, encrypt and add a tenant (raises pii.InvalidPiiError naming the field)."""
    tenant = Tenant(
        org_id=prop.org_id,
        property_id=prop.id,
        name=name,
        id_doc_type=id_doc_type,
        external_ref=external_ref,
        created_at=now,
    )
    pii.set_pii(tenant, keys, "id_number", id_number, doc_type=id_doc_type)
    pii.set_pii(tenant, keys, "phone", phone)
    pii.set_pii(tenant, keys, "bank_card", bank_card)
    pii.set_pii(tenant, keys, "email", email)
    session.add(tenant)
    return tenant


def find_by_id_number(
    session: Session, keys: FieldKeys, org_id: int, id_number: str, *, id_doc_type: str = "cn_id"
) -> Tenant | None:
    bidx = pii.index_of(keys, "id_number", id_number, doc_type=id_doc_type)
    return session.scalar(
        select(Tenant).where(Tenant.org_id == org_id, Tenant.id_number_bidx == bidx).limit(1)
    )
