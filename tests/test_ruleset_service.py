"""A service started with a tenant's rules folder scores calls with the tenant's scorecard: a folder holding
only scorecard.yaml (another title and weight for the payment request) replaces the packaged card; the Spanish
and the English conversation both get it, and their scores are totalled with its weights."""

from __future__ import annotations

import httpx
import yaml

from assist.ruleset import PACKAGED
from tests.service import RunningService
from tests.tenancy import ACME_KEY, tenant_settings

ACME = {"X-API-KEY": ACME_KEY}
TITLE = {"en": "Asks for the payment, plainly (tenant card)", "es": "Pide el pago con claridad (ficha del cliente)"}
CONVERSATIONS = {
    "es": [("agent", "Buenos días, le escribe Ana de Recobros Centro, en representación de Banco Sol."),
           ("debtor", "Sí, soy yo. ¿Qué desea?"),
           ("agent", "Le escribo por su deuda con Banco Sol. ¿Puede realizar el pago hoy?"),
           ("debtor", "Vale, puedo pagar cien euros el viernes con tarjeta.")],
    "en": [("agent", "Hello, my name is Mike, calling from Acme Recovery on behalf of Bank One."),
           ("debtor", "Yes, that's me. What is this about?"),
           ("agent", "I'm calling about your past due balance with Bank One. Can you make a payment today?"),
           ("debtor", "OK, I can pay one hundred dollars on Friday by card.")],
}


def _tenant_rules(tmp_path):
    card = yaml.safe_load((PACKAGED / "scorecard.yaml").read_text(encoding="utf-8"))
    card["items"]["C1"] |= {"title": TITLE, "points": 20}
    folder = tmp_path / "tenant-rules"
    folder.mkdir()
    (folder / "scorecard.yaml").write_text(yaml.safe_dump(card, allow_unicode=True), encoding="utf-8")
    return folder


def _close(svc: RunningService, cid: str, language: str) -> dict:
    jurisdiction = "es" if language == "es" else "us"
    r = httpx.post(f"{svc.http}/conversations", headers=ACME, timeout=30, json={
        "id": cid, "channel": "chat", "language": language, "jurisdiction": jurisdiction, "agent": "Ana",
        "metadata": {"identity_verified": True}})
    assert r.status_code == 201, r.text
    for sender, text in CONVERSATIONS[language]:
        r = httpx.post(f"{svc.http}/conversations/{cid}/messages", headers=ACME, timeout=30,
                       json={"sender": sender, "text": text})
        assert r.status_code == 200, r.text
    return httpx.post(f"{svc.http}/conversations/{cid}/close", headers=ACME, timeout=60, json={}).json()["qa"]


def test_a_tenant_scorecard_scores_the_services_calls(tmp_path):
    with RunningService(tenant_settings(tmp_path, rules_dir=_tenant_rules(tmp_path))) as svc:
        for language in ("es", "en"):
            card = _close(svc, f"tenant-card-{language}", language)["scorecard"]
            payment = next(i for i in card["items"] if i["id"] == "C1")
            assert payment["title"] == TITLE[language] and payment["titles"] == TITLE
            assert payment["points"] == 20 and payment["result"] == "pass", payment
            scored = [i for i in card["items"] if i["result"] != "na"]
            earned = sum(i["points"] for i in scored if i["result"] == "pass")
            assert card["score"] == round(100 * earned / sum(i["points"] for i in scored), 1)
