"""The drawing pad in real headless Chromium: draw with pointer events, read the answer the page shows.

Run: pytest tests/serving/test_pad_browser.py   (needs Debian's chromium: apt-get install -y chromium)
Playwright drives the system's Chromium through `executable_path`: its own browser download needs the internet.
Without Chromium the test is skipped, saying why; with REQUIRE_BROWSER=1 (CI) it fails instead.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest

from mnist_lit.serving.process import Server

pytestmark = pytest.mark.browser

ANSWER_MS = 30_000  # how long the page may take to show an answer (the first one warms the worker up)


def chromium() -> str:
    """The system Chromium's path; skips (or fails under REQUIRE_BROWSER=1) when there is none."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    reason = "no chromium on PATH: install Debian's (apt-get install -y chromium) to run the browser test"
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
            [(168 + 62 * math.sin(t / 24 * 2 * math.pi), 170 - 100 * math.cos(t / 24 * 2 * math.pi)) for t in range(25)]
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


SEVENTEEN = [[(85, 110), (80, 230)], [(170, 110), (260, 110), (200, 235)]]  # a 1, then a 7: each stroke asks


def answer_after(page, action, answers: int = 1) -> dict:
    """Run `action` (a drawing) and return the answer the page shows for it, with its pointer-up-to-screen ms."""
    before = int(page.evaluate("Number(document.body.dataset.answers || 0)"))
    action()
    page.wait_for_function(f"Number(document.body.dataset.answers || 0) >= {before + answers}", timeout=ANSWER_MS)
    return page.evaluate("window.lastAnswer")


@pytest.mark.real_data
@pytest.mark.server
def test_drawing_1_7_0_then_17_and_a_scribble_on_the_pad(real_run, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    server = Server(Path(real_run["best_ckpt"]), tmp_path)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.goto(server.url + "/")
            timings = []
            for digit in ("1", "7", "0"):
                answer = answer_after(page, lambda d=digit: draw(page, strokes_of(d)))
                assert page.locator("#digit").inner_text() == digit, answer
                assert answer["verdict"] in ("digit", "unsure")
                assert page.locator("#seen").get_attribute("src").startswith("data:image/png;base64,")
                timings.append(answer["ms"])
                page.screenshot(path=str(tmp_path / f"pad-{digit}.png"))
                page.click("#clear")
                assert page.locator("#digit").inner_text().strip() == ""
            answer = answer_after(page, lambda: draw(page, SEVENTEEN), answers=2)  # one per stroke
            page.screenshot(path=str(tmp_path / "pad-17.png"))
            assert page.locator("#digit").inner_text() == "17", answer
            assert len(answer["digits"]) == 2
            page.click("#clear")
            answer = answer_after(page, lambda: draw(page, strokes_of("scribble")))
            page.screenshot(path=str(tmp_path / "pad-scribble.png"))
            assert answer["verdict"] == "not a digit", answer
            assert "not a digit" in page.locator("#verdict").inner_text()
            browser.close()
    finally:
        server.stop()
    print(f"pointer-up to answer on screen: {', '.join(f'{ms:.0f} ms' for ms in timings)}")


@pytest.mark.server
def test_the_pad_asks_once_for_the_key_of_a_server_that_has_one(synthetic_ckpt, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    key = "a-long-enough-pad-key-0123456789"
    server = Server(synthetic_ckpt, tmp_path, f"api_key={key}", "workers_per_device=1")
    asked = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept(key)))
            page.goto(server.url + "/")
            for _ in range(2):
                answer = answer_after(page, lambda: draw(page, strokes_of("1")))
                assert "error" not in answer, answer  # answered with the key, not a 401
                page.click("#clear")
            browser.close()
    finally:
        server.stop()
    assert len(asked) == 1  # kept for the session after the first time
    assert "API key" in asked[0]
