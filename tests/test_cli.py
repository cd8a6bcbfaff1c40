"""train.py as a user runs it: bad input, run directories, multirun.  Run: pytest
tests/test_cli.py"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time

import pytest
from PIL import Image

from tests.conftest import FAST, ROOT, make_digits, run_cli, run_sweep

# a proxy on a closed local port: torchvision's download fails at once without any traffic leaving
# the machine
OFFLINE = {"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "no_proxy": ""}


def assert_one_line_error(proc, *fragments: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0]


@pytest.mark.cli
@pytest.mark.parametrize(
    ("arg", "choices"),
    [("model=resnet9000", "['cnn', 'deep_cnn']"), ("optimizer=adam,lion", "['adam', 'sgd']")],
)
def test_an_unknown_choice_is_one_line_with_the_choices(tmp_path, arg, choices):
    proc = run_cli("train.py", arg, *(["-m"] if "," in arg else []), cwd=tmp_path)
    assert proc.returncode == 1
    bad = arg.split("=")[0] + "=" + arg.split(",")[-1].split("=")[-1]
    assert proc.stderr.strip().splitlines() == [
        f"error: {bad} does not exist; choose one of {choices}"
    ]


@pytest.mark.cli
def test_missing_mnist_offline_fails_fast(tmp_path):
    start = time.monotonic()
    proc = run_cli("train.py", f"data.root={tmp_path / 'empty'}", *FAST, cwd=tmp_path, env=OFFLINE)
    assert time.monotonic() - start < 60
    assert_one_line_error(
        proc, str(tmp_path / "empty" / "MNIST" / "raw"), "t10k-labels-idx1-ubyte", "DATA_DIR"
    )
    assert "data.root=" in proc.stderr
    printed = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    # the error and nothing else: no torchvision mirror chatter, no Trainer banner
    assert len(printed) == 1


@pytest.mark.cli
def test_corrupt_idx_is_a_clear_error(tmp_path, synthetic_root):
    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root)
    images = root / "MNIST/raw/train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])
    proc = run_cli("train.py", f"data.root={root}", *FAST, cwd=tmp_path)
    assert_one_line_error(proc, str(images), "truncated or corrupt")


@pytest.mark.cli
def test_missing_ckpt_path_is_one_line_on_the_console(tmp_path, synthetic_root):
    proc = run_cli(
        "train.py", f"data.root={synthetic_root}", "ckpt_path=nope/last.ckpt", *FAST, cwd=tmp_path
    )
    assert_one_line_error(proc, "ckpt_path=nope/last.ckpt does not exist")


@pytest.mark.cli
def test_default_run_dir_and_no_overwrite(tmp_path, synthetic_root):
    proc = run_cli("train.py", f"data.root={synthetic_root}", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run,) = (tmp_path / "outputs" / "runs").iterdir()
    metrics = (run / "metrics.json").read_text()
    config = (run / ".hydra" / "config.yaml").read_text()
    assert f"tensorboard --logdir {run}" in proc.stderr + proc.stdout

    again = run_cli(
        "train.py",
        f"data.root={synthetic_root}",
        "seed=7",
        f"hydra.run.dir={run}",
        *FAST,
        cwd=tmp_path,
    )
    assert_one_line_error(again, "already holds a run")
    assert (run / "metrics.json").read_text() == metrics
    # refused before Hydra wrote anything
    assert (run / ".hydra" / "config.yaml").read_text() == config


@pytest.mark.cli
def test_multirun_gives_each_job_its_own_dir_and_a_summary(tmp_path, synthetic_root):
    proc, sweep = run_sweep(
        tmp_path, "optimizer=adam,sgd", "seed=1,2", f"data.root={synthetic_root}", *FAST
    )
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    seen = set()
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["run_dir"] == str(job)
        overrides = (job / ".hydra" / "overrides.yaml").read_text()
        seen.add(
            tuple(
                line for line in overrides.splitlines() if "optimizer=" in line or "seed=" in line
            )
        )
    assert len(seen) == 4

    with open(sweep / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    assert {r["status"] for r in rows} == {"ok"}
    values = [float(r["val/acc_best"]) for r in rows]
    # best first
    assert values == sorted(values, reverse=True)
    assert {r["run_dir"] for r in rows} == {str(job) for job in jobs}
    # header, rule, 4 rows
    assert (sweep / "summary.md").read_text().count("\n") == 6
    assert "Sweep summary" in proc.stdout

    again = run_cli("train.py", "-m", "seed=1", f"hydra.sweep.dir={sweep}", *FAST, cwd=tmp_path)
    assert_one_line_error(again, "already holds a run")


@pytest.mark.cli
@pytest.mark.parametrize(
    ("body", "status", "stderr"),
    [
        ("pass", 0, ""),
        ("raise SystemExit(3)", 3, ""),
        ("raise SystemExit('error: bad input')", 1, "error: bad input"),
    ],
)
def test_scripts_end_with_their_status_and_everything_written(tmp_path, body, status, stderr):
    log = tmp_path / "log.txt"
    script = (
        "import atexit, logging, sys\n"
        "from mnist_lit.cli import run\n"
        f"logging.basicConfig(filename={str(log)!r}, level=logging.INFO)\n"
        "atexit.register(print, 'exit handlers ran')\n"
        "def main():\n"
        "    sys.stdout.write('buffered output')\n"
        "    logging.info('logged')\n"
        f"    {body}\n"
        "run(main)\n"
        "print('not reached')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == status
    assert proc.stdout == "buffered outputexit handlers ran\n"
    assert proc.stderr.strip() == stderr
    # the log file was flushed and closed
    assert "logged" in log.read_text()


@pytest.mark.cli
def test_a_running_thread_finishes_its_write_before_exit(tmp_path):
    out = tmp_path / "written.txt"
    script = (
        "import threading, time\n"
        "from pathlib import Path\n"
        "from mnist_lit.cli import run\n"
        "def write():\n"
        "    time.sleep(0.5)\n"
        f"    Path({str(out)!r}).write_text('done')\n"
        "run(lambda: threading.Thread(target=write).start())\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == "done"


@pytest.mark.cli
@pytest.mark.parametrize("script", ["train", "evaluate", "predict", "serve", "export"])
def test_an_entry_point_imported_as_a_spawned_worker_imports_it_collects_garbage(script):
    # multiprocessing's spawn (LitServe's model workers, DataLoader workers, DDP ranks) re-imports
    # the main script
    # as __mp_main__: whatever its imports do to the collector stays for the worker's whole life
    spawned = (
        "import gc, runpy\n"
        f"runpy.run_path('{script}.py', run_name='__mp_main__')\n"
        "print(gc.isenabled(), gc.get_freeze_count())\n"
    )
    proc = subprocess.run([sys.executable, "-c", spawned], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "0"]


# what a warning or an advert looks like on the console
NOISE = ("Warning", "warn(", "Tip")


@pytest.mark.cli
def test_default_commands_print_no_warnings(tmp_path, synthetic_root, synthetic_ckpt):
    trained = run_cli("train.py", f"data.root={synthetic_root}", *FAST, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    picture = tmp_path / "digit.png"
    Image.fromarray(make_digits(1, seed=0)[0][0]).save(picture)
    predicted = run_cli("predict.py", f"image={picture}", f"ckpt={synthetic_ckpt}", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    for proc in (trained, predicted):
        output = proc.stdout + proc.stderr
        assert not [word for word in NOISE if word in output], output
