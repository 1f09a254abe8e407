"""Find and load meter profiles from firmware-configs/meters or an explicit path."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from edge.yamlfile import read_yaml
from protocols.errors import ConfigError
from protocols.modbus.profile import Profile, parse_profile

_CHECKOUT_DIR = Path(__file__).resolve().parents[2] / "firmware-configs" / "meters"
# An installed wheel (a gateway's venv, no checkout) carries them under its prefix (pyproject's
# data-files).
PROFILE_DIR = _CHECKOUT_DIR if _CHECKOUT_DIR.is_dir() else Path(sys.prefix) / "share/anju/meters"


def resolve_profile(name_or_path: str, *, base: Path | None = None) -> Path:
    """A bare name means `firmware-configs/meters/<name>.yaml`; anything else is a path."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"}:
        if not candidate.is_absolute() and base is not None:
            candidate = base / candidate
        return candidate
    path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise ConfigError(
            f"unknown meter profile {name_or_path!r}; known profiles: {', '.join(known_profiles())}"
        )
    return path


def known_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str, *, base: Path | None = None) -> Profile:
    path = resolve_profile(name_or_path, base=base)
    if path.parent == PROFILE_DIR:
        return _shipped(path)
    return parse_profile(read_yaml(path), source=str(path))


@functools.cache
def _shipped(path: Path) -> Profile:
    """A profile shipped with the software is read once per process (a Profile is frozen):
    a remote configuration that replaces a bus does not parse its YAML again."""
    return parse_profile(read_yaml(path), source=str(path))
