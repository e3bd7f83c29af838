"""Cross-validate the whole matching pipeline on the TRAIN split: the meaning heads are refitted on
four fifths of the train lines (plus the packs' and cards' phrases) and the live analysers are scored on
the other fifth, per language. This is what settings are chosen on; the test split is never read.

    python benchmarks/cv_intent.py [--c-agent 100 --t-agent 0.5 --knn 0.3 --errors]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import assist.analysis.compliance as compliance
from assist.analysis.intent import NONE, IntentHead, intent_config
from assist.analysis.prompts import card_index
from benchmarks import compliance_eval as ev
from benchmarks.train_intent import FOLDS, card_examples, fit, pack_examples
from models.embeddings import load_embedder


def _head(name: str, base: list, lines: list, embed, args: argparse.Namespace) -> IntentHead:
    """The head `name` fitted on `base` + `lines` with the command line's C, threshold and kNN weight."""
    spec = intent_config().heads[name]  # type: ignore[index]
    c, threshold, knn = getattr(args, f"c_{name}"), getattr(args, f"t_{name}"), args.knn
    labels = (NONE, *spec.labels)
    examples = list(dict.fromkeys(base)) + lines
    x = embed([t for t, _ in examples])
    y = np.array([labels.index(label) for _, label in examples])
    w, b = fit(x, y, len(labels), c)
    return IntentHead(labels, w, b, spec.threshold if threshold is None else threshold,
                      frozenset(spec.negative_meaning), x.astype(np.float32), y,
                      intent_config().knn_weight if knn is None else knn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, c in (("agent", 100.0), ("debtor", 100.0), ("prompts", 100.0)):
        parser.add_argument(f"--c-{name}", type=float, default=c)
        parser.add_argument(f"--t-{name}", type=float, help="threshold instead of intent.yaml's")
    parser.add_argument("--knn", type=float, help="knn_weight instead of intent.yaml's")
    parser.add_argument("--errors", action="store_true", help="print every wrong line")
    args = parser.parse_args()
    embed = load_embedder(intent_config().embedder).embed
    agent_base, debtor_base = pack_examples()
    lines = ev.load_lines("train")
    folds = np.random.default_rng(0).permutation(len(lines)) % FOLDS
    tallies: dict = {}
    prompt_rows: list = []
    index = card_index()
    for f in range(FOLDS):
        train = [ln for ln, k in zip(lines, folds) if k != f]
        held = [ln for ln, k in zip(lines, folds) if k == f]
        agent = [(ln.text, ln.rule or NONE) for ln in train if ln.speaker.value == "agent"]
        debtor = [(ln.text, ln.rule or NONE) for ln in train if ln.speaker.value == "debtor"]
        cards = [(ln.text, ln.card or NONE) for ln in train if ln.speaker.value == "debtor"]
        heads = {"agent": _head("agent", agent_base, agent, embed, args),
                 "debtor": _head("debtor", debtor_base, debtor, embed, args)}
        compliance.load_heads = lambda model, heads=heads: heads  # the analysers read the fold's heads
        t, errors = ev.score_compliance(held)
        if args.errors:
            print("\n".join(errors))
        for k, v in t.items():
            tallies.setdefault(k, ev.Tally()).add(v)
        fold_index = dataclasses.replace(index, head=_head("prompts", card_examples(), cards, embed, args))
        prompt_rows += [(ln, fold_index.match(ln.text)) for ln in held if ln.speaker.value == "debtor"]
    for lang, t in sorted(ev.by_language(tallies).items()):
        print(f"compliance {lang}: precision {t.precision:.3f} recall {t.recall:.3f} ({t})")
    for lang in ("en", "es"):
        rows = [(ln, m) for ln, m in prompt_rows if ln.language == lang]
        card = [(ln, m) for ln, m in rows if ln.card]
        none = [(ln, m) for ln, m in rows if not ln.card]
        top1 = sum(m is not None and m.card.id == ln.card for ln, m in card) / len(card)
        raised = sum(m is not None for _, m in none) / len(none)
        if args.errors:
            print("\n".join(f"  {ln.card} got {m and m.card.id}: {ln.text}"
                            for ln, m in rows if (m and m.card.id) != ln.card))
        print(f"prompts {lang}: top-1 {top1:.3f} on {len(card)}, raised on none {raised:.3f} of {len(none)}")


if __name__ == "__main__":
    main()
