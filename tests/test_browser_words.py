"""Every word of the three pages in English and Spanish (web_overlay/words.js), and every key the pages
use present there; the analysers' reason strings likewise (assist/rules/reasons.yaml)."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest

from assist.analysis.wording import Plural, reason_book
from web_overlay import STATIC_DIR

WORDS = json.loads(re.search(r"export default (\{.*\});\s*$", (STATIC_DIR / "words.js").read_text(), re.S).group(1))
PAGES = sorted(STATIC_DIR.glob("*.html"))
SCRIPTS = sorted(p for p in STATIC_DIR.glob("*.js") if p.name != "words.js")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def used_keys(path: Path) -> set[str]:
    """Keys named literally: data-i18n="k", data-i18n-attr="attr:k", t("k"), tn("k", n) (as k.one, k.other)."""
    text = path.read_text()
    keys = set(re.findall(r'data-i18n="([\w.]+)"', text))
    for pairs in re.findall(r'data-i18n-attr="([^"]+)"', text):
        keys |= {pair.split(":")[1].strip() for pair in pairs.split(",")}
    keys |= set(re.findall(r'\bt\("([\w.]+)"', text))
    keys |= {f"{k}.{form}" for k in re.findall(r'\btn\("([\w.]+)"', text) for form in ("one", "other")}
    return keys


def test_both_languages_have_every_word_with_the_same_placeholders():
    assert set(WORDS) == {"en", "es"} and set(WORDS["en"]) == set(WORDS["es"])
    for key, en in WORDS["en"].items():
        es = WORDS["es"][key]
        assert en.strip() and es.strip(), key
        assert set(PLACEHOLDER.findall(en)) == set(PLACEHOLDER.findall(es)), key


@pytest.mark.parametrize("path", PAGES + SCRIPTS, ids=lambda p: p.name)
def test_every_key_a_page_uses_is_in_the_words(path: Path):
    missing = used_keys(path) - set(WORDS["en"])
    assert not missing, missing


def test_every_page_has_the_language_switch():
    for page in PAGES:
        assert '<select id="language">' in page.read_text(), page.name


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_reason_strings_in_both_languages_with_the_same_fields():
    book = reason_book()
    for group in (book.style, book.style_suffixes, book.abandon):
        for code, words in group.items():
            en, es = words.en, words.es
            assert isinstance(en, Plural) == isinstance(es, Plural), code
            pairs = [(en.one, es.one), (en.other, es.other)] if isinstance(en, Plural) else [(en, es)]
            for a, b in pairs:
                assert a and b and fields(a) == fields(b), code
