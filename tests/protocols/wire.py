"""Hypothesis strategies for values the wire takes (protocols.mqtt.bounds)."""

from __future__ import annotations

from hypothesis import strategies as st

from protocols.mqtt.bounds import MAX_VALUE

values = st.floats(min_value=-MAX_VALUE, max_value=MAX_VALUE)


def texts(*, min_size: int = 0, max_size: int) -> st.SearchStrategy[str]:
    """Any characters but NUL and surrogates."""
    alphabet = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
    return st.text(alphabet, min_size=min_size, max_size=max_size)
