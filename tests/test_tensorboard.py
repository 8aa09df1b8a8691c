"""What TensorBoard shows for a sweep, read in a real (headless) Chromium: runs named by their swept
values, the curves without noise cards, and an HPARAMS tab with the swept parameter as its column."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from browser import CHROMEDRIVER, CHROMIUM, chrome
from conftest import assert_ok, needs_tool, run_cli
from test_reports import FAST

from mnist_classifier.reports.tensorboard_link import FIRST_CARDS, TENSORBOARD_PORT, timeseries_link
from mnist_classifier.runtime.run_identity import swept_values
from mnist_classifier.serving.load_test import free_port

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

# `TENSORBOARD_SCREENSHOT=docs/tensorboard_sweep.png pytest tests/test_tensorboard.py` refreshes the README's picture
SCREENSHOT = os.environ.get("TENSORBOARD_SCREENSHOT")
LRS = ("0.01", "0.05")


@pytest.fixture(scope="module")
def sweep(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 2-job grid over the learning rate (tiny dense net, 5 epochs of 10 steps): its dir and printed output."""
    sweep_dir = tmp_path_factory.mktemp("multiruns") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    result = run_cli(
        "train.py", "-m", f"model.optimizer.lr={','.join(LRS)}", "model=dense", "model.net.hidden_sizes=[64]",
        f"data.data_dir={synthetic_data_dir}", "data.val_size=100", "data.batch_size=50", "trainer.max_epochs=5",
        "trainer.log_every_n_steps=5", "reports=sweep", *FAST, f"hydra.sweep.dir={sweep_dir}",
    )  # fmt: skip
    assert_ok(result)
    return sweep_dir, result.stdout


def test_sweep_jobs_are_named_by_their_swept_values(sweep: tuple[Path, str]) -> None:
    sweep_dir, _ = sweep
    for job, lr in enumerate(LRS):
        (run,) = (sweep_dir / str(job) / "tensorboard").iterdir()
        assert run.name == f"train dense lr={lr} {sweep_dir.name}", "task, model, swept value, timestamp"


def test_a_single_run_is_named_by_its_overrides(tmp_path: Path) -> None:
    from test_configs import compose_train

    typed = ["logger=many_loggers", "model=dense", "seed=3", "model.optimizer.lr=0.01", f"data.data_dir={tmp_path}",
             "callbacks.progress_bar=null", "hydra.run.dir=/logs/train/runs/2026-12-01_08-27-44_637137"]  # fmt: skip
    cfg = compose_train(*typed)
    assert cfg.logger.tensorboard.version == "train dense seed=3 lr=0.01 2026-12-01_08-27-44"
    assert cfg.logger.mlflow.run_name == cfg.logger.wandb.name == cfg.logger.tensorboard.version
    assert swept_values(cfg) is None, "a single run's HPARAMS has all its settings"


def test_an_evaluation_is_named_by_the_runs_of_its_checkpoints() -> None:
    """eval.py of any run's last.ckpt, or of an ensemble, was `eval ckpt=last`: which run's, not said."""
    from test_configs import compose_train

    runs = ["/logs/train/runs/2026-12-01_08-27-44_637137", "/logs/train/runs/slurm-77"]
    here = "hydra.run.dir=/logs/eval/runs/2026-12-01_10-00-00_000000"
    single = compose_train(f"ckpt_path={runs[0]}/checkpoints/epoch_001.ckpt", here, config="eval")
    assert single.logger.tensorboard.version == "eval ckpt=2026-12-01_08-27-44_epoch_001 2026-12-01_10-00-00"
    ensemble = compose_train(f"ckpt_path=[{runs[0]}/checkpoints/epoch_001.ckpt,{runs[1]}/checkpoints/last.ckpt]",
                             here, config="eval")  # fmt: skip
    assert ensemble.logger.tensorboard.version == (
        "eval ckpt=2026-12-01_08-27-44_epoch_001+slurm-77_last 2026-12-01_10-00-00"
    )


