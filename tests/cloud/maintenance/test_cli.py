"""`anju cloud calendar`: a year set from a file, checked, and then in effect."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cloud.test_cli_admin import env, run

__all__ = ["env"]


def test_set_and_show_a_year(env: dict[str, str], tmp_path: Path) -> None:
    good = tmp_path / "2027.json"
    good.write_text(json.dumps({"holidays": ["2027-01-01"], "workdays": ["2027-01-02"]}))
    r = run(env, "calendar", "set", "2027", str(good))
    assert r.exit_code == 0, r.output
    shown = json.loads(run(env, "calendar", "show", "2027").output)
    assert shown == {"holidays": ["2027-01-01"], "workdays": ["2027-01-02"]}
    assert "2026-10-01" in run(env, "calendar", "show", "2026").output  # shipped


def test_refuses_a_file_for_another_year(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"holidays": ["2028-01-01"], "workdays": []}))
    r = run(env, "calendar", "set", "2027", str(bad))
    assert r.exit_code != 0
    assert "outside 2027" in r.output
