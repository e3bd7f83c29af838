"""One RuleSet: every rules file typed and validated at start-up; a broken copy names the file, the field
and the problem (RuleSet.load, `recobra rules check`, the service refusing to start); a tenant's rules folder
replaces the packaged files it holds."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from assist.app import create_app
from assist.cli import app as cli
from assist.languages import LANGUAGES
from assist.ruleset import HEADS, PACKAGED, PACKS, SCHEMAS, RulesError, RuleSet, check_rules, packaged_rules
from assist.settings import Settings, get_settings

Edit = Callable[[str], str]


def test_every_packaged_file_has_a_schema_and_loads() -> None:
    files = {p.relative_to(PACKAGED).as_posix() for p in PACKAGED.rglob("*") if p.is_file()}
    assert files == {*SCHEMAS, *HEADS, *(f"{PACKS}/{j}.yaml" for j in ("us", "uk", "es", "mx", "co", "pe"))}
    rules = packaged_rules()
    assert set(rules.packs) == {"us", "uk", "es", "mx", "co", "pe"}
    assert rules.eu_mode("es") and not rules.eu_mode("us") and not rules.eu_mode("mx")
    assert {p.name for p in rules.heads.values()} == set(HEADS)
    assert check_rules(PACKAGED) == []


def _copy(tmp_path: Path, name: str, edit: Edit) -> Path:
    """A tenant folder holding one edited copy of a packaged file."""
    folder = tmp_path / "rules"
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    text = (PACKAGED / name).read_text(encoding="utf-8")
    edited = edit(text)
    assert edited != text, "the edit did not apply"
    target.write_text(edited, encoding="utf-8")
    return folder


def _sub(old: str, new: str) -> Edit:
    return lambda text: text.replace(old, new, 1)


def _broken(name: str, old: str, new: str, problem: str) -> tuple[str, Edit, str]:
    """A case of the test below: `name` with its first `old` made `new` is refused as "{name}: {problem}"."""
    return name, _sub(old, new), f"{name}: {problem}"


BROKEN = [
    _broken("style.yaml", "window_s: 120", "windw_s: 120", "windw_s: Extra inputs are not permitted"),
    _broken("style.yaml", "window_s: 120", "window_s: -5", "window_s: Input should be greater than 0"),
    _broken("prompts.yaml", 'es: ["Veamos qué le encaja.', 'fr: ["Veamos qué le encaja.',
            "cards.9.say.es: Field required"),
    _broken("stress.yaml", "loudness_db:    {weight: 0.20, scale: 3.0}", "loudnes_db:    {weight: 0.20, scale: 3.0}",
            "features.loudnes_db.[key]"),
    _broken("abandon.yaml", "i have to go, ", "yes, ",
            "exit_groups.hang_up.phrases.en.0: Input should be a valid string"),
    _broken("abandon.yaml", "sentiment_low:   {weight: 0.10, from: -0.2, full: -0.8}",
            "sentiment_low:   {weight: 0.10, from: -0.2, full: -0.2}",
            "cues.sentiment_low: Value error, from and full must differ"),
    _broken("categories.yaml", "priority: [deceased,", "priority: [deceasd,",
            "(top level): Value error, priority names codes that are not outcomes: ['deceasd']"),
    _broken("summary.yaml", 'outcome: {en: "Outcome: {title}", es: "Resultado: {title}"}',
            'outcome: {en: "Outcome: {title}", sp: "Resultado: {title}"}', "lines.outcome.es: Field required"),
    _broken("scorecard.yaml", "check: purpose_stated", "check: purpose_said",
            "items.A3.check: unknown check 'purpose_said'"),
    _broken("scorecard.yaml", "within_s: 20}", "within_s: twenty}", "items.A1.within_s: 'twenty' is not"),
    _broken("scorecard.yaml", "min_prompts: 2}", "}", "items.A2.min_prompts: verified_before_details needs it"),
    _broken("scorecard.yaml", "vulnerable: [vulnerability, hardship_medical]", "vulnerable: [vulnerable]",
            "groups.vulnerable: not outcomes of categories.yaml: ['vulnerable']"),
    _broken("humanisation.yaml", "items: [D5]", "items: [D9]",
            "components.plain_language.items: not items of scorecard.yaml: ['D9']"),
    _broken("metadata.yaml", "  - debtor_state\n", "  - debtor state\n", "keys.3: String should match"),
    _broken("number_words.yaml", 'cuatro: "4"', 'cuatro: "cuatro"', "digits.es.cuatro"),
    _broken("account_rules.yaml", '      "*": "Attorney representation on file"\n', "",
            "rules.ACC-ATTY-01.citation: Value error, needs a '*' citation"),
    _broken("wellbeing.yaml", "long_call_s: 900.0", "long_call_s: 0", "long_call_s: Input should be"),
    _broken("reasons.yaml", "style:", "styles:", "style: Field required"),
    _broken("intent.yaml", "knn_weight:", "knn_wieght:", "knn_wieght: Extra inputs are not permitted"),
    ("compliance/us.yaml", lambda t: re.sub(r"(id: US-THR-01\n(?:.*\n)*?\s+family: )\w+", r"\1jail", t, count=1),
     "compliance/us.yaml: rule US-THR-01, field family: Value error, 'jail' is not one of"),
    _broken("compliance/es.yaml", "eu_mode: true", "eu_mode: sometimes",
            "field eu_mode: Input should be a valid boolean"),
    _broken("style.yaml", "bands:\n", "bands: [\n", "(file): not valid YAML"),
]


@pytest.mark.parametrize(("name", "edit", "expected"), BROKEN, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(BROKEN)])
def test_a_broken_file_is_named_with_its_field_and_problem(tmp_path: Path, name: str, edit: Edit,
                                                           expected: str) -> None:
    folder = _copy(tmp_path, name, edit)
    with pytest.raises(RulesError) as err:
        RuleSet.load(folder)
    assert expected in str(err.value), str(err.value)
    assert expected in "\n".join(map(str, check_rules(folder)))


def test_a_pack_is_checked_against_the_intent_labels_of_the_same_folder(tmp_path: Path) -> None:
    """A tenant that adds an agent family to its intent.yaml may use it in its packs."""
    raw = yaml.safe_load((PACKAGED / "intent.yaml").read_text(encoding="utf-8"))
    raw["heads"]["agent"]["labels"].append("jail")
    folder = _copy(tmp_path, "compliance/us.yaml", BROKEN[19][1])
    (folder / "intent.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert check_rules(folder) == []


def test_unknown_files_and_missing_folders_are_problems(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    shutil.copy(PACKAGED / "style.yaml", folder / "stlye.yaml")
    assert [(p.file, p.field) for p in check_rules(folder)] == [("stlye.yaml", "(file)")]
    assert "not a folder" in str(check_rules(tmp_path / "nowhere")[0])


def test_cli_checks_the_packaged_rules_and_a_broken_copy(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["rules", "check", str(PACKAGED)])
    assert ok.exit_code == 0 and ok.output.startswith("OK"), ok.output
    folder = _copy(tmp_path, "scorecard.yaml", _sub("check: purpose_stated", "check: purpose_said"))
    _copy(tmp_path, "summary.yaml", _sub('unknown: {en: "not said", es: "no indicado"}', 'unknown: {en: "not said"}'))
    bad = runner.invoke(cli, ["rules", "check", str(folder)])
    assert bad.exit_code == 1
    assert "2 problem(s)" in bad.output
    assert "scorecard.yaml: items.A3.check: unknown check 'purpose_said'" in bad.output
    assert "summary.yaml: lines.unknown.es: Field required" in bad.output


def test_the_service_does_not_start_on_broken_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _copy(tmp_path, "stress.yaml", _sub("trend_window_s: 60.0", "trend_window_s: soon"))
    expected = "stress.yaml: trend_window_s: Input should be a valid number"
    with pytest.raises(RulesError, match=expected):
        create_app(Settings(rules_dir=folder, database_url=f"sqlite:///{tmp_path / 'r.db'}"))
    monkeypatch.setenv("RECOBRA_RULES_DIR", str(folder))
    monkeypatch.setenv("RECOBRA_DATABASE_URL", f"sqlite:///{tmp_path / 'r.db'}")
    get_settings.cache_clear()
    try:
        served = CliRunner().invoke(cli, ["serve"])
    finally:
        get_settings.cache_clear()
    assert served.exit_code == 2 and "not starting" in served.output and expected in served.output, served.output


def test_languages_are_one_list() -> None:
    """Every user-visible text has an entry in each of LANGUAGES; the settings default to them."""
    from assist.analysis.wording import Words

    assert tuple(Words.model_fields) == LANGUAGES
    assert tuple(Settings().asr.languages) == LANGUAGES
    card = packaged_rules().scorecard
    assert all(set(item.title.render()) == set(LANGUAGES) for item in card.items.values())


def test_a_tenant_scorecard_bands_scores_and_reviewer_overrides(tmp_path: Path) -> None:
    """The bands a call was scored with stay with its stored card: a reviewer's override is banded by them."""
    from assist.qa.card import Scorecard
    from assist.qa.scorecard import override, score_call
    from assist.qa.script import Script

    folder = _copy(tmp_path, "scorecard.yaml",
                   _sub("bands: {meets: 85, coaching: 70}", "bands: {meets: 99, coaching: 98}"))
    tenant = RuleSet.load(folder)
    for name in ("en_promise_to_pay", "es_plan_hardship"):
        call = Script.load(Path(__file__).parent / "data" / "qa_calls" / f"{name}.yaml").call_data()
        packaged, own = score_call(call), score_call(call, rules=tenant)
        assert packaged.band == "meets_standard" and packaged.score == own.score and own.score < 98
        assert own.band == "below_standard" and own.bands == {"meets": 99, "coaching": 98}
        stored = Scorecard.from_dict(own.to_dict())
        passed = min((i for i in stored.items if i.result == "pass"), key=lambda i: i.points)
        assert override(stored, passed.id, "fail").band == "below_standard"
        assert override(stored, passed.id, "fail", packaged_rules().card.bands).band != "below_standard"
