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
    wired together; the text analysers embed through the process's shared `embedder`."""
    stress = StressAnalyser(ctx)
    sentiment = SentimentAnalyser(ctx, embedder=embedder)
    return [
        ComplianceAnalyser(ctx, embedder=embedder),
        PromptAnalyser(ctx, embedder=embedder),
        sentiment,
        stress,
        StyleAnalyser(ctx, stress),
        AbandonAnalyser(ctx, stress, sentiment.debtor_trend),
        AccountFactsAnalyser(ctx),
    ]
