"""Every rules file (assist/rules/) typed and validated once, at start-up: `RuleSet.load(folder)`.

`folder` is a tenant's rules folder (setting rules_dir): each file in it replaces the packaged file of the
same name, file by file (compliance/xx.yaml likewise, and may add a jurisdiction); files it lacks come
from the packaged folder. A bad file raises RulesError naming the file, the field path and the problem;
`check_rules` lists every problem (`recobra rules check`). The service builds one RuleSet and hands its
parts to the analysers, QA and dashboard."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ValidationError

from assist.analysis.fact_prompts import FactPromptBook
from assist.analysis.intent import IntentConfig
from assist.analysis.prompts import PromptFile
from assist.analysis.rulepacks import RulePack, RulePackError, describe_pack_error
from assist.analysis.text import RULES_DIR
from assist.analysis.wording import ReasonBook
from assist.dashboard import WellbeingRules
from assist.insights_humanise import HumanisationRules
from assist.privacy import PrivacyRules
from assist.rules_schema import AbandonRules, StressFile, StyleRules
from assist.rules_schema_qa import (
    AccountRulesFile,
    CategoryFile,
    MetadataRules,
    NumberWordsFile,
    ScorecardFile,
    SummaryRules,
)

if TYPE_CHECKING:
    from assist.analysis.account_facts import AccountRules
    from assist.qa.card import CardRules
    from assist.qa.categorise import CategoryRules

PACKAGED = RULES_DIR
PACKS = "compliance"
SCHEMAS: Mapping[str, type[BaseModel]] = {
    "intent.yaml": IntentConfig, "prompts.yaml": PromptFile, "style.yaml": StyleRules, "stress.yaml": StressFile,
    "abandon.yaml": AbandonRules, "categories.yaml": CategoryFile, "scorecard.yaml": ScorecardFile,
    "reasons.yaml": ReasonBook, "summary.yaml": SummaryRules, "wellbeing.yaml": WellbeingRules,
    "humanisation.yaml": HumanisationRules, "metadata.yaml": MetadataRules, "number_words.yaml": NumberWordsFile,
    "account_rules.yaml": AccountRulesFile, "privacy.yaml": PrivacyRules, "fact_prompts.yaml": FactPromptBook,
}
"""Each rules file and its schema (intent.yaml first: the packs' families are checked against it)."""
HEADS = ("intent_heads.npz", "sentiment_head.npz")
"""Trained weights, loaded by their owners (assist/analysis/intent.py, sentiment.py) from these paths."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a rules folder."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


class RulesError(ValueError):
    """An invalid rules folder; `problems` name the file, the field path and what is wrong."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid rules:\n  " + "\n  ".join(map(str, problems)))


def _sources(folder: Path | None) -> tuple[dict[str, Path], list[Problem]]:
    """Relative name -> the file to read (the tenant's, else the packaged one), and unknown files."""
    files = {name: PACKAGED / name for name in (*SCHEMAS, *HEADS)}
    files |= {f"{PACKS}/{p.name}": p for p in sorted((PACKAGED / PACKS).glob("*.yaml"))}
    problems: list[Problem] = []
    if folder is None:
        return files, problems
    if not folder.is_dir():
        return files, [Problem(str(folder), "(folder)", "not a folder")]
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if name in SCHEMAS or name in HEADS or (name.startswith(f"{PACKS}/") and name.count("/") == 1
                                                 and name.endswith(".yaml")):
            files[name] = path
        elif not name.startswith(".") and "/." not in name:
            problems.append(Problem(name, "(file)", "not a rules file (known: " + ", ".join(SCHEMAS) +
                                    f", {PACKS}/<jurisdiction>.yaml)"))
    return files, problems


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: the same documents, faster


def _read(name: str, path: Path) -> tuple[Any, list[Problem]]:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER), []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return None, [Problem(name, "(file)", f"not valid YAML: {exc}")]


def _validate(name: str, path: Path, schema: type[BaseModel], context: dict[str, Any]) -> tuple[Any, list[Problem]]:
    raw, problems = _read(name, path)
    if problems:
        return None, problems
    try:
        model = schema.model_validate(raw, context=context)
    except ValidationError as exc:
        if schema is RulePack:
            return None, [Problem(name, *describe_pack_error(raw, e)) for e in exc.errors()]
        return None, [Problem(name, ".".join(map(str, e["loc"])) or "(top level)", e["msg"]) for e in exc.errors()]
    if isinstance(model, RulePack) and model.jurisdiction != Path(name).stem:
        return None, [Problem(name, "jurisdiction", f"{model.jurisdiction!r} must match the file name")]
    return model, []


