"""Rule packs: every shipped pack validates, and a broken pack fails with the file, rule id and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from assist.analysis.rulepacks import (
    PACKS_DIR,
    RulePackError,
    load_rule_pack,
    parse_pack,
    validate_all_packs,
)

RULE_TYPES = {"gate", "must_say", "must_not_say", "sequence", "trigger"}


def test_every_shipped_pack_validates_and_covers_the_five_rule_types() -> None:
    packs = validate_all_packs()
    assert set(packs) == {"us", "uk", "es", "mx", "co", "pe"}
    for code, pack in packs.items():
        assert {r.type for r in pack.rules} == RULE_TYPES, code
        assert all(r.id.startswith(code.upper() + "-") for r in pack.rules), code
        assert load_rule_pack(code) == pack


def _write(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load((PACKS_DIR / "us.yaml").read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "us.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _rule(raw: dict, rule_id: str) -> dict:
    return next(r for r in raw["rules"] if r["id"] == rule_id)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda raw: _rule(raw, "US-THR-01").update(severity="severe"), "rule US-THR-01, field severity"),
        (lambda raw: _rule(raw, "US-REC-01")["deadline"].update(seconds=-5), "rule US-REC-01, field deadline.seconds"),
        (lambda raw: _rule(raw, "US-3P-01")["confirmations"]["en"].append(True), "rule US-3P-01, field confirmations"),
        (
            lambda raw: _rule(raw, "US-TIME-01")["window"].update(weekday="8-21"),
            "rule US-TIME-01, field window.weekday",
        ),
        (lambda raw: _rule(raw, "US-ABUSE-02")["phrases"].update({"fr": ["idiot"]}), "rule US-ABUSE-02, field phrases"),
        (lambda raw: _rule(raw, "US-ID-01")["phrases"]["en"].append("i am <nickname>"), "unknown slot <nickname>"),
        (lambda raw: _rule(raw, "US-PRESS-01")["phrases"]["en"].append("sell your car / house"), "write alternatives"),
        (lambda raw: _rule(raw, "US-DISP-01").pop("acknowledge"), "rule US-DISP-01, field acknowledge"),
        (lambda raw: _rule(raw, "US-CRED-02").update(type="must_shout"), "rule US-CRED-02, field type"),
        (lambda raw: raw["rules"].append(dict(_rule(raw, "US-PAY-01"))), "duplicate rule ids ['US-PAY-01']"),
        (lambda raw: raw.update(timezone="Mars/Olympus"), "field timezone"),
    ],
)
def test_broken_pack_names_file_rule_and_field(tmp_path: Path, edit, expected: str) -> None:
    path = _write(tmp_path, edit)
    with pytest.raises(RulePackError) as err:
        validate_all_packs(tmp_path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_pack_must_be_named_after_its_jurisdiction(tmp_path: Path) -> None:
    (tmp_path / "uk.yaml").write_text((PACKS_DIR / "us.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(RulePackError, match="jurisdiction"):
        validate_all_packs(tmp_path)


def test_unknown_jurisdiction_lists_the_packs() -> None:
    with pytest.raises(RulePackError, match="packs: co, es, mx, pe, uk, us"):
        load_rule_pack("fr")


@pytest.mark.parametrize(
    ("rule_id", "family", "expected"),
    [
        ("US-THR-01", "jail", "rule US-THR-01, field family"),  # not a label of intent.yaml's agent head
        ("US-3P-01", "arrest", "rule US-3P-01, field family"),  # only must-not-say and trigger rules have one
        ("US-DISP-01", "arrest", "rule US-DISP-01, field family"),  # an agent family on a debtor trigger
    ],
)
def test_rule_family_must_be_a_trained_label(tmp_path: Path, rule_id: str, family: str, expected: str) -> None:
    path = _write(tmp_path, lambda raw: _rule(raw, rule_id).update(family=family))
    with pytest.raises(RulePackError, match=expected):
        parse_pack(path)


def test_every_must_not_say_and_trigger_rule_keeps_its_phrases_or_a_family() -> None:
    """No rule goes silent: each has phrases, and the meaning heads know every family in use."""
    for pack in validate_all_packs().values():
        for r in pack.rules:
            if r.type in ("must_not_say", "trigger"):
                assert any(r.phrases.values()), r.id
                assert r.family is not None, r.id
