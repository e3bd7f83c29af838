"""The humanisation index of one call: weighted components (rules/humanisation.yaml), each with the
evidence that set it (scorecard items, standing compliance warnings, negotiation-style readings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assist.analysis.wording import Words


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(_Strict):
    title: Words
    weight: float = Field(gt=0)
    items: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    style_band: str | None = None


class HumanisationRules(_Strict):
    """rules/humanisation.yaml, validated."""

    version: int
    title: Words
    components: dict[str, Component]

    @classmethod
    def load(cls) -> HumanisationRules:
        """The packaged humanisation.yaml, validated with every other rules file (assist/ruleset.py)."""
        from assist.ruleset import packaged_rules

        return packaged_rules().humanisation


def rule_family(rule_id: str) -> str:
    """The family of a rule id: the middle part (ES-AGGR-01 -> AGGR)."""
    parts = str(rule_id).split("-")
    return parts[1] if len(parts) >= 3 else str(rule_id)


def _evidence(source: str, code: str, value: float, quote: Mapping[str, Any] | None = None) -> dict[str, Any]:
    ev: dict[str, Any] = {"source": source, "id": code, "value": value}
    if quote:
        ev["quote"] = {k: quote.get(k) for k in ("speaker", "quote", "start", "end")}
    return ev


def _component(c: Component, items: Mapping[str, Mapping[str, Any]], warnings: Sequence[Mapping[str, Any]],
               styles: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    obs = []
    for item_id in c.items:
        item = items.get(item_id)
        if item and item.get("result") in ("pass", "fail"):
            quote = (item.get("evidence") or [None])[0]
            obs.append(_evidence("item", item_id, 1.0 if item["result"] == "pass" else 0.0, quote))
    if c.rules:
        hits = [w for w in warnings if rule_family(w.get("rule_id", "")) in c.rules]
        for w in hits:
            ev = w.get("evidence") or {}
            obs.append(_evidence("rule", str(w.get("rule_id")), 0.0, ev))
        if not hits:
            obs.append(_evidence("rule", "none", 1.0))
    if c.style_band and styles:
        outside = sum(s.get("band") != c.style_band for s in styles) / len(styles)
        obs.append(_evidence("style", c.style_band, round(outside, 3)))
    return obs


def humanisation(scorecard: Mapping[str, Any] | None, warnings: Sequence[Mapping[str, Any]],
                 styles: Sequence[Mapping[str, Any]], rules: HumanisationRules | None = None) -> dict[str, Any]:
    """{"index": 0-100 or None, "components": {name: {"value", "weight", "evidence"}}} for one call from its
    scorecard (dict), standing compliance warnings and style events (payload dicts)."""
    rules = rules or HumanisationRules.load()
    card = scorecard or {}
    items = {i["id"]: i for i in (*card.get("items", ()), *card.get("gate", ()))}
    parts: dict[str, Any] = {}
    total = weights = 0.0
    for name, c in rules.components.items():
        obs = _component(c, items, warnings, styles)
        value = round(100 * sum(o["value"] for o in obs) / len(obs), 1) if obs else None
        parts[name] = {"value": value, "weight": c.weight, "evidence": obs}
        if value is not None:
            total, weights = total + value * c.weight, weights + c.weight
    return {"index": round(total / weights, 1) if weights else None, "components": parts}
