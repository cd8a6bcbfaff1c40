"""Each "not a digit" signal of a checkpoint on its own and together, threshold-free: per source,
its AUROC against MNIST test digits saved as PNG files, and the share it rejects at the threshold
that accepts 99.5% of those digits; user-style digits' acceptance there. The sources: bench/
not_digits.py's drawings, and bench/unseen.py's evaluate-only ones. Every picture is read as one
digit, as predict.py reads it.

Run: DATA_DIR=../shared/data .venv/bin/python bench/signals.py --ckpt <best.ckpt>

The signals are the terms of models.not_digit_log_odds: the network's 11th output, the feature
distance beyond the digits' usual one, and the shape critic; the app adds all three.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import not_digits
import numpy as np
import torch
import unseen

from mnist_lit import checkpoints
from mnist_lit.inference.sources import load_pictures
from mnist_lit.inference.torch_model import Scorer
from mnist_lit.models import feature_distance, not_digit_log_odds

# of the MNIST test digits, accepted by each signal's threshold
ACCEPT = unseen.ACCEPT


def terms(scorer: Scorer, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """Each signal's log-odds of no digit for (N, 28, 28) uint8 pictures, and their sums."""
    x = (torch.from_numpy(pixels).float()[:, None] / 255 - scorer.mean) / scorer.std
    with torch.inference_mode():
        hidden = scorer.net.embed(x)
        logits = scorer.net.head(hidden)
        out = {"11th output": not_digit_log_odds(logits)}
        if scorer.distance:
            distance = feature_distance(hidden, scorer.means, scorer.precision)
            out["11th output + distance"] = not_digit_log_odds(logits, distance, scorer.limit)
            # the distance's own term, log(distance / limit), as the sum computes it
            out["feature distance"] = out["11th output + distance"] - out["11th output"]
        if scorer.critic is not None:
            out["shape critic"] = scorer.critic(x)
            out["11th output + critic"] = not_digit_log_odds(logits, critic=out["shape critic"])
        if scorer.distance and scorer.critic is not None:
            out["all three (the app's)"] = not_digit_log_odds(
                logits, distance, scorer.limit, out["shape critic"]
            )
    return {name: t.float().numpy() for name, t in out.items()}


def read_pixels(paths: list[str]) -> tuple[np.ndarray, list[int]]:
    """The pictures read as one digit (N, 28, 28), and the indices of those that could be read."""
    read = load_pictures(paths, os.cpu_count() or 1, read="digit")
    kept = [i for i, p in enumerate(read) if p.error is None]
    return np.stack([read[i].pixels for i in kept]), kept


def main() -> None:
    """Print one table per signal."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--per-kind", type=int, default=20, help="unseen doodles per kind")
    parser.add_argument("--per-family", type=int, default=12, help="not_digits per family")
    parser.add_argument("--mnist", type=int, default=2000, help="MNIST test digits as PNG files")
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scorer = Scorer.of(checkpoints.read(args.ckpt), args.ckpt)
    rng = np.random.default_rng(args.seed)
    made = unseen.sources(args.per_kind, rng)
    drawn = not_digits.drawings(args.per_family, rng)
    groups: dict[str, list[int]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        pages = np.random.default_rng(args.seed + 1)
        paths = unseen.save([d for _, _, d in made], Path(tmp) / "unseen", pages)
        paths += [str(p) for _, p in not_digits.save(drawn, Path(tmp) / "not_digits", pages)]
        labels = [("unseen", s, k) for s, k, _ in made] + [("not_digits", f, f) for f, _ in drawn]
        pixels, kept = read_pixels(paths)
        mnist, user = unseen.digit_files(args.data, args.mnist, Path(tmp) / "digits", args.seed)
        mnist_terms = terms(scorer, read_pixels(mnist)[0])
        user_terms = terms(scorer, read_pixels(user)[0])
    for row, i in enumerate(kept):
        bench, source, kind = labels[i]
        groups[f"{bench}: {source}"].append(row)
        groups[f"{bench}: all"].append(row)
        if bench == "unseen" and kind in unseen.UNNAMED:
            groups["unseen: kinds never named"].append(row)
    drawing_terms = terms(scorer, pixels)
    print(f"Checkpoint {args.ckpt}; pictures that could not be read: {len(paths) - len(kept)}")
    for name, scores in drawing_terms.items():
        digits = mnist_terms[name]
        cut = float(np.quantile(digits, ACCEPT, method="higher"))
        accepted = 100 * np.mean(user_terms[name] <= cut)
        print(
            f"\n{name}: at {100 * ACCEPT:.1f}% of {len(digits)} MNIST test digits accepted, "
            f"user-style digits accepted {accepted:.1f}%\n"
            "\n| pictures | count | AUROC vs MNIST digits | rejected |\n|---|---:|---:|---:|"
        )
        for group, rows in sorted(groups.items()):
            part = scores[rows]
            print(
                f"| {group} | {len(rows)} | {unseen.auroc(digits, part):.3f} | "
                f"{100 * np.mean(part > cut):.1f}% |"
            )


if __name__ == "__main__":
    main()
