"""QA scorecard: a compliance gate plus weighted items, each pass / fail / n.a. with evidence and why."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from assist.analysis.wording import Words, in_language
from assist.events import Reason
from assist.qa.calldata import CallData, Turn
from assist.qa.card import (
    RESULTS,
    CardRules,
    ItemScore,
    Quote,
    Result,
    Scorecard,
    summarise,
)
from assist.qa.categorise import Category, CategoryRules, categorise
from assist.qa.extract import find_amounts, find_dates

if TYPE_CHECKING:
    from assist.ruleset import RuleSet

__all__ = ["Result", "Scorecard", "override", "score_call"]  # Result and Scorecard from card.py

@dataclass(frozen=True)
class _Ctx:
    call: CallData
    cat: Category
    card: CardRules
    categories: CategoryRules

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

    def why(self, code: str, **params: Any) -> Reason:
        """Why an item got its result, in every language."""
        return self.card.whys[code].reason(code, **params)

    def title(self, code: str | None) -> Mapping[str, str] | str:
        """A category code's title per language (the code itself when it has none)."""
        return self.categories.titles.get(code or "", str(code))

    def term_list(self, codes: list[str]) -> dict[str, str]:
        """The terms named by `codes`, comma-separated, per language."""
        words = [self.card.terms[c].render() if c in self.card.terms else {} for c in codes]
        return {lang: ", ".join(w.get(lang, c) for w, c in zip(words, codes)) for lang in Words.model_fields}


def _outcome_codes(ctx: _Ctx, turn: Turn) -> set[str]:
    rules = ctx.categories
    return {c for c in rules.outcomes.phrases
            if rules.speakers[c] in (turn.speaker, "any") and rules.outcomes.any(turn.norm, c)}


@dataclass(frozen=True)
class Check:
    """A scorecard item's logic: `judge(ctx, params)` -> (result, why, evidence); `params` it reads."""

    judge: Callable[[_Ctx, Mapping[str, Any]], tuple[Result, Reason, tuple[Quote, ...]]]
    params: tuple[str, ...] = ()


def _ev(*turns: Turn | None) -> tuple[Quote, ...]:
    return tuple(Quote.of(t) for t in turns if t is not None)


def _greeting_self_id(ctx: _Ctx, p: Mapping[str, Any]):
    agent = ctx.call.of("agent")
    if not agent:
        return "na", ctx.why("agent_silent"), ()
    hits = ctx.agent("self_id", before=agent[0].start + p["within_s"])
    if hits:
        return "pass", ctx.why("self_id"), _ev(hits[0])
    return "fail", ctx.why("no_self_id", seconds=p["within_s"]), _ev(agent[0])


