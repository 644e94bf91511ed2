"""Languages: aiogram's gettext i18n with the catalogs in app/locales, and the user's locale.

Why aiogram's own i18n (gettext + Babel) and not aiogram-i18n with Fluent: it ships with
aiogram, so there is no second framework to keep in step with it; the English source text
stays in the code where the reader needs it; Babel extracts every `_()` from the code, so a
test can prove that no text lacks its Russian; gettext's plural forms cover Russian's three.
Fluent's richer grammar would pay off with many languages and translators; we have two.

English is the source language and needs no catalog. Russian lives in
`app/locales/ru/LC_MESSAGES/messages.po`; `make locales` re-extracts the texts into it.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n, I18nMiddleware
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"
DEFAULT_LOCALE = "en"
LANGUAGES: dict[str, str] = {"en": "English", "ru": "Русский"}


def read_catalogs(path: Path, domain: str) -> dict[str, gettext.GNUTranslations]:
    """The .po catalogs under `path` (<locale>/LC_MESSAGES/<domain>.po), compiled in memory."""
    translations: dict[str, gettext.GNUTranslations] = {}
    for po_path in sorted(Path(path).glob(f"*/LC_MESSAGES/{domain}.po")):
        locale = po_path.parent.parent.name
        with po_path.open("rb") as source:
            catalog = read_po(source, locale=locale, domain=domain)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        translations[locale] = gettext.GNUTranslations(compiled)
    return translations


class CatalogI18n(I18n):
    """aiogram's I18n, loading the .po catalogs themselves.

    aiogram loads compiled .mo files only; compiling them here, in memory, at start-up means
    the repository holds no binary files that could fall out of step with the .po sources.
    """

    def find_locales(self) -> dict[str, gettext.GNUTranslations]:
        return read_catalogs(self.path, self.domain)

    def add_catalogs(self, path: Path, domain: str) -> None:
        """A plugin's catalogs: its texts are looked up after ours (gettext's fallback),
        through the same `_()`."""
        for locale, translations in read_catalogs(path, domain).items():
            if locale in self.locales:
                self.locales[locale].add_fallback(translations)
            else:
                self.locales[locale] = translations

    @contextmanager
    def context(self) -> Iterator[I18n]:
        # aiogram's gettext() looks the instance up as `I18n.get_current()`, and every
        # subclass of its context mixin gets a context variable of its own: set I18n's.
        token = I18n.set_current(self)
        try:
            yield self
        finally:
            I18n.reset_current(token)


def create_i18n() -> CatalogI18n:
    return CatalogI18n(path=LOCALES_DIR, default_locale=DEFAULT_LOCALE, domain=DOMAIN)


def locale_for(chosen: str | None, telegram_language: str | None) -> str:
    """The user's choice in /settings, else their Telegram language when we speak it."""
    if chosen in LANGUAGES:
        return chosen
    base = (telegram_language or "").split("-", 1)[0].lower()
    return base if base in LANGUAGES else DEFAULT_LOCALE


class UserLocaleMiddleware(I18nMiddleware):
    """Outer middleware after the access one: texts in the user's language."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user = data.get("user")
        if user is not None:
            return locale_for(user.language, user.telegram_language)
        tg_user = data.get("event_from_user")
        return locale_for(None, tg_user.language_code if tg_user else None)


def N_(message: str) -> str:
    """Marks a text for extraction without translating it (gettext_noop): for a text made
    before the user's language is known and translated when it is shown."""
    return message
