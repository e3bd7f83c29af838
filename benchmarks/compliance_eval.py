"""The compliance/prompt evaluation set (benchmarks/data/compliance_eval, see its README): typed loading,
and scoring of the live analysers on it, one line at a time, as a final utterance after a verified
opening. Used by benchmarks/train_intent.py (train and dev splits), benchmarks/cv_intent.py (train and
dev, cross-validated), benchmarks/bench_compliance.py and tests/test_intent_eval.py (dev and holdout)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from assist.analysis.base import CallContext
from assist.analysis.compliance import ComplianceAnalyser
from assist.analysis.prompts import card_index
from assist.analysis.rulepacks import MustNotSayRule, TriggerRule, load_rule_pack
from assist.events import ComplianceWarning
from models.embeddings import Embedder
from streaming.types import Speaker, Utterance

EVAL_DIR = Path(__file__).resolve().parent / "data" / "compliance_eval"
Region = Literal["en-US", "en-GB", "es-ES", "es-MX", "es-CO", "es-PE"]
JURISDICTION = {"en-US": "us", "en-GB": "uk", "es-ES": "es", "es-MX": "mx", "es-CO": "co", "es-PE": "pe"}
TICK_S = 45.0  # past every trigger's acknowledgement deadline
Line = Annotated[str, Field(min_length=1)]


class _UniqueKeys(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (the second would silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        if dupes := {k for k in keys if keys.count(k) > 1}:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {sorted(dupes)}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Group(_Model):
    group: str = Field(min_length=1, description="The phrasing family the lines share.")
    rule: str | None = Field(description="Rule family broken (agent) or started (debtor); null: none.")
    card: str | None = Field(None, description="Debtor lines: the prompt card called for; null: none.")
    account: dict[str, bool] = Field({}, description="Account facts the lines are said under.")
    lines: dict[Region, list[Line]]


class EvalFile(_Model):
    speaker: Literal["agent", "debtor"]
    split: Literal["train", "dev", "holdout"]
    groups: list[Group] = Field(min_length=1)


@dataclass(frozen=True)
class EvalLine:
    text: str
    speaker: Speaker
    region: str
    group: str
    rule: str | None
    card: str | None
    account: dict[str, bool]

    @property
    def language(self) -> str:
        return self.region[:2]

    @property
    def jurisdiction(self) -> str:
        return JURISDICTION[self.region]


def load_lines(split: str, speaker: str | None = None, directory: Path = EVAL_DIR) -> list[EvalLine]:
    """Every line of a split (optionally of one speaker), in file order."""
    out: list[EvalLine] = []
    for path in sorted(directory.glob(f"*.{split}.yaml")):
        spec = EvalFile.model_validate(yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeys))
        if speaker not in (None, spec.speaker):
            continue
        for g in spec.groups:
            for region, texts in g.lines.items():
                out += [EvalLine(t, Speaker(spec.speaker), region, g.group, g.rule, g.card, g.account) for t in texts]
    return out


def raised_families(line: EvalLine, semantic: bool = True, embedder: Embedder | None = None) -> set[str]:
    """Rule families the compliance analyser raises for the line: standing must-not-say warnings for an
    agent line, trigger acknowledgement warnings TICK_S later for a debtor line."""
    md: dict[str, Any] = {"identity_verified": True, "first_contact": False, "account": line.account}
    an = ComplianceAnalyser(CallContext("eval", line.language, line.jurisdiction, metadata=md), semantic, embedder)
    an.start()
    utt = Utterance(line.speaker, 1, 1.0, 4.0, line.text, (), line.language, True)
    events = an.on_utterance(utt) + an.on_tick(TICK_S)
    kind = MustNotSayRule if line.speaker is Speaker.AGENT else TriggerRule
    families = {r.id: r.family for r in load_rule_pack(line.jurisdiction).rules if isinstance(r, kind)}
    return {
        families[e.rule_id] or e.rule_id
        for e in events
        if isinstance(e, ComplianceWarning) and e.rule_id in families and e.status == "confirmed"
    }


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Tally) -> None:
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def score_compliance(lines: list[EvalLine], **kw: Any) -> tuple[dict[tuple[str, str], Tally], list[str]]:
    """Tallies per (rule family, language), and a description of every error."""
    tallies: dict[tuple[str, str], Tally] = {}
    errors: list[str] = []
    for line in lines:
        got = raised_families(line, **kw)
        for fam in got | ({line.rule} if line.rule else set()):
            t = tallies.setdefault((fam, line.language), Tally())
            if fam == line.rule and fam in got:
                t.tp += 1
            elif fam in got:
                t.fp += 1
                errors.append(f"FP {fam:16s} [{line.region}] {line.text}")
            else:
                t.fn += 1
                errors.append(f"FN {fam:16s} [{line.region}] {line.text}")
    return tallies, errors


def by_language(tallies: dict[tuple[str, str], Tally]) -> dict[str, Tally]:
    out: dict[str, Tally] = {}
    for (_, lang), t in tallies.items():
        out.setdefault(lang, Tally()).add(t)
    return out


def score_prompts(lines: list[EvalLine],
                  embedder: Embedder | None = None) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Per language: top-1 accuracy on lines calling for a card, and the share of lines calling for
    none that raised one; with a description of every error."""
    index = card_index(embedder=embedder)
    counts: dict[str, Counter[str]] = {}
    errors: list[str] = []
    for line in lines:
        found = index.match(line.text, True, embedder)
        got = found.card.id if found else None
        c = counts.setdefault(line.language, Counter())
        kind = "card" if line.card else "none"
        c[kind] += 1
        c[f"{kind}_ok"] += got == line.card
        if got != line.card:
            errors.append(f"{line.card or '-':20s} got {got or '-':20s} [{line.region}] {line.text}")
    return {
        lang: {"top1": c["card_ok"] / max(1, c["card"]), "false_raise": 1 - c["none_ok"] / max(1, c["none"]),
               "card_lines": c["card"], "none_lines": c["none"]}
        for lang, c in counts.items()
    }, errors