def _verified_before_details(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc:
        return "na", ctx.why("not_rpc"), ()
    disclosed = ctx.agent("debt")
    t_disclose = disclosed[0].start if disclosed else float("inf")
    turns = ctx.call.turns
    answered = [t for i, t in enumerate(turns[:-1]) if t.speaker == "agent" and t.start < t_disclose
                and ctx.has(t, "verify") and turns[i + 1].speaker == "debtor"]
    if len(answered) >= p["min_prompts"]:
        return "pass", ctx.why("verified", n=len(answered)), _ev(*answered)
    why = ctx.why("not_verified", n=len(answered), need=p["min_prompts"])
    return "fail", why, _ev(*answered, disclosed[0] if disclosed else None)


def _purpose_stated(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc:
        return "na", ctx.why("not_rpc"), ()
    t_rpc = ctx.cat.contact_cue.start if ctx.cat.contact_cue else ctx.call.turns[0].start
    hits = [t for t in ctx.call.of("agent") if t_rpc <= t.start <= t_rpc + p["within_s"]
            and (ctx.has(t, "purpose") or ctx.has(t, "debt"))]
    if hits:
        return "pass", ctx.why("purpose"), _ev(hits[0])
    return "fail", ctx.why("no_purpose", seconds=p["within_s"]), ()


def _open_question_first(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc:
        return "na", ctx.why("not_rpc"), ()
    offers = ctx.agent("option")
    questions = ctx.agent("open_question", before=offers[0].start if offers else float("inf"))
    if questions:
        return "pass", ctx.why("open_question"), _ev(questions[0])
    return "fail", ctx.why("no_open_question"), _ev(offers[0] if offers else None)


def _acknowledged(ctx: _Ctx, triggers: list[Turn], cats: tuple[str, ...], within: int):
    missed = [t for t in triggers if not any(ctx.has(a, c) for a in ctx.next_agent(t, within) for c in cats)]
    answered = [a for t in triggers for a in ctx.next_agent(t, within) if any(ctx.has(a, c) for c in cats)]
    return missed, answered


def _explanation_acknowledged(ctx: _Ctx, p: Mapping[str, Any]):
    triggers = [t for t in ctx.outcomes("objection") if t.speaker == "debtor" and t.n_words >= p["min_words"]]
    if not triggers:
        return "na", ctx.why("no_explanation"), ()
    missed, answered = _acknowledged(ctx, triggers, ("empathy", "paraphrase"), p["within_turns"])
    if missed:
        return "fail", ctx.why("not_acknowledged"), _ev(*missed)
    return "pass", ctx.why("acknowledged"), _ev(triggers[0], answered[0])


def _contact_details_confirmed(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc:
        return "na", ctx.why("not_rpc"), ()
    hits = ctx.agent("contact_details")
    return ("pass", ctx.why("contact_confirmed"), _ev(hits[0])) if hits else (
        "fail", ctx.why("contact_not_confirmed"), ())


def _payment_requested(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc:
        return "na", ctx.why("not_rpc"), ()
    if ctx.any_outcome("legal_stop"):
        return "na", ctx.why("legal_stop"), ()
    hits = ctx.agent("ask_payment")
    vulnerable = [t for t in ctx.outcomes("vulnerable") if t.speaker == "debtor"]
    if vulnerable and not (hits and hits[0].start < vulnerable[0].start):
        return "na", ctx.why("vulnerable_before_ask"), ()
    return ("pass", ctx.why("asked"), _ev(hits[0])) if hits else (
        "fail", ctx.why("never_asked"), ())


def _options_offered(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc or ctx.any_outcome("legal_stop"):
        return "na", ctx.why("no_negotiation"), ()
    if ctx.any_outcome("vulnerable"):
        return "na", ctx.why("vulnerable_f1"), ()
    triggers = [t for t in ctx.outcomes("objection") if t.speaker == "debtor"]
    if not triggers:
        return "na", ctx.why("no_objection_or_hardship"), ()
    first = min(triggers, key=lambda t: t.start)
    offers = ctx.agent("option", after=first.start)
    if offers:
        return "pass", ctx.why("option_offered"), _ev(first, offers[0])
    return "fail", ctx.why("no_option"), _ev(first)


def _commitment_secured(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc or ctx.any_outcome("legal_stop"):
        return "na", ctx.why("no_commitment_due"), ()
    if paid := ctx.cat.get("paid_in_full"):
        return "pass", ctx.why("paid_in_full"), (Quote(paid.cue.speaker, paid.cue.quote, paid.cue.start, paid.cue.end),)
    missing_best: list[str] | None = None
    for o in ctx.cat.outcomes:
        quote = Quote(o.cue.speaker, o.cue.quote, o.cue.start, o.cue.end)
        if o.code == "callback" and (o.details.get("date") or o.details.get("time")):
            when = " ".join(w for w in (o.details.get("date_text"), o.details.get("time")) if w)
            return "pass", ctx.why("callback", when=when), (quote,)
        if o.code in ctx.card.groups["agreement"]:
            missing = [k for k in ("amount", "date", "method") if not o.details.get(k)]
            if not missing:
                d = o.details
                amount = f"{d['amount']:g} {d.get('currency') or ''}".strip()
                return "pass", ctx.why("commitment", outcome=ctx.title(o.code), amount=amount,
                                      date=d.get("date") or d["date_text"], method=ctx.title(d["method"])), (quote,)
            if missing_best is None or len(missing) < len(missing_best):
                missing_best = missing
    if missing_best:
        return "fail", ctx.why("commitment_without", missing=ctx.term_list(missing_best)), ()
    return "fail", ctx.why("no_commitment"), ()


def _objections_handled(ctx: _Ctx, p: Mapping[str, Any]):
    objections = [t for t in ctx.outcomes("objection") if t.speaker == "debtor"]
    if not objections:
        return "na", ctx.why("no_objection"), ()
    missed, answered = _acknowledged(ctx, objections, ("ack", "empathy", "option"), p["within_turns"])
    warned = [e for e in ctx.call.standing_warnings()
              if e.get("severity") in ("warning", "critical") and float(e.get("t", 0)) >= objections[0].start]
    if warned:
        title = warned[0].get("title", warned[0].get("rule_id"))
        return "fail", ctx.why("warned_after_objection", title=title), _ev(objections[0])
    if missed:
        return "fail", ctx.why("objection_unanswered"), _ev(*missed)
    return "pass", ctx.why("objections_answered"), _ev(objections[0], answered[0])


def _empathy_shown(ctx: _Ctx, p: Mapping[str, Any]):
    negative_at = [float(e["start"]) if "start" in e else float(e.get("t", 0)) for e in ctx.call.events_of("sentiment")
                   if e.get("speaker") == "debtor" and float(e.get("score", 0)) <= p["negative_sentiment_below"]]
    triggers = [t for t in ctx.call.of("debtor")
                if t in ctx.outcomes("hardship") or any(t.start <= x <= t.end + 0.5 for x in negative_at)]
    if not triggers:
        return "na", ctx.why("no_hardship"), ()
    missed, answered = _acknowledged(ctx, triggers, ("empathy",), p["within_turns"])
    if missed:
        return "fail", ctx.why("no_empathy"), _ev(*missed)
    return "pass", ctx.why("empathy"), _ev(triggers[0], answered[0])


def _no_interrupting(ctx: _Ctx, p: Mapping[str, Any]):
    debtor = ctx.call.of("debtor")
    if not debtor or not ctx.call.of("agent"):
        return "na", ctx.why("one_side"), ()
    cuts = [a for a in ctx.call.of("agent") if a.n_words >= p["min_words"]
            and any(d.start < a.start < d.end - p["min_overlap_s"] for d in debtor)]
    allowed = p["max_per_5min"] * max(1.0, ctx.call.end_time / 300)
    result: Result = "fail" if len(cuts) > allowed else "pass"
    return result, ctx.why("interruptions", n=len(cuts), allowed=allowed), _ev(*cuts[:3])


def _talk_share_in_band(ctx: _Ctx, p: Mapping[str, Any]):
    agent = sum(t.end - t.start for t in ctx.call.of("agent"))
    total = agent + sum(t.end - t.start for t in ctx.call.of("debtor"))
    if total < p["min_speech_s"] or not ctx.rpc:
        return "na", ctx.why("too_little_talk"), ()
    share = agent / total
    result: Result = "pass" if p["low"] <= share <= p["high"] else "fail"
    return result, ctx.why("talk_share", share=share, low=p["low"], high=p["high"]), ()


def _style_in_band(ctx: _Ctx, p: Mapping[str, Any]):
    styles = ctx.call.events_of("style")
    if not styles:
        return "na", ctx.why("no_style"), ()
    balanced = sum(e.get("band") == "balanced" for e in styles) / len(styles)
    result: Result = "pass" if balanced >= p["min_balanced_fraction"] else "fail"
    bands = sorted({str(e.get("band")) for e in styles if e.get("band") != "balanced"})
    if bands:
        return result, ctx.why("style_in_band_else", fraction=balanced, others=ctx.term_list(bands)), ()
    return result, ctx.why("style_in_band", fraction=balanced), ()


def _understanding_checked(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc:
        return "na", ctx.why("not_rpc"), ()
    hits = ctx.agent("check_understanding")
    return ("pass", ctx.why("checked_understanding"), _ev(hits[0])) if hits else (
        "fail", ctx.why("never_checked_understanding"), ())


def _terms_recapped(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.any_outcome("agreement"):
        return "na", ctx.why("no_agreement"), ()
    ref = ctx.call.started_at.date() if ctx.call.started_at else None
    agent = ctx.call.of("agent")
    for i, t in enumerate(agent):
        if t.start >= ctx.call.end_time * (1 - p["last_fraction"]) and ctx.has(t, "recap"):
            text = " ".join(a.text for a in agent[i : i + 2])
            if find_amounts(text) and find_dates(text, ref):
                return "pass", ctx.why("recapped"), _ev(t)
            return "fail", ctx.why("recap_incomplete"), _ev(t)
    return "fail", ctx.why("no_recap"), ()


def _next_steps_given(ctx: _Ctx, p: Mapping[str, Any]):
    if not ctx.rpc:
        return "na", ctx.why("not_rpc"), ()
    hits = ctx.agent("next_steps")
    return ("pass", ctx.why("next_steps"), _ev(hits[0])) if hits else (
        "fail", ctx.why("no_next_steps"), ())


def _disposition_matches(ctx: _Ctx, p: Mapping[str, Any]):
    disposition = ctx.call.metadata.get("disposition")
    if not disposition:
        return "na", ctx.why("no_disposition"), ()
    result: Result = "pass" if disposition == ctx.cat.primary else "fail"
    return result, ctx.why("disposition", disposition=ctx.title(disposition), category=ctx.title(ctx.cat.primary)), ()


def _vulnerability_handled(ctx: _Ctx, p: Mapping[str, Any]):
    vulnerable = ctx.card.groups["vulnerable"]
    disclosures = [t for t in ctx.call.turns if t.speaker == "debtor" and _outcome_codes(ctx, t) & vulnerable]
    if not disclosures:
        return "na", ctx.why("no_vulnerability"), ()
    first = disclosures[0]
    pressure = ctx.agent("ask_payment", after=first.start)
    support = ctx.agent("support", after=first.start)
    if pressure:
        return "fail", ctx.why("pressure_after_vulnerability"), _ev(first, pressure[0])
    if not support:
        return "fail", ctx.why("no_support"), _ev(first)
    return "pass", ctx.why("support"), _ev(first, support[0])


CHECKS: Mapping[str, Check] = {
    "greeting_self_id": Check(_greeting_self_id, ("within_s",)),
    "verified_before_details": Check(_verified_before_details, ("min_prompts",)),
    "purpose_stated": Check(_purpose_stated, ("within_s",)),
    "open_question_first": Check(_open_question_first, ()),
    "explanation_acknowledged": Check(_explanation_acknowledged, ("min_words", "within_turns")),
    "contact_details_confirmed": Check(_contact_details_confirmed, ()),
    "payment_requested": Check(_payment_requested, ()),
    "options_offered": Check(_options_offered, ()),
    "commitment_secured": Check(_commitment_secured, ()),
    "objections_handled": Check(_objections_handled, ("within_turns",)),
    "empathy_shown": Check(_empathy_shown, ("within_turns", "negative_sentiment_below")),
    "no_interrupting": Check(_no_interrupting, ("max_per_5min", "min_overlap_s", "min_words")),
    "talk_share_in_band": Check(_talk_share_in_band, ("low", "high", "min_speech_s")),
    "style_in_band": Check(_style_in_band, ("min_balanced_fraction",)),
    "understanding_checked": Check(_understanding_checked, ()),
    "terms_recapped": Check(_terms_recapped, ("last_fraction",)),
    "next_steps_given": Check(_next_steps_given, ()),
    "disposition_matches": Check(_disposition_matches, ()),
    "vulnerability_handled": Check(_vulnerability_handled, ()),
}
"""The checks a scorecard item may name (scorecard.yaml `check`), with the parameters each needs."""


def _gate(call: CallData) -> list[ItemScore]:
    """One failed gate item per critical compliance warning that stands at the end of the call."""
    gate: list[ItemScore] = []
    for e in call.standing_warnings():
        if e.get("severity") != "critical":
            continue
        ev = e.get("evidence")
        quote = (Quote(ev["speaker"], ev["quote"], float(ev["start"]), float(ev["end"])),) if ev else ()
        why = f"{e.get('rule_id')}: {e.get('title', '')} ({e.get('citation', '')})"
        title = str(e.get("title", e.get("rule_id")))
        gate.append(ItemScore(f"G{e.get('seq', len(gate) + 1)}", "gate", title, 0.0, "fail", why, quote))
    return gate


def score_call(call: CallData, category: Category | None = None, rules: RuleSet | None = None) -> Scorecard:
    """The scorecard of a stored call by `rules`' scorecard (default: the packaged rules); a pure function
    of its turns, analysis events and metadata."""
    if rules is None:
        from assist.ruleset import packaged_rules

        rules = packaged_rules()
    card = rules.card
    ctx = _Ctx(call, category or categorise(call, rules.category_rules), card, rules.category_rules)
    items = []
    medium = "voice" if call.metadata.get("channel", "voice") == "voice" else "text"
    for item_id, spec in card.items.items():
        if medium in spec.channels:
            result, why, evidence = CHECKS[spec.check].judge(ctx, spec.params)
        else:  # talk time, interruptions, style from audio: nothing to measure in writing
            result, why, evidence = "na", ctx.why("voice_only"), ()
        titles = card.titles[item_id]
        title = titles.get(call.language) or titles["en"]
        items.append(ItemScore(item_id, spec.section, title, spec.points, result,
                               in_language(why, call.language), evidence, titles, why.text))
    return summarise(items, _gate(call), card.bands, card.section_titles)


def override(card: Scorecard, item_id: str, result: Result, bands: Mapping[str, float] | None = None) -> Scorecard:
    """The scorecard with one item's result set by a reviewer, totals recomputed (banded by `bands`, else by
    the bands it was scored with)."""
    if result not in RESULTS:
        raise ValueError(f"result must be one of {RESULTS}")
    items = [replace(i, result=result) if i.id == item_id else i for i in card.items]
    gate = [replace(g, result=result) if g.id == item_id else g for g in card.gate]
    return summarise(items, gate, bands or card.bands, card.section_titles)
