"""One gateway-and-cloud harness per test on each broker/database pair (see link_harness.Link)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.link_harness import Link


@pytest.fixture
def link(mqtt_url: str, database_url: str, tmp_path: Path) -> Iterator[Link]:
    harness = Link(mqtt_url, database_url, tmp_path)
    yield harness
    harness.close()
