"""Fonts for contracts: DejaVu Sans for Latin text with Droid Sans Fallback for Chinese glyphs.
Nothing is downloaded at run time: the project installs Debian's fonts-dejavu-core and
fonts-droid-fallback (Makefile, .ci/run); ANJU_CJK_FONT points at another TTF with CJK glyphs."""

from __future__ import annotations

from pathlib import Path

from protocols.errors import ConfigError

LATIN = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
CANDIDATES = (
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
)


def find_fonts(override: str = "") -> tuple[Path, Path]:
    """(Latin font, CJK font)."""
    if not LATIN.is_file():
        raise ConfigError(f"contracts need {LATIN}: `apt-get install fonts-dejavu-core`")
    return LATIN, find_cjk_font(override)


def find_cjk_font(override: str = "") -> Path:
    if override:
        path = Path(override)
        if not path.is_file():
            raise ConfigError(f"ANJU_CJK_FONT: {path} is not a file")
        return path
    for path in CANDIDATES:
        if path.is_file():
            return path
    raise ConfigError(
        "no font with Chinese glyphs for contracts: `apt-get install fonts-droid-fallback`"
        " (make install does it as root) or set ANJU_CJK_FONT to a TTF file"
    )
