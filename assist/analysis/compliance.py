"""Live compliance warnings from the call's jurisdiction rule pack (collections-domain.md §1).

Five rule types (assist/analysis/rulepacks.py): gates are checked once at call start — on the first
`start()`, `on_tick()` or `on_utterance()`, whichever comes first; must-say deadlines and missed
acknowledgements fire from `on_tick()`; must-not-say, sequence and trigger-obligation breaches fire
from the agent's utterances: "provisional" on a partial (phrase match only), then "confirmed" on the
final (phrase + semantic match) or "retracted" if the final no longer matches.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from assist.analysis.base import CallContext
from assist.analysis.matching import (
    Match,
    PhraseIndex,
    SemanticIndex,
    Tokens,
    is_negated,
)
from assist.analysis.rulepacks import (
    Condition,
    GateRule,
    MustNotSayRule,
    MustSayRule,
    RulePack,
    SequenceRule,
    TriggerRule,
    load_rule_pack,
)
from assist.events import ComplianceWarning, EventBase, Evidence
from assist.settings import get_settings
from models.embedding_worker import shared_embedder
from models.embeddings import Embedder, cache_by_model
from streaming.types import AudioFrame, Speaker, Utterance

NEGATORS: Hashable = ("", "negators")
COLLECTION: Hashable = ("", "collection")
NEUTRAL: Hashable = ("", "neutral")
_LOWER = {"critical": "warning", "warning": "info", "info": "info"}
_RANK = {"info": 0, "warning": 1, "critical": 2}
_SEMANTIC_ROLES = ("phrases", "also", "ack", "forbidden")


def _lists(pack: RulePack, langs: frozenset[str]) -> dict[Hashable, list[str]]:
    """Every phrase list of the pack in `langs`, keyed (rule id, role) or ("", list name)."""

    def pick(phrases: Mapping[str, list[str]] | None) -> list[str]:
        return [p for tag, ps in (phrases or {}).items() if tag.split("-")[0] in langs for p in ps]

    out: dict[Hashable, list[str]] = {
        NEGATORS: pick(pack.negators),
        COLLECTION: pick(pack.collection_phrases),
        NEUTRAL: pick(pack.semantic.neutral),
    }
    for r in pack.rules:
        if isinstance(r, GateRule):
            continue
        out[(r.id, "phrases")] = pick(r.phrases)
        if isinstance(r, MustSayRule) and r.also:
            out[(r.id, "also")] = pick(r.also)
        if isinstance(r, SequenceRule):
            out[(r.id, "verify")] = pick(r.verify_prompts)
            out[(r.id, "confirm")] = pick(r.confirmations)
            out[(r.id, "third_party")] = pick(r.third_party_cues)
        if isinstance(r, TriggerRule):
            out[(r.id, "ack")] = pick(r.acknowledge.phrases)
            out[(r.id, "forbidden")] = pick(r.forbidden_after)
    return out


@cache
def phrase_index(jurisdiction: str, langs: frozenset[str]) -> PhraseIndex:
    """The pack's phrase lists compiled once per process."""
    return PhraseIndex({k: v for k, v in _lists(load_rule_pack(jurisdiction), langs).items() if k != NEUTRAL})


@cache_by_model
def semantic_index(jurisdiction: str, langs: frozenset[str], *, embedder: Embedder) -> SemanticIndex:
    """The pack's paraphrase-matchable phrases embedded once per process and model. Generic collection
    phrases are matched by phrase only: their paraphrases sit as close to polite small talk as to demands."""
    pack = load_rule_pack(jurisdiction)
    semantic_rules = {r.id for r in pack.rules if not isinstance(r, GateRule) and r.semantic}
    lists = {
        k: v
        for k, v in _lists(pack, langs).items()
        if k == NEUTRAL or (k[0] in semantic_rules and k[1] in _SEMANTIC_ROLES)
    }
    return SemanticIndex(lists, embedder.embed)


@lru_cache(maxsize=4096)
def _negative(jurisdiction: str, langs: frozenset[str], text: str) -> bool:
    """Whether a phrase carries a negator of its own."""
    tokens = Tokens.from_utterance(Utterance(Speaker.AGENT, 0, 0.0, 0.0, text))
    return bool(phrase_index(jurisdiction, langs).find(tokens).get(NEGATORS))


