"""The draw-a-digit page: its HTTP API, and digits drawn on its canvas in a real (headless) Chromium."""

from __future__ import annotations

import base64
import io
import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from conftest import REPO, needs_tool, quick_checkpoint
from drawn_digits import STROKES, render
from PIL import Image

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CANVAS = 280


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(checkpoint: Path, run_dir: Path) -> Iterator[str]:
    """`python demo.py` in a subprocess, as a user starts it; yields its URL once it answers."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PROJECT_ROOT": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, str(REPO / "demo.py"), f"ckpt_path={checkpoint}", f"port={port}", f"hydra.run.dir={run_dir}"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the demo never answered"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def quick_demo(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("demo")
    yield from serve(quick_checkpoint(folder / "model.ckpt", synthetic_data_dir, "model=cnn"), folder / "run")


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_page_is_self_contained(quick_demo: str) -> None:
    page = httpx.get(quick_demo).text
    assert '<canvas id="pad"' in page and 'id="clear"' in page and 'id="bars"' in page
    assert "http://" not in page and "https://" not in page, "works offline: no assets from the internet"


def test_predict_answers_probabilities_and_the_image_the_model_saw(quick_demo: str) -> None:
    answer = httpx.post(quick_demo + "predict", content=png(render(4))).json()
    assert len(answer["probabilities"]) == 10 and abs(sum(answer["probabilities"]) - 1) < 1e-3
    assert answer["prediction"] == max(range(10), key=lambda d: answer["probabilities"][d])
    header, data = answer["image"].split(",", 1)
    assert header == "data:image/png;base64"
    assert Image.open(io.BytesIO(base64.b64decode(data))).size == (28, 28)


def test_bad_uploads_get_a_clear_answer(quick_demo: str) -> None:
    junk = httpx.post(quick_demo + "predict", content=b"not a picture")
    assert junk.status_code == 400 and junk.json()["error"] == "not an image (Pillow cannot read it)"
    blank = httpx.post(quick_demo + "predict", content=png(Image.new("L", (280, 280), 255)))
    assert blank.status_code == 200 and blank.json()["blank"] is True
    huge = httpx.post(quick_demo + "predict", content=b"x" * 5_000_001)
    assert huge.status_code == 413
    bomb = httpx.post(quick_demo + "predict", content=png(Image.new("L", (5000, 5000), 255)))
    assert bomb.status_code == 400 and "image too large" in bomb.json()["error"]


def chrome() -> WebDriver:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1100,800"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def draw(driver: WebDriver, canvas: WebElement, digit: int) -> None:
    """The digit's strokes as real pointer events: press, move in small steps, release."""
    from selenium.webdriver.common.action_chains import ActionChains

    for stroke in STROKES[digit]:
        points = [(round((x - 0.5) * CANVAS), round((y - 0.5) * CANVAS)) for x, y in stroke]
        actions = ActionChains(driver, duration=5)
        actions.move_to_element_with_offset(canvas, *points[0]).click_and_hold()
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            steps = max(1, round(max(abs(x1 - x0), abs(y1 - y0)) / 8))
            for step in range(1, steps + 1):
                dx = round(x0 + (x1 - x0) * step / steps) - round(x0 + (x1 - x0) * (step - 1) / steps)
                dy = round(y0 + (y1 - y0) * step / steps) - round(y0 + (y1 - y0) * (step - 1) / steps)
                actions.move_by_offset(dx, dy)
        actions.release().perform()


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.xdist_group("default_cnn")
def test_digits_drawn_in_a_real_browser_are_recognised(default_cnn_checkpoint: Path, tmp_path: Path) -> None:
    needs_tool(CHROMIUM, "Chromium")
    needs_tool(CHROMEDRIVER, "ChromeDriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    for url in serve(default_cnn_checkpoint, tmp_path / "run"):
        driver = chrome()
        try:
            driver.get(url)
            canvas, prediction = driver.find_element(By.ID, "pad"), driver.find_element(By.ID, "prediction")
            read: dict[int, str] = {}
            for digit in (2, 3, 4, 7, 8):
                driver.find_element(By.ID, "clear").click()
                draw(driver, canvas, digit)
                # the page asks again after the pen lifts; the answer to that last request is the one to read
                time.sleep(0.5)
                WebDriverWait(driver, 20).until(lambda d: d.execute_script("return !pending && !dirty"))
                read[digit] = prediction.text
                driver.save_screenshot(str(tmp_path / f"demo_{digit}.png"))
            bars = [float(b.text.rstrip("%")) for b in driver.find_elements(By.CSS_SELECTOR, ".bar .pct")]
        finally:
            driver.quit()
    assert len(bars) == 10 and abs(sum(bars) - 100) < 1
    assert (tmp_path / "demo_8.png").stat().st_size > 10_000, "a screenshot of the page"
    correct = [digit for digit, text in read.items() if text == str(digit)]
    assert len(correct) >= 4, f"read {read}"
