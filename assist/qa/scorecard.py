"""QA scorecard: a compliance gate plus weighted items, each pass / fail / n.a. with evidence and why."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal

from assist.analysis.text import PhraseBook, load_rules
from assist.analysis.wording import Words
from assist.qa.calldata import CallData, Turn
from assist.qa.categorise import Category, categorise, default_rules
from assist.qa.extract import find_amounts, find_dates

Result = Literal["pass", "fail", "na"]
RESULTS: tuple[Result, ...] = ("pass", "fail", "na")


@dataclass(frozen=True)
class Quote:
    speaker: str
    quote: str
    start: float
    end: float

    @classmethod
    def of(cls, turn: Turn) -> Quote:
        return cls(turn.speaker, turn.text, turn.start, turn.end)


@dataclass(frozen=True)
class ItemScore:
    """One scorecard item (or a gate check, section "gate", 0 points)."""

    id: str
    section: str
    title: str
    points: float
    result: Result
    why: str
    evidence: tuple[Quote, ...] = ()
    titles: Mapping[str, str] = field(default_factory=dict)  # the title in each language (`title`: the call's)

    @property
    def earned(self) -> float:
        return self.points if self.result == "pass" else 0.0


@dataclass(frozen=True)
class Scorecard:
    """`score` is None when no item applies; `band` is compliance_fail whenever the gate fails."""

    items: tuple[ItemScore, ...]
    gate: tuple[ItemScore, ...]
    score: float | None
    band: str
    compliance_fail: bool
    sections: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    section_titles: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # section -> language -> title

    def item(self, item_id: str) -> ItemScore:
        return next(i for i in (*self.items, *self.gate) if i.id == item_id)

    def to_dict(self) -> dict[str, Any]:
        def item(i: ItemScore) -> dict[str, Any]:
            return {**{k: getattr(i, k) for k in ("id", "section", "title", "points", "result", "why")},
                    "evidence": [q.__dict__.copy() for q in i.evidence], "titles": dict(i.titles)}

        return {"score": self.score, "band": self.band, "compliance_fail": self.compliance_fail,
                "sections": {k: dict(v) for k, v in self.sections.items()},
                "section_titles": {k: dict(v) for k, v in self.section_titles.items()},
                "gate": [item(i) for i in self.gate], "items": [item(i) for i in self.items]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], bands: Mapping[str, float] | None = None) -> Scorecard:
        def item(d: Mapping[str, Any]) -> ItemScore:
            ev = tuple(Quote(**q) for q in d.get("evidence", ()))
            return ItemScore(d["id"], d["section"], d["title"], float(d["points"]), d["result"], d["why"], ev,
                             d.get("titles", {}))

        return summarise([item(d) for d in raw["items"]], [item(d) for d in raw["gate"]], bands,
                         raw.get("section_titles", {}))


def summarise(items: Iterable[ItemScore], gate: Iterable[ItemScore], bands: Mapping[str, float] | None = None,
              section_titles: Mapping[str, Mapping[str, str]] | None = None) -> Scorecard:
    """Score, band and section totals from item results (used again after a reviewer's override)."""
    items, gate = tuple(items), tuple(gate)
    bands = bands or default_card().bands
    sections: dict[str, dict[str, float]] = {}
    for i in items:
        s = sections.setdefault(i.section, {"earned": 0.0, "applicable": 0.0})
        if i.result != "na":
            s["earned"] += i.earned
            s["applicable"] += i.points
    applicable = sum(s["applicable"] for s in sections.values())
    score = round(100 * sum(s["earned"] for s in sections.values()) / applicable, 1) if applicable else None
    failed = any(g.result == "fail" for g in gate)
    if failed:
        band = "compliance_fail"
    elif score is None:
        band = "not_scored"
    else:
        band = ("meets_standard" if score >= bands["meets"]
                else "coaching" if score >= bands["coaching"] else "below_standard")
    return Scorecard(items, gate, score, band, failed, sections, section_titles or {})


@dataclass(frozen=True)
class CardRules:
    items: Mapping[str, Mapping[str, Any]]
    phrases: PhraseBook
    bands: Mapping[str, float]
    groups: Mapping[str, frozenset[str]]
    titles: Mapping[str, Mapping[str, str]]  # item id -> language -> title
    section_titles: Mapping[str, Mapping[str, str]]  # section -> language -> title

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CardRules:
        groups = {k: frozenset(raw[k]) for k in ("legal_stop", "agreement", "hardship", "objection", "vulnerable")}
        titles = {k: Words.model_validate(v["title"]).render() for k, v in raw["items"].items()}
        sections = {k: Words.model_validate(v).render() for k, v in raw["sections"].items()}
        return cls(raw["items"], PhraseBook.from_rules(raw["phrases"]), raw["bands"], groups, titles, sections)


@lru_cache(maxsize=1)
def default_card() -> CardRules:
    return CardRules.from_dict(load_rules("scorecard"))


@dataclass(frozen=True)
class _Ctx:
    call: CallData
    cat: Category
    card: CardRules

    def has(self, turn: Turn, phrase_cat: str) -> bool:
        return self.card.phrases.any(turn.norm, phrase_cat)

    def agent(self, phrase_cat: str, after: float = float("-inf"), before: float = float("inf")) -> list[Turn]:
        return [t for t in self.call.of("agent") if after <= t.start < before and self.has(t, phrase_cat)]

    def outcomes(self, group: str) -> list[Turn]:
        """Turns carrying the cue of any outcome in the scorecard group, in call order."""
        codes = self.card.groups[group]
        return [t for t in self.call.turns if _outcome_codes(self, t) & codes]

    def next_agent(self, turn: Turn, n: int) -> list[Turn]:
        return [t for t in self.call.of("agent") if t.start >= turn.start and t is not turn][:n]

    @property
    def rpc(self) -> bool:
        return self.cat.contact == "right_party"

    def any_outcome(self, group: str) -> bool:
        return any(self.cat.has(c) for c in self.card.groups[group])


def _outcome_codes(ctx: _Ctx, turn: Turn) -> set[str]:
    rules = default_rules()
    return {c for c in rules.outcomes.phrases
            if rules.speakers[c] in (turn.speaker, "any") and rules.outcomes.any(turn.norm, c)}


Check = Callable[[_Ctx, Mapping[str, Any]], tuple[Result, str, tuple[Quote, ...]]]
_NA_NOT_RPC: tuple[Result, str, tuple[Quote, ...]] = ("na", "the right party was not reached", ())


def _ev(*turns: Turn | None) -> tuple[Quote, ...]:
    return tuple(Quote.of(t) for t in turns if t is not None)


def _a1(ctx: _Ctx, p: Mapping[str, Any]):
    agent = ctx.call.of("agent")
    if not agent:
        return "na", "the agent did not speak", ()
    hits = ctx.agent("self_id", before=agent[0].start + p["within_s"])
    if hits:
        return "pass", "agent named themself / the company at the start", _ev(hits[0])
    return "fail", f"no self-identification in the first {p['within_s']} s", _ev(agent[0])


def _a2(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc:
        return _NA_NOT_RPC
    disclosed = ctx.agent("debt")
    t_disclose = disclosed[0].start if disclosed else float("inf")
    turns = ctx.call.turns
    answered = [t for i, t in enumerate(turns[:-1]) if t.speaker == "agent" and t.start < t_disclose
                and ctx.has(t, "verify") and turns[i + 1].speaker == "debtor"]
    if len(answered) >= p["min_prompts"]:
        return "pass", f"{len(answered)} verification prompts answered before account details", _ev(*answered)
    why = f"{len(answered)} verification prompt(s) answered before account details (need {p['min_prompts']})"
    return "fail", why, _ev(*answered, disclosed[0] if disclosed else None)


def _a3(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc:
        return _NA_NOT_RPC
    t_rpc = ctx.cat.contact_cue.start if ctx.cat.contact_cue else ctx.call.turns[0].start
    hits = [t for t in ctx.call.of("agent") if t_rpc <= t.start <= t_rpc + p["within_s"]
            and (ctx.has(t, "purpose") or ctx.has(t, "debt"))]
    if hits:
        return "pass", "purpose of the call stated after verification", _ev(hits[0])
    return "fail", f"no purpose statement within {p['within_s']} s of verification", ()


def _b1(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc:
        return _NA_NOT_RPC
    offers = ctx.agent("option")
    questions = ctx.agent("open_question", before=offers[0].start if offers else float("inf"))
    if questions:
        return "pass", "open question about the consumer's situation", _ev(questions[0])
    return "fail", "no open question before the first offer", _ev(offers[0] if offers else None)


def _acknowledged(ctx: _Ctx, triggers: list[Turn], cats: tuple[str, ...], within: int):
    missed = [t for t in triggers if not any(ctx.has(a, c) for a in ctx.next_agent(t, within) for c in cats)]
    answered = [a for t in triggers for a in ctx.next_agent(t, within) if any(ctx.has(a, c) for c in cats)]
    return missed, answered


def _b2(ctx: _Ctx, p: Mapping[str, Any]):
    triggers = [t for t in ctx.outcomes("objection") if t.speaker == "debtor" and t.n_words >= p["min_words"]]
    if not triggers:
        return "na", "the consumer gave no explanation to acknowledge", ()
    missed, answered = _acknowledged(ctx, triggers, ("empathy", "paraphrase"), p["within_turns"])
    if missed:
        return "fail", "the explanation was not acknowledged", _ev(*missed)
    return "pass", "the consumer's explanation was acknowledged", _ev(triggers[0], answered[0])


def _b3(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc:
        return _NA_NOT_RPC
    hits = ctx.agent("contact_details")
    return ("pass", "contact details / best time confirmed", _ev(hits[0])) if hits else (
        "fail", "contact details were not confirmed", ())


def _c1(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc:
        return _NA_NOT_RPC
    if ctx.any_outcome("legal_stop"):
        return "na", "a legal stop / dispute was raised: no payment request is due", ()
    hits = ctx.agent("ask_payment")
    vulnerable = [t for t in ctx.outcomes("vulnerable") if t.speaker == "debtor"]
    if vulnerable and not (hits and hits[0].start < vulnerable[0].start):
        return "na", "vulnerability disclosed before any payment request (see F1)", ()
    return ("pass", "clear request for payment", _ev(hits[0])) if hits else (
        "fail", "the agent never asked for payment", ())


def _c2(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc or ctx.any_outcome("legal_stop"):
        return "na", "no negotiation (not the right party, or a legal stop)", ()
    if ctx.any_outcome("vulnerable"):
        return "na", "vulnerability disclosed: handled under F1", ()
    triggers = [t for t in ctx.outcomes("objection") if t.speaker == "debtor"]
    if not triggers:
        return "na", "no objection or hardship to respond to", ()
    first = min(triggers, key=lambda t: t.start)
    offers = ctx.agent("option", after=first.start)
    if offers:
        return "pass", "an option suited to the situation was offered", _ev(first, offers[0])
    return "fail", "no payment option offered after the objection / hardship", _ev(first)


def _c3(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc or ctx.any_outcome("legal_stop"):
        return "na", "no commitment due (not the right party, or a legal stop)", ()
    if paid := ctx.cat.get("paid_in_full"):
        return "pass", "paid in full on the call", (Quote(paid.cue.speaker, paid.cue.quote, paid.cue.start, paid.cue.end),)
    missing_best: list[str] | None = None
    for o in ctx.cat.outcomes:
        quote = Quote(o.cue.speaker, o.cue.quote, o.cue.start, o.cue.end)
        if o.code == "callback" and (o.details.get("date") or o.details.get("time")):
            return "pass", f"callback agreed ({o.details.get('date_text', '')} {o.details.get('time', '')})".replace("  ", " "), (quote,)
        if o.code in ctx.card.groups["agreement"]:
            missing = [k for k in ("amount", "date", "method") if not o.details.get(k)]
            if not missing:
                d = o.details
                return "pass", f"{o.code}: {d['amount']:g} {d.get('currency') or ''} on {d.get('date') or d['date_text']} by {d['method']}", (quote,)
            if missing_best is None or len(missing) < len(missing_best):
                missing_best = missing
    if missing_best:
        return "fail", f"commitment without {', '.join(missing_best)}", ()
    return "fail", "no commitment (amount + date + method) or callback secured", ()


def _c4(ctx: _Ctx, p: Mapping[str, Any]):
    objections = [t for t in ctx.outcomes("objection") if t.speaker == "debtor"]
    if not objections:
        return "na", "no objection raised", ()
    missed, answered = _acknowledged(ctx, objections, ("ack", "empathy", "option"), p["within_turns"])
    warned = [e for e in ctx.call.standing_warnings()
              if e.get("severity") in ("warning", "critical") and float(e.get("t", 0)) >= objections[0].start]
    if warned:
        return "fail", f"compliance warning after the objection: {warned[0].get('title', warned[0].get('rule_id'))}", _ev(objections[0])
    if missed:
        return "fail", "objection not answered with a recommended response", _ev(*missed)
    return "pass", "objections answered with a recommended response", _ev(objections[0], answered[0])


def _d1(ctx: _Ctx, p: Mapping[str, Any]):
    negative_at = [float(e["start"]) if "start" in e else float(e.get("t", 0)) for e in ctx.call.events_of("sentiment")
                   if e.get("speaker") == "debtor" and float(e.get("score", 0)) <= p["negative_sentiment_below"]]
    triggers = [t for t in ctx.call.of("debtor")
                if t in ctx.outcomes("hardship") or any(t.start <= x <= t.end + 0.5 for x in negative_at)]
    if not triggers:
        return "na", "no hardship or emotion expressed", ()
    missed, answered = _acknowledged(ctx, triggers, ("empathy",), p["within_turns"])
    if missed:
        return "fail", "no empathy after the consumer's hardship / emotion", _ev(*missed)
    return "pass", "empathy shown", _ev(triggers[0], answered[0])


def _d2(ctx: _Ctx, p: Mapping[str, Any]):
    debtor = ctx.call.of("debtor")
    if not debtor or not ctx.call.of("agent"):
        return "na", "only one side spoke", ()
    cuts = [a for a in ctx.call.of("agent") if a.n_words >= p["min_words"]
            and any(d.start < a.start < d.end - p["min_overlap_s"] for d in debtor)]
    allowed = p["max_per_5min"] * max(1.0, ctx.call.end_time / 300)
    if len(cuts) > allowed:
        return "fail", f"{len(cuts)} interruptions (allowed {allowed:g})", _ev(*cuts[:3])
    return "pass", f"{len(cuts)} interruptions (allowed {allowed:g})", _ev(*cuts[:3])


def _d3(ctx: _Ctx, p: Mapping[str, Any]):
    agent = sum(t.end - t.start for t in ctx.call.of("agent"))
    total = agent + sum(t.end - t.start for t in ctx.call.of("debtor"))
    if total < p["min_speech_s"] or not ctx.rpc:
        return "na", "too little two-party conversation to judge talk share", ()
    share = agent / total
    result: Result = "pass" if p["low"] <= share <= p["high"] else "fail"
    return result, f"agent talk share {share:.0%} (band {p['low']:.0%}-{p['high']:.0%})", ()


def _d4(ctx: _Ctx, p: Mapping[str, Any]):
    styles = ctx.call.events_of("style")
    if not styles:
        return "na", "no negotiation-style measurements", ()
    balanced = sum(e.get("band") == "balanced" for e in styles) / len(styles)
    result: Result = "pass" if balanced >= p["min_balanced_fraction"] else "fail"
    bands = sorted({e.get("band") for e in styles if e.get("band") != "balanced"})
    return result, f"style in band for {balanced:.0%} of windows" + (f" (else {', '.join(bands)})" if bands else ""), ()


def _d5(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc:
        return _NA_NOT_RPC
    hits = ctx.agent("check_understanding")
    return ("pass", "the agent checked understanding", _ev(hits[0])) if hits else (
        "fail", "the agent never checked understanding", ())


def _e1(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.any_outcome("agreement"):
        return "na", "no agreement to recap", ()
    ref = ctx.call.started_at.date() if ctx.call.started_at else None
    agent = ctx.call.of("agent")
    for i, t in enumerate(agent):
        if t.start >= ctx.call.end_time * (1 - p["last_fraction"]) and ctx.has(t, "recap"):
            text = " ".join(a.text for a in agent[i : i + 2])
            if find_amounts(text) and find_dates(text, ref):
                return "pass", "agreed amount and date recapped at the close", _ev(t)
            return "fail", "recap without the amount and date", _ev(t)
    return "fail", "no recap of the agreed terms at the close", ()


def _e2(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc:
        return _NA_NOT_RPC
    hits = ctx.agent("next_steps")
    return ("pass", "next steps / rights explained", _ev(hits[0])) if hits else (
        "fail", "no next steps or rights information", ())


def _e3(ctx: _Ctx, p: Mapping[str, Any]):
    disposition = ctx.call.metadata.get("disposition")
    if not disposition:
        return "na", "the agent's disposition is not recorded", ()
    result: Result = "pass" if disposition == ctx.cat.primary else "fail"
    return result, f"agent disposition {disposition!r}, categorised as {ctx.cat.primary!r}", ()


def _f1(ctx: _Ctx, p: Mapping[str, Any]):
    disclosures = [t for t in ctx.call.turns if t.speaker == "debtor" and _outcome_codes(ctx, t) & ctx.card.groups["vulnerable"]]
    if not disclosures:
        return "na", "no vulnerability disclosed", ()
    first = disclosures[0]
    pressure = ctx.agent("ask_payment", after=first.start)
    support = ctx.agent("support", after=first.start)
    if pressure:
        return "fail", "payment requested after the vulnerability disclosure", _ev(first, pressure[0])
    if not support:
        return "fail", "no support, time or signposting offered", _ev(first)
    return "pass", "support offered, no pressure afterwards", _ev(first, support[0])


CHECKS: Mapping[str, Check] = {
    "A1": _a1, "A2": _a2, "A3": _a3, "B1": _b1, "B2": _b2, "B3": _b3, "C1": _c1, "C2": _c2, "C3": _c3,
    "C4": _c4, "D1": _d1, "D2": _d2, "D3": _d3, "D4": _d4, "D5": _d5, "E1": _e1, "E2": _e2, "E3": _e3,
    "F1": _f1,
}


def _gate(call: CallData) -> list[ItemScore]:
    """One failed gate item per critical compliance warning that stands at the end of the call."""
    gate = []
    for e in call.standing_warnings():
        if e.get("severity") != "critical":
            continue
        ev = e.get("evidence")
        quote = (Quote(ev["speaker"], ev["quote"], float(ev["start"]), float(ev["end"])),) if ev else ()
        why = f"{e.get('rule_id')}: {e.get('title', '')} ({e.get('citation', '')})"
        gate.append(ItemScore(f"G{e.get('seq', len(gate) + 1)}", "gate", str(e.get("title", e.get("rule_id"))), 0.0, "fail", why, quote))
    return gate


def score_call(call: CallData, category: Category | None = None, card: CardRules | None = None) -> Scorecard:
    """The scorecard of a stored call; a pure function of its turns, analysis events and metadata."""
    card = card or default_card()
    ctx = _Ctx(call, category or categorise(call), card)
    items = []
    for item_id, spec in card.items.items():
        result, why, evidence = CHECKS[item_id](ctx, spec)
        titles = card.titles[item_id]
        title = titles.get(call.language) or titles["en"]
        items.append(ItemScore(item_id, spec["section"], title, float(spec["points"]), result, why, evidence, titles))
    return summarise(items, _gate(call), card.bands, card.section_titles)


def override(card: Scorecard, item_id: str, result: Result, bands: Mapping[str, float] | None = None) -> Scorecard:
    """The scorecard with one item's result set by a reviewer, totals recomputed."""
    if result not in RESULTS:
        raise ValueError(f"result must be one of {RESULTS}")
    items = [replace(i, result=result) if i.id == item_id else i for i in card.items]
    gate = [replace(g, result=result) if g.id == item_id else g for g in card.gate]
    return summarise(items, gate, bands, card.section_titles)