@dataclass(frozen=True)
class RuleSet:
    """The validated rules the service runs on; `folder` is the tenant folder (None: the packaged one)."""

    folder: Path | None
    packs: Mapping[str, RulePack]
    intent: IntentConfig
    prompts: PromptFile
    style: StyleRules
    stress: StressFile
    abandon: AbandonRules
    categories: CategoryFile
    scorecard: ScorecardFile
    reasons: ReasonBook
    summary: SummaryRules
    wellbeing: WellbeingRules
    humanisation: HumanisationRules
    metadata: MetadataRules
    number_words: NumberWordsFile
    account_rules: AccountRulesFile
    privacy: PrivacyRules
    fact_prompts: FactPromptBook
    heads: Mapping[str, Path] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path | None = None) -> RuleSet:
        """Read and validate every file once; RulesError lists every problem."""
        files, problems = _sources(folder)
        models: dict[str, Any] = {}
        context: dict[str, Any] = {}
        for name, schema in SCHEMAS.items():
            models[name.removesuffix(".yaml")], found = _validate(name, files[name], schema, context)
            problems += found
            if name == "intent.yaml" and models["intent"] is not None:
                context["intent"] = models["intent"]
        packs: dict[str, RulePack] = {}
        for name in sorted(n for n in files if n.startswith(f"{PACKS}/")):
            packs[Path(name).stem], found = _validate(name, files[name], RulePack, context)
            problems += found
        problems += _cross_checks(models)
        if problems:
            raise RulesError(problems)
        heads = {name.removesuffix(".npz"): files[name] for name in HEADS}
        return cls(folder=folder, packs=packs, heads=heads, **models)

    def pack(self, jurisdiction: str) -> RulePack:
        """The jurisdiction's compliance pack (us, uk, es, mx, co, pe, or a tenant's own)."""
        code = jurisdiction.lower()
        if code not in self.packs:
            raise RulePackError(f"{PACKS}/{code}.yaml: no rule pack for jurisdiction {jurisdiction!r} "
                                f"(packs: {', '.join(sorted(self.packs))})")
        return self.packs[code]

    def eu_mode(self, jurisdiction: str) -> bool:
        """Whether calls under this jurisdiction run in EU mode (no agent emotion inference)."""
        pack = self.packs.get(jurisdiction.lower())
        return pack is not None and pack.eu_mode

    @cached_property
    def card(self) -> CardRules:
        """The scorecard, phrases compiled."""
        from assist.qa.card import CardRules

        return CardRules.from_spec(self.scorecard)

    @cached_property
    def account_book(self) -> AccountRules:
        """The account-facts rules, phrases and units compiled."""
        from assist.analysis.account_facts import AccountRules

        return AccountRules.from_spec(self.account_rules)

    @cached_property
    def category_rules(self) -> CategoryRules:
        """The categoriser's rules, phrases compiled."""
        from assist.qa.categorise import CategoryRules

        return CategoryRules.from_spec(self.categories)


def _cross_checks(models: Mapping[str, Any]) -> list[Problem]:
    """What one file says about another: scorecard checks and groups, humanisation items, summary codes
    (each checked when the files it reads are valid themselves)."""
    card, categories = models["scorecard"], models["categories"]
    problems = _card_checks(card) if card is not None else []
    if categories is not None:
        outcomes = set(categories.outcomes)
        listed: list[tuple[str, str, list[str]]] = []
        if card is not None:
            listed += [("scorecard.yaml", f"groups.{g}", c) for g, c in card.groups.items()]
        if models["summary"] is not None:
            listed += [("summary.yaml", k, getattr(models["summary"], k)) for k in ("objections", "hardship")]
        problems += [Problem(file, where, f"not outcomes of categories.yaml: {unknown}")
                     for file, where, codes in listed if (unknown := sorted(set(codes) - outcomes))]
    if card is not None and models["humanisation"] is not None:
        problems += [Problem("humanisation.yaml", f"components.{name}.items", f"not items of scorecard.yaml: {unknown}")
                     for name, component in models["humanisation"].components.items()
                     if (unknown := sorted(set(component.items) - set(card.items)))]
    return problems


def _card_checks(card: ScorecardFile) -> list[Problem]:
    """Each scorecard item names a known check and gives it exactly its numeric parameters."""
    from assist.qa.scorecard import CHECKS

    problems = []
    for item_id, item in card.items.items():
        check = CHECKS.get(item.check)
        if check is None:
            problems.append(Problem("scorecard.yaml", f"items.{item_id}.check",
                                    f"unknown check {item.check!r} (checks: {', '.join(CHECKS)})"))
            continue
        for param in sorted(set(check.params) - set(item.params)):
            problems.append(Problem("scorecard.yaml", f"items.{item_id}.{param}", f"{item.check} needs it"))
        for param, value in item.params.items():
            if param not in check.params:
                problems.append(Problem("scorecard.yaml", f"items.{item_id}.{param}",
                                        f"not a parameter of {item.check} ({', '.join(check.params) or 'none'})"))
            elif isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(Problem("scorecard.yaml", f"items.{item_id}.{param}", f"{value!r} is not a number"))
    return problems


def check_rules(folder: Path | None) -> list[Problem]:
    """Every problem of a rules folder as the service would load it (empty: it is valid)."""
    try:
        RuleSet.load(folder)
    except RulesError as exc:
        return exc.problems
    return []


@cache
def packaged_rules() -> RuleSet:
    """The packaged rules, loaded once: the default of code run outside the service (tests, tools)."""
    return RuleSet.load()