@pytest.fixture(scope="module")
def tensorboard(sweep: tuple[Path, str]) -> Iterator[str]:
    """The command the sweep summary printed, started on a free local port; yields its URL."""
    sweep_dir, stdout = sweep
    command = f"tensorboard --logdir {shlex.quote(str(sweep_dir))}"
    assert f"Compare the jobs in TensorBoard: {command}" in stdout
    assert f"then open {timeseries_link()}" in stdout
    summary = (sweep_dir / "summary.md").read_text()
    assert command in summary and timeseries_link() in summary
    port = free_port()
    executable = Path(sys.executable).with_name("tensorboard")
    process = subprocess.Popen(
        [str(executable), *shlex.split(command)[1:], "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "TensorBoard never answered"
        try:
            if len(httpx.get(url + "data/runs", timeout=1).json()) == len(LRS):
                break
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.3)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def card_titles(driver: WebDriver) -> set[str]:
    from selenium.webdriver.common.by import By

    """The tags of the cards on screen (cards filtered away stay in the page, hidden)."""
    cards = driver.find_elements(By.CSS_SELECTOR, "tb-truncated-path.tag")
    return {card.get_attribute("title") or "" for card in cards if card.is_displayed()}


def test_tensorboard_in_a_browser_compares_the_sweep(tensorboard: str, sweep: tuple[Path, str], tmp_path: Path) -> None:
    needs_tool(CHROMIUM, "Chromium")
    needs_tool(CHROMEDRIVER, "ChromeDriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    sweep_dir, _ = sweep
    runs = [f"{job}/tensorboard/train dense lr={lr} {sweep_dir.name}" for job, lr in enumerate(LRS)]
    driver = chrome()
    driver.set_window_size(1280, 900)
    try:
        wait = WebDriverWait(driver, 30)
        # the link the summary printed, on this TensorBoard's port
        printed = timeseries_link().replace(f"localhost:{TENSORBOARD_PORT}/", tensorboard.removeprefix("http://"))
        driver.get(printed)
        wait.until(lambda d: all(run in d.find_element(By.TAG_NAME, "body").text for run in runs))
        groups = [g.get_attribute("title") for g in driver.find_elements(By.CSS_SELECTOR, ".group-title[title]")]
        assert groups == ["test", "train", "val"], "no `epoch` card, no `hparams/` copies of the test metrics"
        pinned = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "metrics-pinned-view tb-truncated-path.tag"))
        first = [card.get_attribute("title") for card in driver.find_elements(By.CSS_SELECTOR, "tb-truncated-path.tag")]
        assert [card.get_attribute("title") for card in pinned] == list(FIRST_CARDS) == first[: len(FIRST_CARDS)]
        # cards render when scrolled to: the tag filter brings the ones to check on screen
        tag_filter = driver.find_element(By.CSS_SELECTOR, ".tag-filter input")
        asked = {"train/loss", "val/acc", "epoch"}
        tag_filter.send_keys(f"^({'|'.join(asked)})$")
        cards = wait.until(lambda d: (shown := card_titles(d)) <= asked and len(shown) >= 2 and shown)
        assert cards == {"train/loss", "val/acc"}, cards
        tag_filter.send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)
        # the picture in the README: the printed link's view, the training curves of both runs pinned first
        tag_filter.send_keys(Keys.ESCAPE)
        driver.execute_script("document.activeElement.blur()")  # no autocomplete list over the cards
        driver.find_element(By.XPATH, "//button[contains(., 'Settings')]").click()  # the side pane closed
        time.sleep(2)  # the line charts draw after their cards
        driver.save_screenshot(str(tmp_path / "timeseries.png"))

        driver.get(tensorboard + "#hparams")
        wait.until(lambda d: all(run in d.find_element(By.TAG_NAME, "body").text for run in runs))
        text = driver.find_element(By.TAG_NAME, "body").text
    finally:
        driver.quit()
    assert "model.optimizer.lr" in text and "val/acc_best" in text and "test/acc" in text
    assert "model.net" not in text and "data.batch_size" not in text, "the swept parameter only, not every setting"
    assert (tmp_path / "timeseries.png").stat().st_size > 20_000
    if SCREENSHOT:
        from PIL import Image

        with Image.open(tmp_path / "timeseries.png") as image:  # a small PNG for the README
            image.convert("RGB").quantize(64).save(SCREENSHOT, optimize=True)


def test_an_optuna_trial_is_named_by_its_search_space_values() -> None:
    from test_configs import compose_train

    cfg = compose_train("hparams_search=cnn_optuna", "hydra.mode=MULTIRUN", "trainer.max_epochs=1",
                        "model.optimizer.lr=0.0031622776601683794", "data.batch_size=64")  # fmt: skip
    assert cfg.logger.tensorboard.version.startswith("train cnn lr=0.003162 batch_size=64 "), "max_epochs: not searched"
    assert swept_values(cfg) == {"model.optimizer.lr": 0.0031622776601683794, "data.batch_size": 64}
