"""Draft check latency: `POST /conversations/{id}/draft` over HTTP against a running service, an English and
a Spanish conversation each with a history of messages, drafts as the agent types them (every prefix of at
least three words of clean replies, threats, amounts: each text new, so no cached sentence embedding helps).

Run from the repo root: .venv/bin/python -m benchmarks.bench_draft [--rounds 2]
  -> benchmarks/results/draft_latency.json (target: p95 under 50 ms)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assist.settings import Settings
from tests.service import RunningService

OUT = Path(__file__).parent / "results" / "draft_latency.json"
TARGET_P95_MS = 50.0
HISTORY = {
    "en": [("agent", "Hi, this is Mike from Apex Recovery. Am I speaking with Sarah Jones?"),
           ("debtor", "Yes, this is Sarah. Who is this again?"),
           ("agent", "This is an attempt to collect a debt and any information obtained will be used for that "
                     "purpose."),
           ("debtor", "I lost my job in January and I just can't afford it right now."),
           ("agent", "I understand, that sounds really hard. Let's look at what might work for you."),
           ("debtor", "Maybe I could pay something small every month.")],
    "es": [("agent", "Buenos días, le escribe Ana de Recobros Centro, en representación de Banco Sol."),
           ("debtor", "Sí, soy yo. ¿Qué quieren?"),
           ("agent", "Le escribo por el saldo pendiente de su tarjeta."),
           ("debtor", "He perdido mi trabajo y ahora mismo no puedo pagar nada."),
           ("agent", "Lo entiendo, vamos a buscar una solución que le convenga."),
           ("debtor", "Quizá podría pagar algo pequeño cada mes.")],
}
DRAFTS = {
    "en": ["Would fifty dollars a month work for you?",
           "If you don't pay today we will take you to court and garnish your wages.",
           "You owe four hundred dollars and it is three months past due.",
           ("Thanks Sarah. I can set up a plan of twelve monthly payments starting next Friday, and I will send the "
           "agreement by email so you have everything in writing. Is there anything else I can help with today?"),
           "You could go to jail for this."],
    "es": ["¿Le vendría bien pagar cincuenta euros al mes?",
           "Si no paga, mañana le embargamos la nómina.",
           "Le vamos a meter en ASNEF esta misma semana.",
           ("Gracias. Podemos fijar un plan de doce cuotas mensuales a partir del viernes y le envío el acuerdo por "
           "correo para que lo tenga todo por escrito. ¿Le puedo ayudar en algo más?"),
           "Es usted un sinvergüenza."],
}


def _open(client: httpx.Client, language: str) -> str:
    cid = f"bench-draft-{language}"
    client.post("/conversations", json={"id": cid, "channel": "chat", "language": language,
                                        "jurisdiction": "us" if language == "en" else "es",
                                        "metadata": {"identity_verified": True},
                                        "account_facts": {"currency": "USD" if language == "en" else "EUR",
                                                          "balance": 600.0}}).raise_for_status()
    for sender, text in HISTORY[language]:
        client.post(f"/conversations/{cid}/messages", json={"sender": sender, "text": text}).raise_for_status()
    return cid


def _pct(values: list[float], q: float) -> float:
    return round(sorted(values)[min(len(values) - 1, int(q * len(values)))], 2)


def typed(text: str, round_: int) -> list[str]:
    """What the box holds at each pause while `text` is typed (round > 0: with a new first word)."""
    words = ([f"Vale{round_}" if text[0] in "¿ÉGLSE" else f"Okay{round_}"] if round_ else []) + text.split()
    return [" ".join(words[:n]) for n in range(3, len(words) + 1)]


def run(rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(asr_model="tiny.en", language="en", cache_dir=Path(tmp) / "cache",
                            database_url=f"sqlite:///{tmp}/recobra.db")
        with RunningService(settings) as svc, httpx.Client(base_url=svc.http, timeout=30) as client:
            ids = {lang: _open(client, lang) for lang in DRAFTS}
            for lang, cid in ids.items():  # warm-up: first use builds the card index and phrase indexes
                for _, text in HISTORY[lang]:
                    client.post(f"/conversations/{cid}/draft", json={"text": text}).raise_for_status()
            ms: dict[str, list[float]] = {lang: [] for lang in DRAFTS}
            for round_ in range(rounds):
                for lang, cid in ids.items():
                    for text in (t for draft in DRAFTS[lang] for t in typed(draft, round_)):
                        began = time.perf_counter()
                        client.post(f"/conversations/{cid}/draft", json={"text": text}).raise_for_status()
                        ms[lang].append((time.perf_counter() - began) * 1000)
    every = ms["en"] + ms["es"]
    return {
        "what": "POST /conversations/{id}/draft over HTTP (loopback, keep-alive), one at a time, 6-message history, "
                "every text new (typed prefixes)",
        "drafts": len(every), "target_p95_ms": TARGET_P95_MS,
        "p50_ms": _pct(every, 0.50), "p95_ms": _pct(every, 0.95), "p99_ms": _pct(every, 0.99),
        "max_ms": round(max(every), 2), "mean_ms": round(statistics.fmean(every), 2),
        "per_language": {lang: {"p50_ms": _pct(v, 0.5), "p95_ms": _pct(v, 0.95)} for lang, v in ms.items()},
        "meets_target": _pct(every, 0.95) < TARGET_P95_MS,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="each round types every draft again, reworded")
    result = run(parser.parse_args().rounds)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
