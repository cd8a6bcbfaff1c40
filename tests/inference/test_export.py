"""export.py and the torch-free ONNX path of predict.py and serve.py.  Run: pytest
tests/inference/test_export.py"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mnist_lit import checkpoints
from mnist_lit.data.idx import load_split
from mnist_lit.inference.export import export
from mnist_lit.inference.onnx_model import OnnxModel
from mnist_lit.inference.predictor import Predictor
from mnist_lit.inference.sources import find_images, load_pictures
from mnist_lit.inference.torch_model import Scorer
from tests.conftest import ROOT, approx_answer, real_data_root, run_cli

UNSURE = 0.5
# onnxruntime and torch run the same graph in float32: they differ by rounding only
PROBS_TOL = 1e-4


def run_export(ckpt: Path, out: Path, data: Path) -> subprocess.CompletedProcess:
    """export.py run as a user runs it, from the folder of `out`, with MNIST in `data`."""
    return run_cli(
        "export.py", f"ckpt={ckpt}", f"out={out}", cwd=out.parent, env={"DATA_DIR": str(data)}
    )


@pytest.fixture(scope="module")
def exported(
    synthetic_ckpt: Path, synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """model.onnx of the synthetic checkpoint, written by export.py as a user runs it."""
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    proc = run_export(synthetic_ckpt, out, synthetic_root)
    assert proc.returncode == 0, proc.stderr
    assert "same digit on 160, max abs difference" in proc.stdout
    return out


def draw_pictures(folder: Path) -> Path:
    """Pictures a user might send: a 7, a 1, a 0 on a photo-grey page, the number 47, and a
    scribble."""
    folder.mkdir(parents=True, exist_ok=True)
    strokes = {
        "seven": [[(30, 20), (70, 20), (45, 85)]],
        "one": [[(50, 15), (50, 88)]],
        "zero": [[(50, 15), (75, 50), (50, 88), (25, 50), (50, 15)]],
        "forty_seven": [
            [(30, 15), (15, 60), (50, 60)],
            [(40, 40), (40, 88)],
            [(80, 20), (120, 20), (95, 85)],
        ],
        "scribble": [[(10, 10), (90, 80), (20, 70), (80, 15), (15, 40), (85, 50)]],
    }
    for name, lines in strokes.items():
        img = Image.new("L", (140 if name == "forty_seven" else 100, 100), 235)
        draw = ImageDraw.Draw(img)
        for line in lines:
            draw.line(line, fill=20, width=7, joint="curve")
        img.save(folder / f"{name}.png")
    return folder


def answers_of(model_path: Path, folder: Path) -> list[dict]:
    """predict.py's answer fields for every picture in `folder`, with the model in `model_path`."""
    predictions = load_pictures(find_images(str(folder)).paths, workers=1)
    predictor = Predictor(model_path, device="cpu")
    predictor.fill_answers(predictions, predictor.thresholds("auto", UNSURE))
    return [p.fields() for p in predictions]


def assert_same_answers(ours: list[dict], theirs: list[dict]) -> None:
    """The same verdicts, digits and numbers; probabilities equal up to float rounding."""
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        assert (a["verdict"], a["digit"], a["number"]) == (b["verdict"], b["digit"], b["number"])
        for da, db in zip(a["digits"], b["digits"]):
            assert (da["digit"], da["box"]) == (db["digit"], db["box"])
            np.testing.assert_allclose(da["probs"], db["probs"], atol=PROBS_TOL)


@pytest.mark.cli
def test_the_exported_model_answers_drawn_pictures_as_the_checkpoint_does(
    exported, synthetic_ckpt, tmp_path
):
    folder = draw_pictures(tmp_path / "drawn")
    assert_same_answers(answers_of(exported, folder), answers_of(synthetic_ckpt, folder))