def _lookup(metadata: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = metadata
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _holds(cond: Condition, metadata: Mapping[str, Any]) -> bool:
    present, value = _lookup(metadata, cond.field)
    if not present:
        return cond.missing
    fold = lambda v: v.casefold() if isinstance(v, str) else v
    return fold(value) in [fold(v) for v in cond.in_]


def _applies(when: Iterable[Condition], unless: list[Condition], metadata: Mapping[str, Any]) -> bool:
    return all(_holds(c, metadata) for c in when) and not (unless and all(_holds(c, metadata) for c in unless))


@dataclass(frozen=True)
class _Hit:
    """Where a phrase list matched in an utterance."""

    speaker: Speaker
    quote: str
    start: float
    end: float
    negated: bool

    @property
    def evidence(self) -> Evidence:
        return Evidence(speaker=self.speaker, quote=self.quote, start=self.start, end=self.end)


@dataclass(frozen=True)
class _Finding:
    rule_id: str
    severity: str
    hit: _Hit


@dataclass
class _Trigger:
    hit: _Hit
    acked: bool = False


def _after(hits: list[_Hit], trig: _Trigger) -> list[_Hit]:
    """The un-negated hits said after the trigger."""
    return [h for h in hits if h.start >= trig.hit.start and not h.negated]


class ComplianceAnalyser:
    """Compliance warnings for one call. Paraphrases are matched through `embedder` (the process's shared
    one unless given); `semantic=False` matches phrases only (no embedding model)."""

    def __init__(self, ctx: CallContext, semantic: bool = True, embedder: Embedder | None = None) -> None:
        self.ctx = ctx
        self.pack = load_rule_pack(ctx.jurisdiction or get_settings().jurisdiction)
        self.embedder = (embedder or shared_embedder()) if semantic else None
        md = ctx.metadata
        self.rules = {r.id: r for r in self.pack.rules if _applies(r.when, r.unless, md)}
        self._by_type = {
            t: [r for r in self.rules.values() if isinstance(r, t)]
            for t in (GateRule, MustSayRule, MustNotSayRule, SequenceRule, TriggerRule)
        }
        self._started = False
        self._verified_at: float | None = 0.0 if md.get("identity_verified") else None
        self._verify_asked_at: float | None = None
        self._early_confirm: Utterance | None = None  # a debtor "yes" analysed before the agent's question
        self._said: dict[tuple[str, str], float] = {}
        self._overdue: dict[str, ComplianceWarning] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._fired: set[tuple[str, Any]] = set()
        self._provisional: dict[tuple[Speaker, int], dict[str, ComplianceWarning]] = {}

    # ---- Analyser protocol ----

    def start(self) -> list[EventBase]:
        """Gate warnings from the call metadata; once per call (later calls return [])."""
        if self._started:
            return []
        self._started = True
        out: list[EventBase] = []
        for rule in self._by_type[GateRule]:
            if (detail := self._gate_breach(rule)) is not None:
                out.append(self._warning(rule.id, rule.severity, f"{self._title(rule.title)} ({detail})", 0.0))
        return out

    def on_utterance(self, utt: Utterance) -> list[EventBase]:
        events = self.start()
        langs = self._langs(utt)
        tokens = Tokens.from_utterance(utt)
        if not tokens.items:
            return events
        found = phrase_index(self.pack.jurisdiction, langs).find(tokens)
        hits = self._lexical_hits(utt.speaker, tokens, found)
        if utt.final and self.embedder is not None:
            self._add_semantic(self.embedder, utt.speaker, tokens, found, hits, langs)
        if utt.speaker is Speaker.AGENT:
            findings = self._agent(utt, hits)
            events += self._retract_overdue()
        else:
            findings = []
            if utt.final:
                self._debtor(utt, hits)
        return events + self._emit(utt, findings)

    def on_audio(self, frame: AudioFrame) -> list[EventBase]:
        return []

    def on_tick(self, t: float) -> list[EventBase]:
        events = self.start()
        grace = self.pack.deadline_grace_s
        for rule in self._by_type[MustSayRule]:
            anchor = 0.0 if rule.deadline.from_ == "start" else self._verified_at
            if rule.id in self._overdue or anchor is None or self._satisfied(rule) is not None:
                continue
            if t >= anchor + rule.deadline.seconds + grace:
                ev = self._warning(rule.id, rule.severity, self._title(rule.title), t, speaker=Speaker.AGENT)
                self._overdue[rule.id] = ev
                events.append(ev)
        for rule in self._by_type[TriggerRule]:
            trig = self._triggers.get(rule.id)
            ack = rule.acknowledge
            if (
                trig
                and not trig.acked
                and (rule.id, "ack") not in self._fired
                and t >= trig.hit.start + ack.within_s + grace
            ):
                self._fired.add((rule.id, "ack"))
                events.append(self._warning(rule.id, ack.severity, self._title(ack.title), t, Speaker.AGENT, trig.hit))
        return events

    # ---- matching ----

    def _langs(self, utt: Utterance) -> frozenset[str]:
        """The call's language when the utterance agrees with it, else every language of the pack."""
        pack_langs = frozenset(self.pack.languages)
        if self.ctx.language in pack_langs and utt.language == self.ctx.language:
            return frozenset({self.ctx.language})
        return pack_langs

    def _lexical_hits(
        self, speaker: Speaker, tokens: Tokens, found: Mapping[Hashable, list[Match]]
    ) -> dict[Hashable, list[_Hit]]:
        negators = found.get(NEGATORS, [])
        hits: dict[Hashable, list[_Hit]] = {}
        for key, matches in found.items():
            hits[key] = [_Hit(speaker, *tokens.quote(m.start, m.end), is_negated(tokens, m, negators)) for m in matches]
        return hits

    def _semantic_keys(self, speaker: Speaker) -> dict[Hashable, float]:
        """Phrase lists worth a paraphrase check now, with their similarity thresholds."""
        default = self.pack.semantic.threshold
        keys: dict[Hashable, float] = {}
        if speaker is Speaker.DEBTOR:
            for r in self._by_type[TriggerRule]:
                if r.semantic and r.id not in self._triggers:
                    keys[(r.id, "phrases")] = r.similarity or default
            return keys
        for r in self._by_type[MustSayRule]:
            if r.semantic and self._satisfied(r) is None:
                keys[(r.id, "phrases")] = keys[(r.id, "also")] = r.similarity or default
        for r in self._by_type[MustNotSayRule]:
            if r.semantic:
                keys[(r.id, "phrases")] = r.similarity or default
        for rid, trig in self._triggers.items():
            r = self.rules[rid]
            if r.semantic:
                keys[(rid, "forbidden")] = r.similarity or default
                if not trig.acked:
                    keys[(rid, "ack")] = r.similarity or default
        return keys

    def _add_semantic(
        self,
        embedder: Embedder,
        speaker: Speaker,
        tokens: Tokens,
        found: Mapping[Hashable, list[Match]],
        hits: dict[Hashable, list[_Hit]],
        langs: frozenset[str],
    ) -> None:
        """Paraphrase matches, per sentence and per clause (a threat inside a long sentence scores
        low as a whole), for the lists the phrase matcher did not already hit."""
        keys = {k: v for k, v in self._semantic_keys(speaker).items() if not hits.get(k)}
        units = dict.fromkeys(tokens.spans("sentence") + tokens.spans("clause"))
        spans = [s for s in units if s[1] - s[0] >= self.pack.semantic.min_tokens]
        if not keys or not spans:
            return
        index = semantic_index(self.pack.jurisdiction, langs, embedder=embedder)
        texts = [tokens.quote(a, b)[0] for a, b in spans]
        embeddings = embedder.embed(texts, call_id=self.ctx.call_id)
        best = index.best(embeddings, set(keys), NEUTRAL, self.pack.semantic.margin)
        negators = found.get(NEGATORS, [])
        for key, hit in best.items():
            if hit.similarity < keys[key]:
                continue
            a, b = spans[hit.sentence]
            sentence_negated = any(a <= m.start < b for m in negators)
            negated = sentence_negated != _negative(self.pack.jurisdiction, langs, hit.phrase)
            hits.setdefault(key, []).append(_Hit(speaker, *tokens.quote(a, b), negated))

    # ---- state and findings ----

    def _agent(self, utt: Utterance, hits: Mapping[Hashable, list[_Hit]]) -> list[_Finding]:
        findings: list[_Finding] = []
        for rule in self._by_type[MustSayRule]:
            for role in ("phrases", "also"):
                for h in hits.get((rule.id, role), []):
                    if not h.negated:
                        self._said[(rule.id, role)] = min(self._said.get((rule.id, role), h.start), h.start)
        for rule in self._by_type[SequenceRule]:
            if utt.final and hits.get((rule.id, "verify")):
                self._verify_asked_at = utt.end
                # the two speakers' finals can arrive in either order: honour an answer given after the question
                early = self._early_confirm
                if self._verified_at is None and early is not None and early.start >= utt.start:
                    self._verified_at = early.end
            if self._verified_at is None and (disclosed := hits.get((rule.id, "phrases"))):
                findings.append(_Finding(rule.id, rule.severity, disclosed[0]))
        for rule in self._by_type[MustNotSayRule]:
            if said := hits.get((rule.id, "phrases")):
                severity = rule.severity if not all(h.negated for h in said) else _LOWER[rule.severity]
                findings.append(_Finding(rule.id, severity, next((h for h in said if not h.negated), said[0])))
        for rid, trig in self._triggers.items():
            if _after(hits.get((rid, "ack"), []), trig):
                trig.acked = True
            if collecting := _after(hits.get((rid, "forbidden"), []) + hits.get(COLLECTION, []), trig):
                findings.append(_Finding(rid, self.rules[rid].severity, collecting[0]))
        return findings

    def _debtor(self, utt: Utterance, hits: Mapping[Hashable, list[_Hit]]) -> None:
        for rule in self._by_type[SequenceRule]:
            confirmed = [h for h in hits.get((rule.id, "confirm"), []) if not h.negated]
            asked = self._verify_asked_at is not None and utt.start - self._verify_asked_at <= rule.verify_window_s
            if self._verified_at is None and confirmed and not hits.get((rule.id, "third_party")):
                if asked:
                    self._verified_at = utt.end
                elif utt.final:
                    self._early_confirm = utt
        for rule in self._by_type[TriggerRule]:
            said = [h for h in hits.get((rule.id, "phrases"), []) if not h.negated]
            if said and rule.id not in self._triggers:
                self._triggers[rule.id] = _Trigger(said[0])

    def _satisfied(self, rule: MustSayRule) -> float | None:
        """When the must-say rule was fully said (its last required clause), else None."""
        times = [self._said.get((rule.id, "phrases"))] + ([self._said.get((rule.id, "also"))] if rule.also else [])
        return None if None in times else max(t for t in times if t is not None)

    def _retract_overdue(self) -> list[EventBase]:
        """A must-say warning fired at its deadline is retracted when the phrase turns out to have
        been said in time (the final came in after the tick)."""
        out: list[EventBase] = []
        for rid, ev in list(self._overdue.items()):
            rule = self.rules[rid]
            assert isinstance(rule, MustSayRule)
            said = self._satisfied(rule)
            anchor = 0.0 if rule.deadline.from_ == "start" else self._verified_at
            if said is not None and anchor is not None and said <= anchor + rule.deadline.seconds:
                del self._overdue[rid]
                out.append(ev.model_copy(update={"status": "retracted"}))
        return out

    def _emit(self, utt: Utterance, findings: list[_Finding]) -> list[EventBase]:
        best: dict[str, _Finding] = {}
        for f in findings:
            if f.rule_id not in best or _RANK[f.severity] > _RANK[best[f.rule_id].severity]:
                best[f.rule_id] = f
        key = (utt.speaker, utt.seq)
        provisional = self._provisional.setdefault(key, {})
        out: list[EventBase] = []
        for rid, f in best.items():
            if (rid, key) in self._fired or (not utt.final and rid in provisional):
                continue
            status = "confirmed" if utt.final else "provisional"
            ev = self._warning(
                rid, f.severity, self._title(self.rules[rid].title), utt.end, f.hit.speaker, f.hit, status
            )
            if utt.final:
                self._fired.add((rid, key))
            else:
                provisional[rid] = ev
            out.append(ev)
        if utt.final:
            for rid, ev in self._provisional.pop(key).items():
                if rid not in best:
                    out.append(ev.model_copy(update={"status": "retracted", "t": utt.end}))
        return out

    # ---- gates ----

    def _gate_breach(self, rule: GateRule) -> str | None:
        """What breaches the gate, for the title; None when it holds or cannot be checked."""
        md = self.ctx.metadata
        if rule.window is not None:
            tz = md.get("debtor_timezone") or self.pack.timezone
            if not tz:
                return None
            started = datetime.fromisoformat(md["started_at"]) if md.get("started_at") else datetime.now(UTC)
            local = started.astimezone(ZoneInfo(tz))
            day = (
                "sunday"
                if md.get("public_holiday") or local.weekday() == 6
                else "saturday"
                if local.weekday() == 5
                else "weekday"
            )
            allowed = getattr(rule.window, day)
            hhmm = local.strftime("%H:%M")
            if allowed is None or not allowed[:5] <= hhmm < allowed[6:]:
                return f"{local:%a %H:%M} {tz}"
            return None
        if rule.ledger is not None:
            present, value = _lookup(md, f"ledger.{rule.ledger.field}")
            if not present or value is None:
                return None
            lo, hi = rule.ledger.below, rule.ledger.above
            breached = (hi is not None and value > hi) or (lo is not None and value < lo)
            return f"{rule.ledger.field} = {value}" if breached else None
        on = [f for f in rule.flags if _lookup(md, f"account.{f}")[1] is True]
        return ", ".join(on) if on else None

    # ---- events ----

    def _title(self, title: Any) -> str:
        return title.es if self.ctx.language == "es" else title.en

    def _warning(
        self,
        rule_id: str,
        severity: str,
        title: str,
        t: float,
        speaker: Speaker | None = None,
        hit: _Hit | None = None,
        status: str = "confirmed",
    ) -> ComplianceWarning:
        return ComplianceWarning(
            call_id=self.ctx.call_id,
            t=t,
            rule_id=rule_id,
            severity=severity,
            title=title,
            citation=self.rules[rule_id].source,
            jurisdiction=self.pack.jurisdiction,
            speaker=speaker,
            evidence=hit.evidence if hit else None,
            status=status,
        )
