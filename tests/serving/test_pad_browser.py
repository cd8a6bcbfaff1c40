"""The drawing pad in real headless Chromium: draw with pointer events, read the answer the page
shows.

Run: pytest tests/serving/test_pad_browser.py
(needs Debian's chromium: apt-get install -y chromium). Playwright drives the system's Chromium
through `executable_path`: its own browser download needs the internet.
Without Chromium the test is skipped, saying why; with REQUIRE_BROWSER=1 (CI) it fails instead.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest

from mnist_lit.serving.process import Server, multipart, post
from tests.conftest import approx_answer, run_cli

pytestmark = pytest.mark.browser

# how long the page may take to show an answer (the first one warms the worker up)
ANSWER_MS = 30_000


def chromium() -> str:
    """The system Chromium's path; skips (or fails under REQUIRE_BROWSER=1) when there is none."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    reason = (
        "no chromium on PATH: install Debian's (apt-get install -y chromium) "
        "to run the browser test"
    )
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def strokes_of(name: str) -> list[list[tuple[float, float]]]:
    """Pen strokes in the pad's 336 px coordinates, drawn as a person would."""
    if name == "1":
        return [[(175, 60), (165, 280)]]
    if name == "7":
        return [[(95, 75), (245, 75), (150, 285)]]
    if name == "0":
        return [
            [
                (
                    168 + 62 * math.sin(t / 24 * 2 * math.pi),
                    170 - 100 * math.cos(t / 24 * 2 * math.pi),
                )
                for t in range(25)
            ]
        ]
    # a scribble: one looping line wandering across the pad
    steps = [t / 10 for t in range(120)]
    return [
        [
            (
                168 + 110 * math.sin(0.9 * t) + 30 * math.sin(3.1 * t),
                168 + 100 * math.sin(1.3 * t + 1) + 30 * math.cos(2.7 * t),
            )
            for t in steps
        ]
    ]


def draw(page, strokes: list[list[tuple[float, float]]]) -> None:
    """Pen strokes (in the pad's 336 px coordinates) with real pointer events: down, moves, up."""
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 336
    for stroke in strokes:
        (x, y), *rest = stroke
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=4)
        page.mouse.up()


# a 1, then a 7: each stroke asks
SEVENTEEN = [[(85, 110), (80, 230)], [(170, 110), (260, 110), (200, 235)]]
DRAWINGS = {name: strokes_of(name) for name in ("1", "7", "0", "scribble")} | {"17": SEVENTEEN}


def answer_after(page, action, answers: int = 1) -> dict:
    """Run `action` (a drawing) and return the answer the page shows for it, with its
    pointer-up-to-screen ms."""
    before = int(page.evaluate("Number(document.body.dataset.answers || 0)"))
    action()
    page.wait_for_function(
        f"Number(document.body.dataset.answers || 0) >= {before + answers}", timeout=ANSWER_MS
    )
    return page.evaluate("window.lastAnswer")


PNG_START, PNG_END = b"\x89PNG", b"IEND\xaeB`\x82"


def posted_png(body: bytes) -> bytes:
    """The PNG file inside the multipart body the pad posted."""
    start = body.index(PNG_START)
    return body[start : body.index(PNG_END, start) + len(PNG_END)]


@pytest.mark.server
def test_what_the_pad_shows_is_what_the_api_predict_and_the_onnx_twin_answer(tiny, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    server = Server(tiny.ckpt, tmp_path, "workers_per_device=1")
    drawn, shown = tmp_path / "drawn", {}
    drawn.mkdir()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 900, "height": 700})
            sent: list[bytes] = []
            page.route(
                "**/predict",
                lambda route: (sent.append(route.request.post_data_buffer), route.continue_()),
            )
            page.goto(server.url + "/")
            for name, strokes in DRAWINGS.items():
                # one stroke at a time: the page drops an answer that a newer stroke's overtook
                for stroke in strokes:
                    answer = answer_after(page, lambda s=stroke: draw(page, [s]))
                page.screenshot(path=str(tmp_path / f"pad-{name}.png"))
                on_screen = page.locator("#digit").inner_text().strip()
                expected = answer["number"] if len(answer["digits"]) > 1 else answer["digit"]
                assert on_screen == ("–" if expected is None else str(expected)), answer
                assert (
                    page.locator("#seen").get_attribute("src")
                    == "data:image/png;base64," + answer["input"]
                )
                png = posted_png(sent[-1])
                (drawn / f"{name}.png").write_bytes(png)
                status, api = post(server.url + "/predict", *multipart(png, input="1"))
                assert status == 200
                assert {k: v for k, v in answer.items() if k not in ("status", "ms")} == api
                shown[name] = {k: v for k, v in api.items() if k != "input"}
                page.click("#clear")
            browser.close()
    finally:
        server.stop()
    proc = run_cli(
        "predict.py", f"image={drawn}", f"ckpt={tiny.ckpt}", "format=jsonl", cwd=tmp_path
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    got = {Path(line.pop("image")).stem: line for line in lines}
    assert approx_answer(got) == shown
    twin = run_cli(
        "predict.py", f"image={drawn}", f"ckpt={tiny.onnx}", "format=jsonl", cwd=tmp_path
    )
    lines = [json.loads(line) for line in twin.stdout.splitlines()]
    got = {Path(line.pop("image")).stem: line for line in lines}
    assert approx_answer(got) == shown


@pytest.mark.server
def test_the_pad_asks_once_for_the_key_of_a_server_that_has_one(tiny, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    key = "a-long-enough-pad-key-0123456789"
    server = Server(tiny.ckpt, tmp_path, f"api_key={key}", "workers_per_device=1")
    asked = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept(key)))
            page.goto(server.url + "/")
            for _ in range(2):
                answer = answer_after(page, lambda: draw(page, strokes_of("1")))
                # answered with the key, not a 401
                assert "error" not in answer, answer
                page.click("#clear")
            browser.close()
    finally:
        server.stop()
    # kept for the session after the first time
    assert len(asked) == 1
    assert "API key" in asked[0]