@pytest.mark.cli
@pytest.mark.parametrize("batch", [1, 37])
def test_a_dynamic_batch_gives_torchs_outputs(exported, synthetic_ckpt, batch):
    pixels = np.random.default_rng(batch).random((batch, 1, 28, 28), dtype=np.float32)
    probs, no_digit = OnnxModel(exported, device="cpu").scores(pixels)
    scorer = Scorer.of(checkpoints.read(synthetic_ckpt))
    with torch.inference_mode():
        expected, expected_no_digit = scorer(torch.from_numpy(pixels))
    assert probs.shape == (batch, 10)
    assert no_digit.shape == (batch,)
    np.testing.assert_allclose(probs, expected.numpy(), atol=PROBS_TOL)
    np.testing.assert_allclose(no_digit, expected_no_digit.numpy(), atol=PROBS_TOL)


@pytest.mark.cli
def test_the_metadata_says_what_a_consumer_needs(exported, synthetic_ckpt):
    model = OnnxModel(exported, device="cpu")
    meta, ckpt = model.meta, checkpoints.read(synthetic_ckpt)
    assert json.loads(meta["classes"]) == [str(k) for k in range(10)]
    assert json.loads(meta["normalization"])["mean"] == pytest.approx(0.1307)
    assert json.loads(meta["normalization"])["std"] == pytest.approx(0.3081)
    assert float(meta["temperature"]) == pytest.approx(ckpt["calibration"]["temperature"])
    assert json.loads(meta["not_digit_threshold"]) == pytest.approx(
        ckpt["calibration"]["not_digit"]
    )
    assert json.loads(meta["unsure_gap"]) == 0.5
    assert meta["preprocessing"] == "mnist-lit-1"
    assert model.calibration == checkpoints.calibration(ckpt)


@pytest.mark.cli
def test_export_is_one_file_and_keeps_an_existing_one(exported, synthetic_ckpt, synthetic_root):
    # no .data file beside it
    assert [p.name for p in exported.parent.iterdir()] == ["model.onnx"]
    before = exported.read_bytes()
    proc = run_export(synthetic_ckpt, exported, synthetic_root)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: out={exported} already exists; choose another out= or pass force=true to replace "
        "it"
    ]
    assert exported.read_bytes() == before


TORCH_FREE = """
import json, sys
sys.path.insert(0, {root!r})
from hydra import compose, initialize_config_dir
import predict
from mnist_lit.serving.api import DigitAPI, Item
from mnist_lit.reading.pictures import read_digits
from mnist_lit.inference.predictor import Prediction, Predictor

with initialize_config_dir(version_base="1.3", config_dir={conf!r}):
    cfg = compose("predict", overrides=["image={image}", "ckpt={model}", "format=jsonl"])
try:
    predict.main(cfg)  # Hydra's main runs a given config as it is
except SystemExit as stop:  # predict.py ends with its exit status
    status = stop.code
thresholds = Predictor({model!r}, device="cpu").thresholds("auto", 0.5)  # as predict.py's defaults
api = DigitAPI({model!r}, thresholds, device="cpu", cpu_threads=1)
api.setup("cpu")
served = Prediction.of("", read_digits({image!r}, "auto"))
api.predict([Item(served, send_input=False)])
print(json.dumps({{"status": status, "served": served.fields()["number"],
                  "torch": sorted(m for m in sys.modules if m.split(".")[0] == "torch")}}))
"""


