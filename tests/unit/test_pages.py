"""A fetched page's readable text (app/tools/pages.py): the article of an HTML page in the
charset its server names, the whole text of a page with no article, plain text as it is."""

from __future__ import annotations

from app.tools.fetch import FetchedPage
from app.tools.pages import extract, where

RUSSIAN = (
    "<html><head><title>Кошки</title></head><body><nav>Главная | Магазин</nav><article>"
    "<h1>Почему кошки много спят</h1><p>Кошки спят от двенадцати до шестнадцати часов в "
    "сутки, сберегая силы для охоты на рассвете и в сумерках.</p></article></body></html>"
)


def test_an_article_in_the_servers_charset() -> None:
    page = FetchedPage("http://x.example/", "text/html", "windows-1251", RUSSIAN.encode("cp1251"))
    title, text = extract(page)
    assert title == "Почему кошки много спят"
    assert "Кошки спят от двенадцати до шестнадцати часов" in text
    assert "Магазин" not in text


def test_a_page_without_an_article_gives_all_its_text() -> None:
    page = FetchedPage("http://x.example/", "text/html", None, b"<html><body>ok</body></html>")
    assert extract(page) == ("", "ok")


def test_plain_text_is_kept_as_it_is_and_an_unknown_charset_reads_as_utf8() -> None:
    page = FetchedPage("http://x.example/a.txt", "text/plain", "utf8mb4", "Привет\n".encode())
    assert extract(page) == ("", "Привет\n")


def test_the_preview_names_the_host_and_path() -> None:
    assert where("https://en.wikipedia.org/wiki/Cat?x=1") == "en.wikipedia.org/wiki/Cat"
    assert where("https://example.com/") == "example.com"
