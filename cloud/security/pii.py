"""Personal numbers on tenant rows: normalise, validate, encrypt + index, mask, reveal."""

from __future__ import annotations

import re
from typing import Literal

from cloud.models.people import Tenant
from cloud.security.crypto import FieldKeys, blind_index, decrypt_str, encrypt_str
from protocols.errors import AnjuError

PiiField = Literal["id_number", "phone", "bank_card", "email"]
PII_FIELDS: tuple[PiiField, ...] = ("id_number", "phone", "bank_card", "email")
# Deliberately loose: one @, a dot in the domain, no spaces. Delivery is the real check.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}")

_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK = "10X98765432"


class InvalidPiiError(AnjuError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def normalize(field: PiiField, value: str, *, doc_type: str = "cn_id") -> str:
    """The canonical form that is encrypted and indexed; raises InvalidPiiError."""
    if field == "email":
        address = value.strip().lower()
        if len(address) > 254 or not _EMAIL.fullmatch(address):
            raise InvalidPiiError(field, "email must look like name@example.com")
        return address
    text = re.sub(r"[\s-]", "", value).upper()
    if field == "id_number":
        if doc_type == "cn_id":
            return _check_cn_id(text)
        if not re.fullmatch(r"[A-Z0-9]{5,20}", text):
            raise InvalidPiiError(field, "document number must be 5-20 letters or digits")
        return text
    if field == "phone":
        text = text.removeprefix("+86") if text.startswith("+86") else text.removeprefix("+")
        if not re.fullmatch(r"\d{6,15}", text):
            raise InvalidPiiError(field, "phone must be 6-15 digits")
        return text
    if not re.fullmatch(r"\d{12,19}", text):
        raise InvalidPiiError(field, "bank card must be 12-19 digits")
    return text


def _check_cn_id(text: str) -> str:
    if not re.fullmatch(r"\d{17}[\dX]", text):
        raise InvalidPiiError("id_number", "resident ID must be 17 digits and a check character")
    total = sum(int(d) * w for d, w in zip(text[:17], _CN_ID_WEIGHTS, strict=True))
    if _CN_ID_CHECK[total % 11] != text[17]:
        raise InvalidPiiError("id_number", "resident ID check character does not match")
    return text


def cn_id_check_char(first17: str) -> str:
    """The GB 11643 check character (used by the demo data generator)."""
    total = sum(int(d) * w for d, w in zip(first17, _CN_ID_WEIGHTS, strict=True))
    return _CN_ID_CHECK[total % 11]


def mask(field: PiiField, value: str) -> str:
    """What every response shows: e.g. 1101**********1234, 138****5678, 6222***********1234."""
    if field == "email":
        name, _, domain = value.partition("@")
        return f"{name[:1]}***@{domain}"
    if field == "phone":
        keep_head, keep_tail = 3, 4
    else:
        keep_head, keep_tail = 4, 4
    if len(value) <= keep_head + keep_tail:
        return "*" * len(value)
    return value[:keep_head] + "*" * (len(value) - keep_head - keep_tail) + value[-keep_tail:]


def context(field: PiiField) -> str:
    return f"tenants.{field}"


def index_of(keys: FieldKeys, field: PiiField, value: str, *, doc_type: str = "cn_id") -> str:
    return blind_index(
        keys, normalize(field, value, doc_type=doc_type), context=context(field).encode()
    )


def set_pii(
    tenant: Tenant, keys: FieldKeys, field: PiiField, value: str | None, *, doc_type: str = "cn_id"
) -> None:
    if value is None or value == "":
        if field == "id_number":
            raise InvalidPiiError(field, "is required")
        setattr(tenant, f"{field}_enc", None)
        setattr(tenant, f"{field}_bidx", None)
        return
    enc, bidx = sealed(keys, field, normalize(field, value, doc_type=doc_type))
    setattr(tenant, f"{field}_enc", enc)
    setattr(tenant, f"{field}_bidx", bidx)


def sealed(keys: FieldKeys, field: PiiField, canonical: str) -> tuple[bytes, str]:
    """The envelope and the blind index of a value already normalised (bulk import's path)."""
    return (
        encrypt_str(keys, canonical, context=context(field)),
        blind_index(keys, canonical, context=context(field).encode()),
    )


def reveal(tenant: Tenant, keys: FieldKeys, field: PiiField) -> str | None:
    blob: bytes | None = getattr(tenant, f"{field}_enc")
    return None if blob is None else decrypt_str(keys, blob, context=context(field))


def masked(tenant: Tenant, keys: FieldKeys, field: PiiField) -> str | None:
    value = reveal(tenant, keys, field)
    return None if value is None else mask(field, value)
