"""How cautious the router's context-window estimate is, against a real model's tokenizer.

The router cannot run each backend's tokenizer, so it estimates a prompt's tokens
(`switchyard.router.policy.estimate_window_tokens`) when it checks that a target's context
window holds it (docs/routing-policy.md). This script tokenizes texts with a model's
`tokenizer.json` (default: the local model `scripts/setup` prepares) and prints, per corpus, the
real bytes per token and how the estimate compares with the real count: a ratio above 1
over-counts (a prompt that would just fit may be sent to a larger target), below 1 under-counts
(the backend refuses the prompt, as it did before the router checked).

    python scripts/measure_window_estimate.py [--tokenizer PATH] [--prompts DIR] [--factor 1.0]

Corpora: the repository's Markdown docs (prose), its Python sources (code), a few sentences in
other languages written for this script, and, with `--prompts DIR`, the `prompt` field of every
`*.jsonl` file there (one text per line).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIN_BYTES = 512  # shorter texts say little about a long prompt's ratio
#: Written for this script (not from a data set): one business sentence per language.
AUTHORED = [
    "委员会审查了季度数据，并指出收入比去年同期增长了百分之十二。董事会将在下个月讨论新的预算计划。",
    "Комитет рассмотрел квартальные показатели и отметил, что выручка выросла на двенадцать "
    "процентов по сравнению с прошлым годом.",
    "Der Ausschuss prüfte die Quartalszahlen und stellte fest, dass der Umsatz gegenüber dem "
    "Vorjahr um zwölf Prozent gestiegen ist.",
    "委員会は四半期の数字を検討し、売上高が前年より十二パーセント増加したと指摘した。",
    "راجعت اللجنة الأرقام الفصلية وأشارت إلى أن الإيرادات ارتفعت بنسبة اثني عشر بالمئة مقارنة "
    "بالعام الماضي.",
    "great job 🎉🎉🎉 thanks 👍 see you tomorrow 😀",
]


def _files(pattern: str) -> list[str]:
    skip = (".venv", "node_modules", "/api/")
    return [
        p.read_text(encoding="utf-8")
        for p in sorted(ROOT.glob(pattern))
        if not any(s in str(p) for s in skip)
    ]


def _prompts(directory: Path) -> list[str]:
    texts = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").split("\n"):
            prompt = json.loads(line).get("prompt") if line.strip() else None
            if isinstance(prompt, str):
                texts.append(prompt)
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", type=Path, help="default: the local model's")
    parser.add_argument("--prompts", type=Path, help="a folder of *.jsonl with a prompt field")
    parser.add_argument("--factor", type=float, default=1.0, help="window_estimate_factor")
    args = parser.parse_args()

    from tokenizers import Tokenizer

    from switchyard.router.policy import TOKENS_PER_MESSAGE, estimate_window_tokens

    def estimate(text: str) -> int:  # the text alone, without the per-message template tokens
        return estimate_window_tokens([text], args.factor) - TOKENS_PER_MESSAGE

    if args.tokenizer is None:
        from switchyard.local_inference.model_preparation import default_model_dir

        args.tokenizer = default_model_dir() / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(args.tokenizer))
    corpora = {
        "docs (*.md)": _files("**/*.md"),
        "code (*.py)": _files("services/**/*.py"),
        "authored, 6 languages": AUTHORED,
    }
    if args.prompts:
        corpora[f"prompts ({args.prompts.name})"] = _prompts(args.prompts)
    print(f"tokenizer {args.tokenizer}; window_estimate_factor {args.factor}")
    print(
        f"{'corpus':<24} {'texts':>6} {'bytes/token':>11} {'estimate/real':>13} "
        f"{'under-counted':>13} {'lowest':>7} {'median':>7}"
    )
    for name, texts in corpora.items():
        counts = [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
        # per text (long ones only, except the short authored sentences)
        floor = 0 if texts is AUTHORED else MIN_BYTES
        ratios = sorted(
            estimate(t) / n
            for t, n in zip(texts, counts, strict=True)
            if n and len(t.encode("utf-8")) >= floor
        )
        size = sum(len(t.encode("utf-8")) for t in texts)
        total = sum(counts)
        overall = sum(estimate(t) for t in texts) / total
        under = sum(1 for r in ratios if r < 1)
        print(
            f"{name:<24} {len(ratios):>6} {size / total:>11.2f} {overall:>13.2f} "
            f"{under:>6} ({under / len(ratios):.1%}) {ratios[0]:>7.2f} "
            f"{ratios[len(ratios) // 2]:>7.2f}"
        )


if __name__ == "__main__":
    main()