@pytest.mark.cli
def test_predict_and_serve_with_an_onnx_model_never_import_torch(exported, tmp_path):
    image = draw_pictures(tmp_path / "drawn") / "seven.png"
    code = TORCH_FREE.format(
        root=str(ROOT), conf=str(ROOT / "conf"), image=str(image), model=str(exported)
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    *jsonl, last = proc.stdout.strip().splitlines()
    result = json.loads(last)
    assert result["status"] == 0
    # not one torch module was loaded, by predict.py or by the server's model
    assert result["torch"] == []
    assert json.loads(jsonl[0])["number"] == result["served"]


def other_onnx(path: Path) -> Path:
    """An ONNX file that some other project exported: a linear layer over 784 inputs."""
    torch.onnx.export(torch.nn.Linear(784, 10).eval(), (torch.rand(2, 784),), path, dynamo=False)
    return path


@pytest.mark.cli
@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("not_a_checkpoint.ckpt", "is not a readable checkpoint"),
        ("other_model.onnx", "is an ONNX model, but not an mnist-lit digit model"),
        ("not_onnx.onnx", "is not a readable ONNX model"),
    ],
)
def test_a_model_file_that_is_not_ours_is_a_one_line_error(tmp_path, model, message):
    path = tmp_path / model
    if model == "other_model.onnx":
        other_onnx(path)
    else:
        path.write_bytes(b"these are not the weights you are looking for" * 20)
    picture = draw_pictures(tmp_path / "drawn") / "seven.png"
    proc = run_cli("predict.py", f"image={picture}", f"ckpt={path}", cwd=tmp_path)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {path} ")
    assert message in line


@pytest.mark.cli
def test_exporting_a_file_that_is_not_a_checkpoint_is_a_one_line_error(tmp_path, synthetic_root):
    bad = tmp_path / "best.ckpt"
    bad.write_bytes(b"\x00" * 1000)
    proc = run_cli(
        "export.py",
        f"ckpt={bad}",
        f"out={tmp_path}/model.onnx",
        cwd=tmp_path,
        env={"DATA_DIR": str(synthetic_root)},
    )
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "is not a readable checkpoint" in proc.stderr
    assert not (tmp_path / "model.onnx").exists()


@pytest.mark.real_data
def test_a_real_model_exports_with_parity_and_answers_real_digits_alike(real_run, tmp_path):
    images, labels = load_split(real_data_root(), "test")
    parity = export(real_run["best_ckpt"], tmp_path / "model.onnx", images.numpy(), unsure=0.5)
    assert parity.total == parity.same_digit == 10_000
    # the not-a-digit output too, with the feature distance and the shape critic added to it
    assert parity.max_abs_diff <= 1e-4
    # the signals are inside the graph: a picture far from every digit is rejected by the
    # file alone
    stripes = np.zeros((1, 1, 28, 28), np.float32)
    stripes[..., ::3, :] = 1.0
    _, no_digit = OnnxModel(tmp_path / "model.onnx", device="cpu").scores(stripes)
    assert (
        float(no_digit[0])
        > checkpoints.calibration(checkpoints.read(real_run["best_ckpt"])).not_digit
    )
    folder = tmp_path / "real"
    folder.mkdir()
    # MNIST test digits as a user's pictures: dark ink on white, on a larger canvas
    for i in range(40):
        page = Image.new("L", (60, 50), 255)
        page.paste(Image.fromarray(255 - images[i].numpy()), (5 + i % 20, 8 + i % 10))
        page.save(folder / f"{i:02d}_{int(labels[i])}.png")
    ours, theirs = (
        answers_of(tmp_path / "model.onnx", folder),
        answers_of(Path(real_run["best_ckpt"]), folder),
    )
    assert_same_answers(ours, theirs)
    assert (
        np.mean([a["number"] == p.stem[-1] for a, p in zip(ours, sorted(folder.iterdir()))]) >= 0.9
    )


def test_exporting_the_tiny_model_again_gives_its_twin_recorded_answers(tiny, tmp_path):
    images = np.stack(
        [np.asarray(Image.open(p).convert("L").resize((28, 28))) for p in tiny.pictures.iterdir()]
    )
    export(tiny.ckpt, tmp_path / "again.onnx", images, unsure=UNSURE)
    ours = dict(
        zip(
            sorted(p.name for p in tiny.pictures.iterdir()),
            answers_of(tmp_path / "again.onnx", tiny.pictures),
        )
    )
    assert ours == approx_answer(tiny.recorded("onnx"))
