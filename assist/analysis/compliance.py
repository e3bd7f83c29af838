"""Live compliance warnings from the call's jurisdiction rule pack (collections-domain.md §1).

Five rule types (assist/analysis/rulepacks.py): gates are checked once at call start — on the first
`start()`, `on_tick()` or `on_utterance()`, whichever comes first; must-say deadlines and missed
acknowledgements fire from `on_tick()`; must-not-say, sequence and trigger-obligation breaches fire
from the agent's utterances: "provisional" on a partial (phrase match only), then "confirmed" on the
final (phrase + semantic match) or "retracted" if the final no longer matches. On finals, meaning is
matched by the trained heads of assist/analysis/intent.py for rules with a `family`, and by the
closest pack phrase for the others. A plain negator before a threat makes it a reassurance; a hedge
("I'm not saying ...") lowers it one severity.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from assist.analysis.base import CallContext
from assist.analysis.findings import LOWER, RANK, Finding, Hit, Negation, Trigger, after
from assist.analysis.gates import applies, gate_breach
from assist.analysis.intent import IntentHead, load_heads
from assist.analysis.matching import Tokens, spoken_text
from assist.analysis.packindex import (
    COLLECTION,
    NEUTRAL,
    phrase_index,
    phrase_is_negative,
    semantic_index,
)
from assist.analysis.rulepacks import (
    GateRule,
    MustNotSayRule,
    MustSayRule,
    RulePack,
    SequenceRule,
    TriggerRule,
    load_rule_pack,
)
from assist.events import ComplianceWarning, EventBase
from assist.settings import get_settings
from models.embedding_worker import shared_embedder
from models.embeddings import Embedder
from streaming.types import AudioFrame, Speaker, Utterance

R = TypeVar("R", GateRule, MustSayRule, MustNotSayRule, SequenceRule, TriggerRule)


class ComplianceAnalyser:
    """Compliance warnings for one call. Paraphrases are matched through `embedder` (the process's shared
    one unless given); `semantic=False` matches phrases only (no embedding model). `pack` is the call's
    jurisdiction pack from the service's RuleSet (default: the packaged one)."""

    def __init__(self, ctx: CallContext, semantic: bool = True, embedder: Embedder | None = None,
                 pack: RulePack | None = None) -> None:
        self.ctx = ctx
        self.pack = pack or load_rule_pack(ctx.jurisdiction or get_settings().analysis.jurisdiction)
        self.embedder = (embedder or shared_embedder()) if semantic else None
        self._heads: dict[str, IntentHead] = load_heads(self.embedder.model) if self.embedder else {}
        md = ctx.metadata
        self.rules = {r.id: r for r in self.pack.rules
                      if ctx.medium in r.channels and applies(r.when, r.unless, md)}
        self._started = False
        self._verified_at: float | None = 0.0 if md.get("identity_verified") else None
        self._verify_asked_at: float | None = None
        self._early_confirm: Utterance | None = None  # a debtor "yes" analysed before the agent's question
        self._said: dict[tuple[str, str], float] = {}
        self._overdue: dict[str, ComplianceWarning] = {}
        self._triggers: dict[str, Trigger] = {}
        self._fired: set[tuple[str, Any]] = set()
        self._provisional: dict[tuple[Speaker, int], dict[str, ComplianceWarning]] = {}

    # ---- Analyser protocol ----

    def start(self) -> list[EventBase]:
        """Gate warnings from the call metadata; once per call (later calls return [])."""
        if self._started:
            return []
        self._started = True
        out: list[EventBase] = []
        for rule in self._of(GateRule):
            if rule.window is not None and self.ctx.medium == "text":
                continue  # a conversation has no single start time: `message_sent` checks each message
            if (detail := gate_breach(rule, self.ctx.metadata, self.pack.timezone)) is not None:
                out.append(self._warning(rule.id, rule.severity, f"{self._title(rule.title)} ({detail})", 0.0))
        return out

    def message_sent(self, when: datetime, t: float) -> list[EventBase]:
        """Contact-hour gates for an agent's written message sent at `when` (debtor's timezone)."""
        md = {**self.ctx.metadata, "started_at": when.isoformat()}
        return [
            self._warning(rule.id, rule.severity, f"{self._title(rule.title)} ({detail})", t, speaker=Speaker.AGENT)
            for rule in self._of(GateRule)
            if rule.window is not None and (detail := gate_breach(rule, md, self.pack.timezone)) is not None
        ]

    def on_utterance(self, utt: Utterance) -> list[EventBase]:
        events = self.start()
        langs = self._langs(utt)
        tokens = Tokens.from_utterance(utt)
        if not tokens.items:
            return events
        found = phrase_index(self.pack, langs).find(tokens)
        negation = Negation.of(tokens, found)
        hits = {k: [Hit(utt.speaker, *tokens.quote(m.start, m.end), *negation.match(m)) for m in ms]
                for k, ms in found.items()}
        if utt.final and self.embedder is not None:
            self._add_semantic(self.embedder, utt.speaker, negation, hits, langs)
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
        for rule in self._of(MustSayRule):
            anchor = 0.0 if rule.deadline.from_ == "start" else self._verified_at
            if rule.id in self._overdue or anchor is None or self._satisfied(rule) is not None:
                continue
            if t >= anchor + rule.deadline.seconds + grace:
                ev = self._warning(rule.id, rule.severity, self._title(rule.title), t, speaker=Speaker.AGENT)
                self._overdue[rule.id] = ev
                events.append(ev)
        for rule in self._of(TriggerRule):
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

    def _of(self, kind: type[R]) -> list[R]:
        """The call's rules of one kind, in pack order."""
        return [r for r in self.rules.values() if isinstance(r, kind)]

    # ---- matching ----

    def _langs(self, utt: Utterance) -> frozenset[str]:
        """The call's language when the utterance agrees with it, else every language of the pack."""
        pack_langs = frozenset(self.pack.languages)
        if self.ctx.language in pack_langs and utt.language == self.ctx.language:
            return frozenset({self.ctx.language})
        return pack_langs

    def _semantic_keys(self, speaker: Speaker) -> dict[Hashable, float]:
        """Phrase lists worth a nearest-phrase check now, with their similarity thresholds (not those
        of a rule family the trained head recognises: the head decides those)."""
        default = self.pack.semantic.threshold
        keys: dict[Hashable, float] = {}
        headed = self._heads and self._family_keys(speaker)
        if speaker is Speaker.DEBTOR:
            for r in self._of(TriggerRule):
                if r.semantic and r.id not in self._triggers and (r.id, "phrases") not in headed:
                    keys[(r.id, "phrases")] = r.similarity or default
            return keys
        for r in self._of(MustSayRule):
            if r.semantic and self._satisfied(r) is None:
                keys[(r.id, "phrases")] = keys[(r.id, "also")] = r.similarity or default
        for r in self._of(MustNotSayRule):
            if r.semantic and (r.id, "phrases") not in headed:
                keys[(r.id, "phrases")] = r.similarity or default
        for rid, trig in self._triggers.items():
            r = self.rules[rid]
            assert isinstance(r, TriggerRule)  # only trigger rules are tracked in _triggers
            if r.semantic:
                keys[(rid, "forbidden")] = r.similarity or default
                if not trig.acked:
                    keys[(rid, "ack")] = r.similarity or default
        return keys

    def _family_keys(self, speaker: Speaker) -> dict[tuple[str, str], str]:
        """Phrase lists the trained head checks now, with the rule family it recognises for them."""
        if speaker is Speaker.DEBTOR:
            rules: list[MustNotSayRule | TriggerRule] = [
                r for r in self._of(TriggerRule) if r.id not in self._triggers
            ]
        else:
            rules = list(self._of(MustNotSayRule))
        return {(r.id, "phrases"): r.family for r in rules if r.semantic and r.family}

    def _add_semantic(
        self,
        embedder: Embedder,
        speaker: Speaker,
        negation: Negation,
        hits: dict[Hashable, list[Hit]],
        langs: frozenset[str],
    ) -> None:
        """Paraphrase matches, per sentence and per clause (a threat inside a long sentence scores
        low as a whole), for the lists the phrase matcher did not already hit: the closest pack phrase
        above its similarity threshold, and the rule families the trained head raises, unless a rule of
        the same family or source list (`ref`) matched by phrase: "mañana le embargamos" is the
        imminent-seizure rule, not also the plain seizure one; a listed swear word is profanity only."""
        keys = {k: v for k, v in self._semantic_keys(speaker).items() if not hits.get(k)}
        said = [self.rules[k[0]] for k, v in hits.items()
                if v and isinstance(k, tuple) and k[0] in self.rules and k[1] == "phrases"]
        taken = {r.ref for r in said} | {getattr(r, "family", None) for r in said}
        families = {k: f for k, f in self._family_keys(speaker).items() if taken.isdisjoint({f, self.rules[k[0]].ref})}
        head = self._heads.get("agent" if speaker is Speaker.AGENT else "debtor")
        tokens = negation.tokens
        units = dict.fromkeys(tokens.spans("sentence") + tokens.spans("clause"))
        spans = [s for s in units if s[1] - s[0] >= self.pack.semantic.min_tokens]
        if not (keys or (families and head)) or not spans:
            return
        embeddings = embedder.embed([spoken_text(tokens.quote(a, b)[0]) for a, b in spans], call_id=self.ctx.call_id)

        def hit(i: int, negative_phrase: bool = False) -> Hit:
            negated, hedged = negation.span(*spans[i])
            return Hit(speaker, *tokens.quote(*spans[i]), negated != negative_phrase, hedged)

        def head_hit(i: int, family: str) -> Hit:  # "don't call me", "you'll never get credit": the head decides
            assert head is not None  # called only for families the head raised
            if speaker is Speaker.AGENT and family not in head.negative_meaning:
                return hit(i)
            return Hit(speaker, *tokens.quote(*spans[i]), False)

        if keys:
            index = semantic_index(self.pack, langs, embedder=embedder)
            for key, sim in index.best(embeddings, set(keys), NEUTRAL, self.pack.semantic.margin).items():
                if sim.similarity >= keys[key]:
                    negative = phrase_is_negative(self.pack, langs, sim.phrase)
                    hits.setdefault(key, []).append(hit(sim.sentence, negative))
        raised = head.raised(embeddings) if families and head else {}
        for key, family in families.items():
            hits.setdefault(key, []).extend(head_hit(i, family) for i in raised.get(family, []))

    # ---- state and findings ----

    def _agent(self, utt: Utterance, hits: Mapping[Hashable, list[Hit]]) -> list[Finding]:
        findings: list[Finding] = []
        for rule in self._of(MustSayRule):
            for role in ("phrases", "also"):
                for h in hits.get((rule.id, role), []):
                    if not h.negated:
                        self._said[(rule.id, role)] = min(self._said.get((rule.id, role), h.start), h.start)
        for rule in self._of(SequenceRule):
            if utt.final and hits.get((rule.id, "verify")):
                self._verify_asked_at = utt.end
                # the two speakers' finals can arrive in either order: honour an answer given after the question
                early = self._early_confirm
                if self._verified_at is None and early is not None and early.start >= utt.start:
                    self._verified_at = early.end
            if self._verified_at is None and (disclosed := hits.get((rule.id, "phrases"))):
                findings.append(Finding(rule.id, rule.severity, disclosed[0]))
        for rule in self._of(MustNotSayRule):  # a plain negation is a reassurance; a hedge is not
            said = hits.get((rule.id, "phrases"), [])
            if live := [h for h in said if not h.negated]:
                findings.append(Finding(rule.id, rule.severity, live[0]))
            elif hedged := [h for h in said if h.hedged]:
                findings.append(Finding(rule.id, LOWER[rule.severity], hedged[0]))
        for rid, trig in self._triggers.items():
            if after(hits.get((rid, "ack"), []), trig):
                trig.acked = True
            if collecting := after(hits.get((rid, "forbidden"), []) + hits.get(COLLECTION, []), trig):
                findings.append(Finding(rid, self.rules[rid].severity, collecting[0]))
        return findings

    def _debtor(self, utt: Utterance, hits: Mapping[Hashable, list[Hit]]) -> None:
        for rule in self._of(SequenceRule):
            confirmed = [h for h in hits.get((rule.id, "confirm"), []) if not h.negated]
            asked = self._verify_asked_at is not None and utt.start - self._verify_asked_at <= rule.verify_window_s
            if self._verified_at is None and confirmed and not hits.get((rule.id, "third_party")):
                if asked:
                    self._verified_at = utt.end
                elif utt.final:
                    self._early_confirm = utt
        for rule in self._of(TriggerRule):
            said = [h for h in hits.get((rule.id, "phrases"), []) if not h.negated]
            if said and rule.id not in self._triggers:
                self._triggers[rule.id] = Trigger(said[0])

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

    def _emit(self, utt: Utterance, findings: list[Finding]) -> list[EventBase]:
        best: dict[str, Finding] = {}
        for f in findings:
            if f.rule_id not in best or RANK[f.severity] > RANK[best[f.rule_id].severity]:
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
        hit: Hit | None = None,
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
