"""Experiment loggers: MLflow's SQLite store, W&B offline, several at once, and a name that does
not exist.

Run: pytest tests/training/test_loggers.py
"""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import pytest
from mlflow import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from wandb.proto import wandb_internal_pb2

from mnist_lit.training.run import train
from tests.conftest import run_cli, synthetic_overrides

ONE_EPOCH = ("trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1")
REPORT_IMAGES = {
    "train_batch.png",
    "test_confusion_matrix.png",
    "test_misclassified.png",
    "test_reliability.png",
}
# the .wandb file: W&B's header, then LevelDB's log format (32 KiB blocks of records, each with a
# 7-byte header)
WANDB_HEADER, WANDB_BLOCK, RECORD_HEADER, FULL, LAST = 7, 32768, 7, 1, 4


def mlflow_overrides(tmp_path: Path, prefix: str = "logger") -> list[str]:
    """The MLflow store and its artifacts under tmp_path."""
    return [
        f"{prefix}.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
        f"{prefix}.artifact_location={tmp_path}/art",
    ]


def mlflow_run(tmp_path: Path):
    """The one run in the MLflow store under tmp_path, read back through MLflow's own client."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("mnist-lit").experiment_id])
    return client, run


@pytest.mark.parametrize(("logger", "prefix"), [("mlflow", "logger"), ("many", "logger.mlflow")])
def test_a_fast_dev_run_leaves_its_results_and_config_in_the_mlflow_store(
    make_cfg, tmp_path, logger, prefix
):
    metrics = train(
        make_cfg(
            f"logger={logger}", "trainer.fast_dev_run=true", *mlflow_overrides(tmp_path, prefix)
        )
    )
    _, run = mlflow_run(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    assert run.data.params["model/arch"] == "cnn"
    assert run.data.params["optimizer/_target_"] == "torch.optim.Adam"


def test_logger_many_gives_tensorboard_csv_and_mlflow_the_same_metrics_and_images(
    make_cfg, tmp_path
):
    metrics = train(
        make_cfg("logger=many", *ONE_EPOCH, *mlflow_overrides(tmp_path, "logger.mlflow"))
    )
    run_dir = tmp_path / "run"
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    with open(run_dir / "csv" / "metrics.csv") as f:
        csv_keys = set(next(csv.reader(f)))
    client, run = mlflow_run(tmp_path)
    for key in ("train/loss", "val/acc", "test/acc"):
        assert key in events.Tags()["scalars"]
        assert key in csv_keys
        assert key in run.data.metrics
    assert run.data.metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    assert {"train/batch", "test/confusion_matrix", "test/reliability"} <= set(
        events.Tags()["images"]
    )
    assert {
        Path(a.path).name for a in client.list_artifacts(run.info.run_id, "report")
    } == REPORT_IMAGES


def wandb_records(path: Path) -> list:
    """Every record of a W&B offline run file, parsed with W&B's own protobuf classes."""
    data, pos, records, chunk = path.read_bytes(), WANDB_HEADER, [], b""
    while pos + RECORD_HEADER <= len(data):
        left = WANDB_BLOCK - pos % WANDB_BLOCK
        _, length, kind = struct.unpack("<IHB", data[pos : pos + RECORD_HEADER])
        # the rest of the block is padding
        if left < RECORD_HEADER or kind == 0:
            pos += left
            continue
        chunk += data[pos + RECORD_HEADER : pos + RECORD_HEADER + length]
        pos += RECORD_HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            records.append(record)
            chunk = b""
    return records


@pytest.mark.cli
def test_logger_wandb_offline_leaves_a_run_directory_with_the_history(synthetic_root, tmp_path):
    wandb_home = {
        f"WANDB_{k}_DIR": str(tmp_path / "wandb_home") for k in ("CACHE", "CONFIG", "DATA")
    }
    args = [*synthetic_overrides(synthetic_root), "logger=wandb", "logger.mode=offline", *ONE_EPOCH]
    proc = run_cli("train.py", *args, f"hydra.run.dir={tmp_path}/run", cwd=tmp_path, env=wandb_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_file,) = (tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")
    records = wandb_records(run_file)
    # a scalar's key is `key`; an image's fields (its file, size, ...) are nested under its key
    logged = {
        item.key or item.nested_key[0]
        for r in records
        if r.HasField("history")
        for item in r.history.item
    }
    assert {"train/loss", "val/acc", "test/acc", "train/batch", "test/confusion_matrix"} <= logged
    config = {item.key for r in records if r.HasField("config") for item in r.config.update}
    assert {"model", "optimizer", "trainer"} <= config
    assert f"wandb sync {run_file.parent}" in proc.stderr + proc.stdout


@pytest.mark.cli
def test_a_logger_that_does_not_exist_is_a_one_line_error(tmp_path):
    proc = run_cli("train.py", "logger=comet", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: logger=comet does not exist; choose one of ['csv', 'many', 'mlflow', 'none', "
        "'tensorboard', 'wandb']"
    ]
    assert not (tmp_path / "outputs").exists()
