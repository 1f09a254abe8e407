"""Normalising, validating and masking personal numbers."""

from __future__ import annotations

import pytest

from cloud.security import pii
from cloud.security.pii import InvalidPiiError
from tests.cloud.world import cn_id


def test_resident_id_check_character() -> None:
    good = cn_id(7)
    assert pii.normalize("id_number", good.lower()) == good
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    with pytest.raises(InvalidPiiError, match="check character"):
        pii.normalize("id_number", bad)
    assert pii.normalize("id_number", "e1234567", doc_type="passport") == "E1234567"


@pytest.mark.parametrize(
    ("field", "raw", "canonical"),
    [
        ("phone", "+86 138-0013-8000", "13800138000"),
        ("phone", "0755 8888 6666", "075588886666"),
        ("bank_card", "6222 0202 0011 2233 445", "6222020200112233445"),
    ],
)
def test_normalize(field: pii.PiiField, raw: str, canonical: str) -> None:
    assert pii.normalize(field, raw) == canonical


@pytest.mark.parametrize(
    ("field", "raw"), [("phone", "12ab"), ("bank_card", "1234"), ("id_number", "")]
)
def test_invalid_values_name_the_field(field: pii.PiiField, raw: str) -> None:
    with pytest.raises(InvalidPiiError) as err:
        pii.normalize(field, raw)
    assert err.value.field == field


def test_masks() -> None:
    assert pii.mask("id_number", "110101199001011234") == "1101**********1234"
    assert pii.mask("phone", "13800138000") == "138****8000"
    assert pii.mask("bank_card", "6222020200112233445") == "6222***********3445"
    assert pii.mask("phone", "1234567") == "*******"
