"""Categorisation measured on real customer-service text in ../shared/data, where labels allow.

NatCS (DSTC11 intents, spoken-style customer turns): the `dispute` outcome against the dispute-like
intent as positives and every other intent as negatives, plus how often any other outcome tag fires
(false alarms: none of these intents is a collections outcome). The insurance "development" file
(ReportBillingIssue) was looked at to add billing-issue cues to categories.yaml; the banking and
finance files (DisputeCharge) were not, so they are the held-out numbers.
ABCD sample (3 full customer-service chats, none about debt): contact type and spurious outcomes.
Prints a table and writes benchmarks/results/categorise.json.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assist.qa.calldata import CallData, Turn
from assist.qa.categorise import categorise, categorise_text

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
NATCS = DATA / "natcs-dstc11-intents"
POSITIVE = {"DisputeCharge", "ReportBillingIssue"}


def natcs(files: list[Path]) -> dict:
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines() if line]
    tp = fp = fn = tn = 0
    other_tags: Counter[str] = Counter()
    fired_other = 0
    missed: list[str] = []
    for r in rows:
        tags = categorise_text(r["utterance"], "debtor")
        positive, hit = r["intent"] in POSITIVE, "dispute" in tags
        tp += positive and hit
        fn += positive and not hit
        fp += hit and not positive
        tn += not hit and not positive
        if positive and not hit and len(missed) < 5:
            missed.append(r["utterance"])
        if not positive:
            other_tags.update(t for t in tags if t != "dispute")
            fired_other += bool(tags - {"dispute"})
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    negatives = len(rows) - tp - fn
    return {
        "files": [f.name for f in files],
        "utterances": len(rows), "dispute_positives": tp + fn, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "dispute_precision": round(precision, 3), "dispute_recall": round(recall, 3),
        "dispute_f1": round(2 * precision * recall / (precision + recall), 3) if precision + recall else 0.0,
        "other_outcome_false_alarm_rate": round(fired_other / negatives, 4),
        "other_outcome_false_alarms": dict(other_tags.most_common()),
        "missed_examples": missed,
    }


def abcd() -> list[dict]:
    convos = json.loads((DATA / "abcd-sample" / "abcd_sample.json").read_text())
    out = []
    for c in convos:
        turns, t = [], 0.0
        for speaker, text in c["original"]:
            if speaker == "action":
                continue
            dur = 0.4 * len(text.split()) + 0.5
            turns.append(Turn("agent" if speaker == "agent" else "debtor", t, t + dur, text))
            t += dur + 0.3
        cat = categorise(CallData(str(c["convo_id"]), tuple(turns)))
        out.append({"convo_id": c["convo_id"], "flow": c["scenario"]["flow"], "subflow": c["scenario"]["subflow"],
                    "contact": cat.contact, "outcomes": [o.code for o in cat.outcomes]})
    return out


def main() -> None:
    result = {
        "natcs_dev_seen": natcs([NATCS / "development.test-utterances.jsonl"]),
        "natcs_heldout": natcs([NATCS / "test-banking.test-utterances.jsonl",
                                NATCS / "test-finance.test-utterances.jsonl"]),
        "abcd": abcd(),
    }
    for key in ("natcs_dev_seen", "natcs_heldout"):
        n = result[key]
        print(f"{key}: {n['utterances']} utterances, {n['dispute_positives']} dispute-like")
        print(f"  dispute precision {n['dispute_precision']:.3f}  recall {n['dispute_recall']:.3f}  "
              f"F1 {n['dispute_f1']:.3f}")
        print(f"  other outcome tags fire on {n['other_outcome_false_alarm_rate']:.2%} of the other turns: "
              f"{n['other_outcome_false_alarms']}")
    for a in result["abcd"]:
        print(f"ABCD {a['convo_id']} {a['flow']}/{a['subflow']}: contact {a['contact']}, outcomes {a['outcomes']}")
    out = ROOT / "benchmarks" / "results" / "categorise.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
