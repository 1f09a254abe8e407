"""One gettext catalog for the console (English msgids, `locale/<lang>/LC_MESSAGES/console.po`),
read from the .po file itself so a fresh checkout needs no compile step; and money, dates and
numbers in the user's locale (Babel)."""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LOCALES = {"zh_CN": "中文", "en": "English"}
DEFAULT_LOCALE = "zh_CN"
CATALOG_DIR = Path(__file__).parent / "locale"
DOMAIN = "console"


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "translate later"
    """Marks a msgid for extraction where it is defined; it is translated where shown."""
    return message


def pick(locale: str | None) -> str:
    """A supported locale; anything else (an old or hostile value) is the default."""
    return locale if locale in LOCALES else DEFAULT_LOCALE


@cache
def translations(locale: str) -> gettext.NullTranslations:
    po = CATALOG_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@dataclass(frozen=True)
class Texts:
    """A page's strings and formats for one user."""

    locale: str
    tz: ZoneInfo

    def gettext(self, message: str) -> str:
        return translations(self.locale).gettext(message)

    def money(self, fen: int) -> str:
        """¥1,234.50 (integer fen; a minus sign before the ¥)."""
        sign = "-" if fen < 0 else ""
        amount = Decimal(abs(fen)) / 100
        return f"{sign}¥{format_decimal(amount, '#,##0.00', locale=self.locale)}"

    def number(self, value: int | Decimal | float) -> str:
        return format_decimal(value, locale=self.locale)

    def day(self, value: date | None) -> str:
        return "" if value is None else format_date(value, "medium", locale=self.locale)

    def moment(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return format_datetime(value, "medium", tzinfo=self.tz, locale=self.locale)
