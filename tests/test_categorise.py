"""Call categorisation on scripted EN/ES calls, plus promise / callback extraction."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from assist.qa.categorise import categorise, categorise_text, default_rules
from assist.qa.extract import find_amounts, find_dates, find_time
from assist.qa.script import Script
from assist.ruleset import packaged_rules

CALLS = sorted((Path(__file__).parent / "data" / "qa_calls").glob("*.yaml"))


@pytest.mark.parametrize("path", CALLS, ids=lambda p: p.stem)
def test_scripted_call_category(path: Path) -> None:
    script = Script.load(path)
    cat = categorise(script.call_data())
    exp = script.expect
    assert cat.contact == exp["contact"]
    assert cat.primary == exp["primary"]
    assert sorted(o.code for o in cat.outcomes) == sorted(exp["outcomes"])
    for code, details in exp.get("details", {}).items():
        got = cat.get(code)
        assert got is not None and {k: got.details.get(k) for k in details} == details
    for code, kind in exp.get("kinds", {}).items():
        assert cat.get(code).details["kind"] == kind


@pytest.mark.parametrize(
    ("text", "speaker", "expected"),
    [
        ("Look, I already paid that last month, I have a receipt.", "debtor", {"already_paid"}),
        ("Ya lo pagué en Oxxo, tengo el comprobante.", "debtor", {"already_paid"}),
        ("Talk to my lawyer, I filed for bankruptcy.", "debtor", {"attorney", "bankruptcy"}),
        ("Mi madre falleció el mes pasado.", "debtor", {"deceased"}),
        ("¿Esto es una estafa? No le voy a dar mis datos.", "debtor", {"scam_concern"}),
        ("Sorry, I don't speak English very well, do you speak Spanish?", "debtor", {"language_barrier"}),
        ("I want to file a complaint with the CFPB.", "debtor", {"complaint"}),
        ("I can't pay this month.", "debtor", set()),
        ("Your payment has been processed, your confirmation number is 5521.", "agent", {"paid_in_full"}),
    ],
)
def test_outcome_cues_en_es(text: str, speaker: str, expected: set[str]) -> None:
    assert categorise_text(text, speaker) == expected


def test_amounts_dates_times() -> None:
    ref = date(2025, 3, 12)  # a Wednesday
    assert [a.value for a in find_amounts("I can do two hundred and fifty dollars")] == [250.0]
    assert [(a.value, a.currency) for a in find_amounts("Le pago 1.500,50 € el viernes")] == [(1500.5, "EUR")]
    assert [(a.value, a.currency) for a in find_amounts("mil quinientos pesos")] == [(1500.0, "MXN")]
    assert find_amounts("I was born in 1985") == []
    assert [d.value for d in find_dates("on Friday", ref)] == [date(2025, 3, 14)]
    assert [d.value for d in find_dates("el 15 de abril", ref)] == [date(2025, 4, 15)]
    assert [d.value for d in find_dates("on the 3rd", ref)] == [date(2025, 4, 3)]
    assert [d.value for d in find_dates("mañana", ref)] == [date(2025, 3, 13)]
    assert find_time("call me at 3:30 pm") == "15:30"
    assert find_time("a las 10") == "10:00"


def test_every_code_has_a_title_in_both_languages_and_categories_carry_theirs() -> None:
    spec = packaged_rules().categories
    codes = {*spec.contact, *spec.outcomes, *spec.payment_methods, *spec.outcomes["dispute"].subtypes}
    titles = default_rules().titles
    assert set(titles) == codes
    assert all(set(t) == {"en", "es"} and all(t.values()) for t in titles.values())
    for path in CALLS:
        cat = categorise(Script.load(path).call_data()).to_dict()
        used = {cat["contact"], *(o["code"] for o in cat["outcomes"])}
        assert used <= set(cat["titles"]), (path.stem, used, cat["titles"])
