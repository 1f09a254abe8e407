"""Every string the console marks for translation has its Chinese text in the catalog."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from cloud.console import i18n

CONSOLE = Path(i18n.__file__).parent


def test_every_marked_string_is_translated() -> None:
    zh = i18n.translations("zh_CN")
    found = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            CONSOLE, keywords={"_": None, "N_": None}, method_map=[("**.py", "python")]
        )
    }
    assert len(found) > 50
    missing = sorted(m for m in found if isinstance(m, str) and zh.gettext(m) == m)
    assert not missing


def test_an_unknown_locale_is_the_default() -> None:
    assert i18n.pick("../../etc/passwd") == "zh_CN"
    assert i18n.pick("en") == "en"
