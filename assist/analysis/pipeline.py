"""Builds the set of live analysers for one call."""

from __future__ import annotations

from assist.analysis.abandon import AbandonAnalyser
from assist.analysis.account_facts import AccountFactsAnalyser
from assist.analysis.base import Analyser, CallContext
from assist.analysis.compliance import ComplianceAnalyser
from assist.analysis.prompts import PromptAnalyser
from assist.analysis.sentiment import SentimentAnalyser
from assist.analysis.stress import StressAnalyser
from assist.analysis.style import StyleAnalyser
from models.embeddings import Embedder


def build_analysers(ctx: CallContext, embedder: Embedder) -> list[Analyser]:
    """Compliance, prompts, sentiment, stress, negotiation style, abandon risk and the account-facts checks,
    wired together; the text analysers embed through the process's shared `embedder`. A written conversation
    gets the text analysers only: stress, talk-time style and silence-driven hang-up risk need audio."""
    sentiment = SentimentAnalyser(ctx, embedder=embedder)
    text: list[Analyser] = [
        ComplianceAnalyser(ctx, embedder=embedder),
        PromptAnalyser(ctx, embedder=embedder),
        sentiment,
    ]
    if ctx.medium == "text":
        return [*text, AccountFactsAnalyser(ctx)]
    stress = StressAnalyser(ctx)
    return [*text, stress, StyleAnalyser(ctx, stress), AbandonAnalyser(ctx, stress, sentiment.debtor_trend),
            AccountFactsAnalyser(ctx)]
