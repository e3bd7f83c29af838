"""Compliance engine: precision/recall of standing rule ids over the scripted labelled calls
(tests/data/compliance_calls), phrase-only vs phrase+semantic, per-utterance latency, and false
alarms on ordinary call sentences that appear in no pack (held out from tuning).

Run from the repo root: .venv/bin/python benchmarks/bench_compliance.py  -> benchmarks/results/compliance.json
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assist.analysis.base import CallContext
from assist.analysis.compliance import ComplianceAnalyser
from models.embeddings import load_embedder
from streaming.types import Speaker, Utterance
from tests.test_compliance import CALLS, replay, standing

OUT = Path(__file__).parent / "results" / "compliance.json"
REPEATS = 5
# Ordinary agent lines (not in any pack's neutral list): none may raise a warning once verified.
ORDINARY = {
    ("us", "en"): [
        "Let me pull up your account details real quick.",
        "I can see the last payment came in on the fifth.",
        "We could split the remaining amount into three monthly payments.",
        "If that works for you, I'll email the agreement today.",
        "Sorry, the line is a bit noisy, could you repeat that?",
        "Thanks for being patient with me while I check.",
        "Would Friday or Monday be better for the first payment?",
        "I'll put a note on the file so nobody calls you at work.",
        "Our office is open until six if you want to call back.",
        "Can I help you with anything else today?",
    ],
    ("es", "es"): [
        "Un momento, que consulto los datos de su expediente.",
        "Veo que el último pago entró el día cinco.",
        "Podríamos dividir lo que queda en tres cuotas mensuales.",
        "Si le parece bien, le mando el acuerdo por correo hoy.",
        "Perdone, se oye un poco mal, ¿me lo repite?",
        "Gracias por esperar mientras lo reviso.",
        "¿Le viene mejor el viernes o el lunes para el primer pago?",
        "Apunto en la ficha que no le llamemos al trabajo.",
        "Nuestra oficina abre hasta las seis si quiere devolver la llamada.",
        "¿Le puedo ayudar en algo más?",
    ],
}


def _prf(semantic: bool) -> dict[str, float]:
    tp = fp = fn = 0
    for call in CALLS:
        got = standing(replay(call, ComplianceAnalyser(call.ctx, semantic=semantic)))
        tp += len(got & call.expected)
        fp += len(got - call.expected)
        fn += len(call.expected - got)
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def _latencies() -> dict[str, dict[str, float]]:
    """Milliseconds per on_utterance call over every scripted partial and final (warm caches)."""
    times: dict[str, list[float]] = {"partial": [], "final": []}
    for _ in range(REPEATS):
        for call in CALLS:
            an = ComplianceAnalyser(call.ctx)

            def timed(utt: Utterance, an: ComplianceAnalyser = an) -> list:
                t0 = time.perf_counter()
                out = an.on_utterance(utt)
                times["final" if utt.final else "partial"].append((time.perf_counter() - t0) * 1000)
                return out

            replay(call, an, on_utterance=timed)
    return {
        k: {"n": len(v), "median_ms": statistics.median(v), "p95_ms": sorted(v)[int(0.95 * len(v))], "max_ms": max(v)}
        for k, v in times.items()
    }


def _false_alarms() -> dict[str, int]:
    out = {}
    for (jur, lang), lines in ORDINARY.items():
        an = ComplianceAnalyser(CallContext("bench", lang, jur, metadata={"identity_verified": True}))
        an.start()
        fired = [
            e.rule_id
            for i, line in enumerate(lines)
            for e in an.on_utterance(Utterance(Speaker.AGENT, i + 1, 5.0 * i, 5.0 * i + 4, line, (), lang))
        ]
        out[f"{jur}/{lang}"] = len(fired)
        print(f"  ordinary {jur}/{lang}: {len(lines)} lines, {len(fired)} warnings {fired}")
    return out


def main() -> None:
    t0 = time.perf_counter()
    load_embedder()
    for call in CALLS:  # warm: packs compiled and phrases embedded once per process
        ComplianceAnalyser(call.ctx).start()
    replay(CALLS[0], ComplianceAnalyser(CALLS[0].ctx))
    warmup_s = time.perf_counter() - t0
    results = {
        "calls": len(CALLS),
        "expected_rule_ids": sum(len(c.expected) for c in CALLS),
        "phrase_only": _prf(semantic=False),
        "phrase_and_semantic": _prf(semantic=True),
        "latency_ms": _latencies(),
        "ordinary_line_false_alarms": _false_alarms(),
        "warmup_s": warmup_s,
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
    }
    print(f"{len(CALLS)} scripted calls, {results['expected_rule_ids']} expected rule ids; warm-up {warmup_s:.2f} s")
    for mode in ("phrase_only", "phrase_and_semantic"):
        r = results[mode]
        print(
            f"  {mode:20s} precision {r['precision']:.2f}  recall {r['recall']:.2f}  (tp {r['tp']} fp {r['fp']} fn {r['fn']})"
        )
    for kind, r in results["latency_ms"].items():
        print(
            f"  on_utterance {kind:7s} n={r['n']:4d}  median {r['median_ms']:.2f} ms  p95 {r['p95_ms']:.2f} ms  max {r['max_ms']:.2f} ms"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
