"""Sample real lines from ../shared/data as negatives for the compliance/prompt evaluation set:
customer-service utterances (NatCS, EN, debtor side) and movie subtitles (XED, EN and ES, both sides).
Lines that touch the rules' subjects (money, law, police, health, insults, ...) are dropped by keyword,
so what is left calls for no warning and no card. Deterministic: rerun to reproduce the files.

    python benchmarks/sample_real_negatives.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent / "data" / "compliance_eval"
PER_SPLIT = 60  # lines per source, language and split
SKIP_INTENTS = {"DisputeCharge", "ReportBillingIssue", "ReportLostStolenCard", "ReportAutomobileAccident", "FileClaim",
                "CancelAutomaticBilling", "CloseAccount", "CloseBankAccount", "CancelPlan"}
TOPICS = re.compile(
    r"\b(jail|prison|arrest|police|cops?|court|judge|sue|lawyer|attorney|law|legal|crime|criminal|fraud|scam|garnish|seize|"
    r"credit|debt|owe|pay|paid|money|cash|bank|loan|dollars?|kill|die|died|dead|death|sick|ill|hospital|doctor|job|fired|"
    r"work|boss|call|calling|phone|hang|stop|leave|alone|liar|thief|stupid|idiot|damn|hell|shit|fuck|bitch|ass|bastard|"
    r"depress\w*|cancer|sorry|cárcel|prisión|preso|policía|juez|juzgado|tribunal|demanda\w*|abogad\w*|ley|delito|"
    r"fraude|estafa\w*|embarg\w*|crédito|deuda|debe\w*|deb[oe]|pag\w+|dinero|plata|banco|préstamo|dólares|euros|pesos|"
    r"mat\w+|muert\w*|muri\w+|enferm\w*|hospital|médico|trabajo|jefe|llam\w+|teléfono|colg\w+|déj\w+|ladr\w+|mentir\w*|"
    r"freak\w*|moron|jerk|loser|whore|shoot|gun|hurt|bomb|threat\w*|fuck\w*|shit\w*|coward|slob|shut|kill\w*|dismember\w*|"
    r"prisoner|sucker\w*|bum|murder\w*|perr\w+|soplón|foll\w+|arranc\w+|manos|usurer\w+|asesin\w+|aseguraré|rape\w*|viol\w+|quem\w+|dispar\w+|secuestr\w+|culp\w+|"
    r"idiota|estúpid\w*|mierda|joder|puta?|carajo|cabr\w+|coño|maldit\w*)\b",
    re.IGNORECASE,
)


def _ok(text: str) -> bool:
    return 4 <= len(text.split()) <= 25 and not TOPICS.search(text) and not re.search(r"[\[\]$€]", text)


def _detokenise(text: str) -> str:
    """XED splits punctuation off words ("it 's time ."): join it back."""
    text = re.sub(r" ([,.!?;:…'])", r"\1", re.sub(r" ' ", "'", text)).replace(" - ", "-")
    return re.sub(r"([¿¡]) ", r"\1", text).lstrip("- ").strip()


def _pick(lines: list[str], salt: str) -> tuple[list[str], list[str]]:
    """Train and test samples, disjoint, in a fixed pseudo-random order."""
    unique = sorted(dict.fromkeys(t for t in lines if _ok(t)),
                    key=lambda t: hashlib.sha1((salt + t).encode()).hexdigest())
    return unique[:PER_SPLIT], unique[PER_SPLIT : 2 * PER_SPLIT]


def _natcs(data: Path) -> list[str]:
    rows = [json.loads(line) for f in sorted((data / "natcs-dstc11-intents").glob("*.jsonl")) for line in f.open()]
    return [r["utterance"].strip() for r in rows if r["intent"] not in SKIP_INTENTS]


def _xed(data: Path, name: str) -> list[str]:
    text = (data / "xed-emotion" / name).read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if "\t" in line]
    return [_detokenise(r[1] if r[0].strip().isdigit() else r[0]) for r in rows]


def _write(speaker: str, split: str, groups: list[dict]) -> None:
    head = (f"# Real {speaker}-side negatives, {split.upper()} split, written by "
            "benchmarks/sample_real_negatives.py from\n"
            "# ../shared/data (NatCS CDLA-Permissive-2.0, XED CC-BY-4.0). None calls for a warning or a card.\n")
    body = yaml.safe_dump({"speaker": speaker, "split": split, "groups": groups}, allow_unicode=True, width=140,
                          sort_keys=False)
    (OUT / f"real_{speaker}.{split}.yaml").write_text(head + body, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    data = parser.parse_args().data
    natcs = _pick(_natcs(data), "natcs")
    xed_en = _pick(_xed(data, "AnnotatedData_en-annotated.tsv"), "xed-en")
    xed_es = _pick(_xed(data, "Projections_es-projections.tsv"), "xed-es")
    xed_en_d = _pick(_xed(data, "AnnotatedData_neu_en.txt"), "xed-en-neutral")
    for i, split in enumerate(("train", "dev")):
        subs = {"group": "movie subtitles (XED)", "rule": None,
                "lines": {"en-US": xed_en[i], "es-ES": xed_es[i][: PER_SPLIT // 2]}}
        _write("agent", split, [subs])
        _write("debtor", split, [
            {"group": "customer-service requests (NatCS)", "rule": None, "card": None, "lines": {"en-US": natcs[i]}},
            {"group": "movie subtitles (XED)", "rule": None, "card": None,
             "lines": {"en-US": xed_en_d[i][: PER_SPLIT // 2], "es-ES": xed_es[i][PER_SPLIT // 2 :]}},
        ])
        print(f"{split}: natcs {len(natcs[i])}, xed en {len(xed_en[i])}, es {len(xed_es[i])}, "
              f"en-neutral {len(xed_en_d[i])}")


if __name__ == "__main__":
    main()
