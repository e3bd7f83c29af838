"""Builds the set of live analysers for one call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assist.analysis.abandon import AbandonAnalyser
from assist.analysis.account_facts import AccountFactsAnalyser
from assist.analysis.base import Analyser, CallContext
from assist.analysis.compliance import ComplianceAnalyser
from assist.analysis.prompts import PromptAnalyser
from assist.analysis.sentiment import SentimentAnalyser
from assist.analysis.stress import StressAnalyser, StressRules
from assist.analysis.style import StyleAnalyser
from models.embeddings import Embedder

if TYPE_CHECKING:
    from assist.ruleset import RuleSet


def build_analysers(ctx: CallContext, embedder: Embedder, rules: RuleSet | None = None) -> list[Analyser]:
    """Compliance, prompts, sentiment, stress, negotiation style, abandon risk and the account-facts checks,
    wired together; the text analysers embed through the process's shared `embedder`, and each gets its
    part of `rules` (the service's RuleSet; default: the packaged rules). A written conversation gets the
    text analysers only: stress, talk-time style and silence-driven hang-up risk need audio."""
    if rules is None:
        from assist.ruleset import packaged_rules

        rules = packaged_rules()
    sentiment = SentimentAnalyser(ctx, embedder=embedder)
    text: list[Analyser] = [
        ComplianceAnalyser(ctx, embedder=embedder, pack=rules.pack(ctx.jurisdiction) if ctx.jurisdiction else None),
        PromptAnalyser(ctx, rules.prompts, embedder=embedder),
        sentiment,
    ]
    if ctx.medium == "text":
        return [*text, AccountFactsAnalyser(ctx, rules.account_book)]
    stress = StressAnalyser(ctx, StressRules.load(rules.stress))
    return [*text, stress, StyleAnalyser(ctx, stress, rules.style, rules.reasons),
            AbandonAnalyser(ctx, stress, sentiment.debtor_trend, rules.abandon, rules.reasons),
            AccountFactsAnalyser(ctx, rules.account_book)]
