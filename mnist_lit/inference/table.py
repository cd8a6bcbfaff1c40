"""The human-readable table of predict.py's answers: file, verdict, digit (or number), confidence,
top digits.

Try it: python predict.py image=path/to/digits/
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mnist_lit.answer import NOT_A_DIGIT
from mnist_lit.inference.predictor import Prediction


def format_table(predictions: Sequence[Prediction], topk: int) -> str:
    """A human-readable table: file, verdict, digit, confidence and the top-k digits."""
    # "digit": the number, for one
    rows = [("image", "verdict", "digit", "confidence", f"top-{topk} digits")]
    for p in predictions:
        if p.error or p.answer is None:
            rows.append((p.image, "error", "-", "-", str(p.error)))
            continue
        a = p.answer
        # a number: each digit's reading instead of the top-k
        if len(p.digits) > 1:
            number = "".join(str(d.digit) for d, _ in p.digits if d.digit is not None) or "-"
            each = ", ".join(
                f"{'?' if d.digit is None else d.digit} {100 * d.confidence:.1f}%"
                for d, _ in p.digits
            )
            rows.append(
                (p.image, a.verdict, number, f"{100 * a.confidence:.1f}%", f"digits: {each}")
            )
            continue
        order = np.argsort(a.probs)[::-1][:topk]
        top = ", ".join(f"{k} {100 * a.probs[k]:.1f}%" for k in order)
        digit = "-" if a.digit is None else str(a.digit)
        rows.append((p.image, a.verdict, digit, f"{100 * a.confidence:.1f}%", top))
    width = max(len(r[0]) for r in rows)
    verdict = max(len(NOT_A_DIGIT), len("verdict"))
    digits = max(len(r[2]) for r in rows)
    return "\n".join(
        f"{r[0]:<{width}}  {r[1]:<{verdict}}  {r[2]:>{digits}}  {r[3]:>10}  {r[4]}" for r in rows
    )
