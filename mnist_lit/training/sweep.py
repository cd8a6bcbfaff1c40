"""Sweeps: a failed job is recorded and the sweep goes on; a summary table of every job lands in the
sweep dir.

Try it: python train.py -m optimizer=adam,sgd seed=1,2 trainer.max_epochs=1
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from mnist_lit import first_line
from mnist_lit.cli import fail
from mnist_lit.files import atomic_write

log = logging.getLogger(__name__)
# in a job's run dir: the error that ended it
FAILED_FILE = "FAILED"
SUMMARY_METRICS = ("test/acc", "test/loss", "val/acc_best", "epochs")


def in_multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def sweeper_stops_on_exceptions() -> bool:
    """Hydra's basic sweeper re-raises the first failed job's exception, ending the sweep; Optuna's
    records the trial as failed (it needs the exception for that: a NaN result breaks it) and
    searches on."""
    return HydraConfig.get().sweeper._target_.endswith("BasicSweeper")


def record_failure(run_dir: str | os.PathLike, err: BaseException) -> None:
    """Note in the job's run dir why it failed, for the sweep summary."""
    log.exception("job failed; the sweep goes on")
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / FAILED_FILE).write_text(f"{type(err).__name__}: {first_line(err)}\n")


def collect(sweep_dir: str | os.PathLike, metric: str) -> list[dict[str, Any]]:
    """One row per job directory of the sweep, best first by `metric`, failed and unfinished jobs
    last."""
    rows = []
    for job in sorted(Path(sweep_dir).iterdir(), key=lambda p: (len(p.name), p.name)):
        overrides_file = job / ".hydra" / "overrides.yaml"
        if not overrides_file.is_file():
            continue
        row: dict[str, Any] = {
            "job": job.name,
            "overrides": " ".join(OmegaConf.load(overrides_file)),
        }
        if (job / "metrics.json").is_file():
            metrics = json.loads((job / "metrics.json").read_text())
            row.update(status="ok", **{k: metrics.get(k) for k in (metric, *SUMMARY_METRICS)})
        elif (job / FAILED_FILE).is_file():
            row.update(status="failed", error=(job / FAILED_FILE).read_text().strip())
        else:
            row.update(status="unfinished")
        row["run_dir"] = str(job)
        rows.append(row)
    lower_is_better = "loss" in metric

    def key(row: dict[str, Any]) -> tuple[int, float]:
        value = row.get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return (1, 0.0)
        return (0, value if lower_is_better else -value)

    return sorted(rows, key=key)


def markdown(rows: list[dict[str, Any]], metric: str) -> str:
    """The rows as a markdown table."""
    columns = [
        "job",
        "status",
        metric,
        *[m for m in SUMMARY_METRICS if m != metric],
        "overrides",
        "run_dir",
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(
                c, row.get("error", "") if c == metric and row["status"] == "failed" else ""
            )
            cells.append(
                f"{value:.4f}"
                if isinstance(value, float)
                else str(value if value is not None else "")
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_summary(sweep_dir: str | os.PathLike, metric: str) -> list[dict[str, Any]]:
    """summary.csv and summary.md in the sweep dir, rewritten after every job."""
    rows = collect(sweep_dir, metric)
    fields = [
        "job",
        "status",
        metric,
        *[m for m in SUMMARY_METRICS if m != metric],
        "error",
        "overrides",
        "run_dir",
    ]
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    # parallel launchers end jobs in several processes at once: each writes aside, then renames into
    # place
    atomic_write(Path(sweep_dir) / "summary.csv", lambda f: f.write(table.getvalue().encode()))
    atomic_write(
        Path(sweep_dir) / "summary.md", lambda f: f.write((markdown(rows, metric) + "\n").encode())
    )
    return rows


class SweepSummary(Callback):
    """Hydra callback: keeps summary.csv/.md up to date as jobs end, prints it when the sweep ends;
    a sweep with a failed job exits non-zero unless `fail_on_error` is off (a search, where failed
    trials are expected)."""

    def __init__(self, fail_on_error: bool = True) -> None:
        self.fail_on_error = fail_on_error

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            write_summary(config.hydra.sweep.dir, config.optimized_metric)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = write_summary(sweep_dir, config.optimized_metric)
        print(
            f"\nSweep summary ({sweep_dir}/summary.md, "
            f"summary.csv):\n{markdown(rows, config.optimized_metric)}"
        )
        failed = [r["job"] for r in rows if r["status"] != "ok"]
        if failed and self.fail_on_error:
            fail(f"{len(failed)} of {len(rows)} jobs failed: {', '.join(failed)}")
