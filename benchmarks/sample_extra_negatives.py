"""More real negatives for the TRAIN split (issue 15): the lines that come after the train and dev samples
of benchmarks/sample_real_negatives.py in its fixed order (so disjoint from both), written to
real_*_extra.train.yaml. Ordinary talk (service requests, film lines) teaches the heads what calls for
nothing; the written close negatives alone left cards raised on 15-20 % of Spanish none-lines.

    python -m benchmarks.sample_extra_negatives [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import yaml

from benchmarks.sample_real_negatives import OUT, PER_SPLIT, _natcs, _ok, _xed

EXTRA = 60  # lines per source and language


def _after_splits(lines: list[str], salt: str, n: int = EXTRA) -> list[str]:
    """The `n` lines after the train and dev samples of `sample_real_negatives._pick` (same order)."""
    unique = sorted(
        dict.fromkeys(t for t in lines if _ok(t)), key=lambda t: hashlib.sha1((salt + t).encode()).hexdigest()
    )
    return unique[2 * PER_SPLIT : 2 * PER_SPLIT + n]


def _write(speaker: str, groups: list[dict]) -> None:
    head = (f"# Real {speaker}-side negatives, extra TRAIN lines, written by benchmarks/sample_extra_negatives.py\n"
            "# from ../shared/data (NatCS CDLA-Permissive-2.0, XED CC-BY-4.0). None calls for a warning or a card.\n")
    spec = {"speaker": speaker, "split": "train", "groups": groups}
    body = yaml.safe_dump(spec, allow_unicode=True, width=140, sort_keys=False)
    (OUT / f"real_{speaker}_extra.train.yaml").write_text(head + body, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    data = parser.parse_args().data
    xed_es = _after_splits(_xed(data, "Projections_es-projections.tsv"), "xed-es", 2 * EXTRA)
    xed_en = _after_splits(_xed(data, "AnnotatedData_en-annotated.tsv"), "xed-en")
    xed_en_neutral = _after_splits(_xed(data, "AnnotatedData_neu_en.txt"), "xed-en-neutral")
    natcs = _after_splits(_natcs(data), "natcs")
    films = "movie subtitles (XED)"
    _write("agent", [{"group": films, "rule": None, "lines": {"en-US": xed_en, "es-ES": xed_es[:EXTRA]}}])
    _write("debtor", [
        {"group": "customer-service requests (NatCS)", "rule": None, "card": None, "lines": {"en-US": natcs}},
        {"group": films, "rule": None, "card": None, "lines": {"en-US": xed_en_neutral, "es-ES": xed_es[EXTRA:]}},
    ])


if __name__ == "__main__":
    main()
