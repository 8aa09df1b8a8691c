"""Speed and recipe benchmark: `python benchmarks/run.py` (or `make benchmark`). Prints a markdown table,
writes JSON.

Everything is measured in one run, side by side, on this machine:
  1. data pipeline images/s: our in-memory batches vs torchvision's per-item PIL path;
  2. one training epoch through train.py's Trainer vs a plain PyTorch loop (same net, optimizer,
     schedule, precision, batches), for both recipes, taken in turns in one train.py process
     (plain_loop.py); medians of the warm epochs on each side;
  3. CNN step time with channels_last / bf16 autocast / torch.compile switched on and off;
  4. where the time of a default `python train.py` goes, stage by stage (StageTimer);
  5. predict.py end to end on folders of pictures (images/s);
  6. serve.py under load: 32 clients sending single drawn digits to an ONNX model and to a checkpoint
     (predictions/s, latency, /health during the load, server memory);
  7. the recipes end to end, as users run them: seeds 0-4 of both default recipes (automatic precision
     and 32-true) and the short runs and batch sizes they type first. A run that fails gets a row that
     says so; the benchmark goes on;
  8. with `--experiments` (minutes each): every experiment on seeds 0-2, and those three runs as one
     ensemble through `eval.py "ckpt_path=[...]"`; `--experiment NAME` runs the named ones alone.

`--cpu-kinds` runs sections 2, 3, 4, 7 and 8 twice, in fresh processes one after the other: natively and
with torch capped to an AVX2 CPU's kernels (no native bf16), a column each. `--only NAME` runs the named
sections alone (say `--only experiments --experiments`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(REPO))

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from mnist_classifier.data.in_memory import MNIST_MEAN, MNIST_STD  # noqa: E402
from mnist_classifier.runtime.resolvers import register_resolvers  # noqa: E402
from mnist_classifier.utils.threads import usable_cores  # noqa: E402

register_resolvers()
Row = tuple[str, str, str]
SEEDS = (0, 1, 2, 3, 4)
EXPERIMENT_SEEDS = (0, 1, 2)  # issue 23's seeds for the experiments, and the members of their ensemble
PAIRED_EPOCHS = 4  # Trainer and plain-loop epochs taken in turns; the first of each warms up


def recipes(group: str) -> list[str]:
    """The recipes of a config group (model, experiment), found by listing configs/: a new one is measured too."""
    return sorted(path.stem for path in (REPO / "configs" / group).glob("*.yaml"))


def compose_train(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def run_script(script: str, run_dir: Path, *arguments: str) -> dict[str, Any]:
    """Run train.py or eval.py as a user would, its run dir at `run_dir`. Returns the wall time and
    metrics.json, or {"error": ...} with the end of what the run printed."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "benchmarks"), "BENCH_T0": repr(time.time())}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(REPO / script), f"hydra.run.dir={run_dir}", *arguments],
                            check=False, env=env, capture_output=True, text=True, cwd=REPO)  # fmt: skip
    wall = time.perf_counter() - start
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    if result.returncode != 0 or metrics.get("status") != "ok":
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        reason = metrics.get("error") or (lines[-1] if lines else f"exit {result.returncode}")
        return {"error": f"exit {result.returncode}: {reason[-300:]}", "wall_s": wall}
    return {"wall_s": wall, "metrics": metrics}


def run_train(data_dir: str, *overrides: str, keep_in: Path | None = None) -> dict[str, Any]:
    """Run train.py as a user would (default callbacks, logger and reports), with StageTimer attached.
    Returns the timings and metrics.json, or {"error": ...}. The run dir is thrown away, unless `keep_in`
    names a folder to keep it in (its checkpoint is needed later)."""
    with tempfile.TemporaryDirectory() as tmp:
        timer_out = Path(tmp) / "timer.json"
        run = run_script("train.py", (keep_in or Path(tmp)) / "run", f"data.data_dir={data_dir}",
                         "+callbacks.stage_timer._target_=stage_timer.StageTimer",
                         f"+callbacks.stage_timer.out={timer_out}", *overrides)  # fmt: skip
        return run if "error" in run else {**run, **json.loads(timer_out.read_text())}


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "CPU"


def bench_data(data_dir: str, batches: int) -> dict[str, float]:
    """images/s of a training loader: ours (one indexing op a batch) vs torchvision's per-item path."""
    from torch.utils.data import DataLoader
    from torchvision import transforms
    from torchvision.datasets import MNIST

    dm = instantiate(compose_train(f"data.data_dir={data_dir}", "data.batch_size=128").data)
    dm.prepare_data()
    dm.setup("fit")
    ours = dm.train_dataloader()
    reference = DataLoader(
        MNIST(
            data_dir,
            train=True,
            transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]),
        ),
        batch_size=128,
        shuffle=True,
        num_workers=0,
    )
    rates = {}
    for name, loader in (("in-memory (ours)", ours), ("torchvision per-item", reference)):
        seen, start = 0, time.perf_counter()
        for i, (images, _) in enumerate(loader):
            seen += len(images)
            if i + 1 == batches:
                break
        rates[name] = seen / (time.perf_counter() - start)
    return rates


def section_data(args: argparse.Namespace, report: dict[str, Any]) -> list[Row]:
    rates = bench_data(args.data_dir, batches=200)
    report["data_images_per_s"] = rates
    ours, ref = rates["in-memory (ours)"], rates["torchvision per-item"]
    return [
        ("data pipeline, images/s (batch 128)", f"ours {ours:,.0f} vs torchvision {ref:,.0f}", f"{ours / ref:.0f}x")
    ]


# The Trainer's cost per step, taken apart: each row leaves out one more layer of it (JSON key, row, overrides)
NO_CALLBACKS = ["callbacks=none", "reports=none", "logger=none"]
TRAINER_LAYERS: tuple[tuple[str, str, list[str]], ...] = (
    ("", "Trainer vs plain loop", []),
    ("_no_callbacks", "Trainer without the run's callbacks, logger and progress bar", NO_CALLBACKS),
    ("_lightning_loop", "Lightning's loop alone (no callbacks, and a module without metric updates or logging)",
     [*NO_CALLBACKS, "model._target_=bare_module.BareClassifier"]),
)  # fmt: skip


def section_epochs(args: argparse.Namespace, report: dict[str, Any]) -> list[Row]:
    """The shipped recipes through the Trainer, each training epoch followed by one epoch of the same step
    as a plain loop in the same process (plain_loop.py): the Trainer's cost per step (Lightning's loop and
    hooks, the module's metric updates) is fixed, about a millisecond here, so the ratio depends on how much
    work a step holds. Medians of the warm epochs on each side. Two more runs take that cost apart
    (TRAINER_LAYERS): without the callbacks, logger and progress bar a run has, then also without the
    module's per-step metric updates and logging, which leaves Lightning's own loop."""
    rows = []
    for name in recipes("model"):
        for key, layer, overrides in TRAINER_LAYERS:
            label = f"{name}: training epoch, {layer}"
            with tempfile.TemporaryDirectory() as tmp:
                plain_out = Path(tmp) / "plain.json"
                run = run_train(args.data_dir, f"model={name}", f"trainer.max_epochs={PAIRED_EPOCHS}", "test=false",
                                *overrides, "+callbacks.plain_loop._target_=plain_loop.InterleavedPlainLoop",
                                f"+callbacks.plain_loop.out={plain_out}")  # fmt: skip
                if "error" in run:
                    rows.append((label, "failed", run["error"]))
                    continue
                plain = json.loads(plain_out.read_text())
            trainer_epoch, plain_epoch = (
                statistics.median(epochs[1:]) for epochs in (run["epoch_s"], plain["epoch_s"])
            )
            steps = plain["steps"]
            overhead_ms = 1000 * (trainer_epoch - plain_epoch) / steps
            report[f"epoch_{name}{key}"] = {"trainer_s": run["epoch_s"], "plain_s": plain["epoch_s"], "steps": steps,
                                            "overhead_ms_per_step": overhead_ms}  # fmt: skip
            rows.append(
                (
                    label,
                    f"{trainer_epoch:.2f} s vs {plain_epoch:.2f} s ({steps} steps, {overhead_ms:+.2f} ms/step)",
                    f"{trainer_epoch / plain_epoch:.2f}x",
                )
            )
    return rows


def section_variants(args: argparse.Namespace, report: dict[str, Any]) -> list[Row]:
    variants = {
        "fp32": ["trainer.precision=32-true", "model.channels_last=false"],
        "fp32 + channels_last": ["trainer.precision=32-true", "model.channels_last=true"],
        "bf16-mixed": ["trainer.precision=bf16-mixed", "model.channels_last=false"],
        "bf16-mixed + channels_last": ["trainer.precision=bf16-mixed", "model.channels_last=true"],
    }
    if not args.skip_compile:
        variants["bf16-mixed + channels_last + compile"] = [
            *variants["bf16-mixed + channels_last"],
            "model.compile=true",
        ]
    steps, rows = 100, []
    report["cnn_variants_ms_per_step"] = {}
    for name, overrides in variants.items():
        run = run_train(args.data_dir, "model=cnn", "trainer.max_epochs=2", f"trainer.limit_train_batches={steps}",
                        "trainer.limit_val_batches=1", "test=false", *overrides)  # fmt: skip
        if "error" in run:
            rows.append((f"cnn step time, {name}", "failed", run["error"]))
            continue
        warm, first = run["epoch_s"][1], run["epoch_s"][0]
        report["cnn_variants_ms_per_step"][name] = 1000 * warm / steps
        extra = f"first epoch +{first - warm:.1f} s" if "compile" in name else ""
        rows.append((f"cnn step time (batch 256), {name}", f"{1000 * warm / steps:.1f} ms", extra))
    return rows


STAGES = (  # (from, to, what happens between)
    ("launch", "built", "start-up: Python, imports, config, data module, model, trainer"),
    ("built", "first_step", "data loading, sanity check"),
    ("first_step", "fit_end", "training and validation"),
    ("fit_end", "test_end", "test (10k images, best checkpoint)"),
    ("test_end", "reports_done", "reports: figures, classification report, TensorBoard"),
    ("reports_done", "exit", "summary, metrics.json, process exit"),
)


def section_stages(args: argparse.Namespace, report: dict[str, Any]) -> list[Row]:
    """Where the seconds of a default `python train.py` go."""
    run = run_train(args.data_dir)
    if "error" in run:
        return [("`python train.py` stages", "failed", run["error"])]
    marks = {"launch": 0.0, **run["marks"], "exit": run["wall_s"]}
    report["stages_s"] = {to: marks[to] - marks[start] for start, to, _ in STAGES}
    return [(f"`python train.py` stage: {what}", f"{marks[to] - marks[start]:.2f} s", "") for start, to, what in STAGES]


def test_accuracies(runs: list[dict[str, Any]]) -> list[Any]:
    """For the JSON report: each run's test accuracy, or its error."""
    return [run.get("metrics", {}).get("test/acc", run.get("error")) for run in runs]


def seed_row(label: str, runs: list[dict[str, Any]], seeds: tuple[int, ...] = SEEDS) -> Row:
    """One row for several seeds: min/mean test accuracy and wall time, or what failed."""
    failed = [f"seed {seed}: {run['error']}" for seed, run in zip(seeds, runs, strict=True) if "error" in run]
    done = [run for run in runs if "error" not in run]
    if not done:
        return (label, "failed", "; ".join(failed))
    accuracies = [100 * run["metrics"]["test/acc"] for run in done]
    walls = [run["wall_s"] for run in done]
    result = f"test acc min {min(accuracies):.2f}% / mean {statistics.mean(accuracies):.2f}%"
    note = f"wall {min(walls):.1f}-{max(walls):.1f} s (mean {statistics.mean(walls):.1f})"
    return (label, result, note + (f"; {len(failed)} failed: {'; '.join(failed)}" if failed else ""))


def section_recipes(args: argparse.Namespace, report: dict[str, Any]) -> list[Row]:
    """The recipes as users run them; failures (a NaN, a crash) are rows, not the end of the benchmark."""
    rows: list[Row] = []
    runs: dict[str, list[dict[str, Any]]] = {}

    def measure(label: str, overrides: list[str], seeds: tuple[int, ...] = (12345,)) -> None:
        results = [run_train(args.data_dir, *overrides, f"seed={seed}") for seed in seeds]
        runs[label] = results
        rows.append(seed_row(label, results, seeds))
        print(rows[-1], flush=True)

    for model in recipes("model"):
        command = "python train.py" + ("" if model == "cnn" else f" model={model}")
        measure(f"`{command}`, seeds 0-4", [f"model={model}"], SEEDS)
        if report["precision"] != "32-true":  # else the same runs again
            measure(f"`{command} trainer.precision=32-true`, seeds 0-4",
                    [f"model={model}", "trainer.precision=32-true"], SEEDS)  # fmt: skip
    for overrides in (["model=cnn", "trainer.max_epochs=1"], ["model=dense", "trainer.max_epochs=3"],
                      ["model=dense", "trainer.max_epochs=1"], ["model=cnn", "data.batch_size=64"],
                      ["model=cnn", "data.batch_size=1024"], ["model=dense", "data.batch_size=64"],
                      ["model=dense", "data.batch_size=1024"]):  # fmt: skip
        measure(f"`python train.py {' '.join(overrides)}`", overrides)
    report["recipes"] = {label: test_accuracies(results) for label, results in runs.items()}
    return rows


def section_experiments(args: argparse.Namespace, report: dict[str, Any]) -> list[Row]:
    """Every experiment on seeds 0-2, whole process as users run it, then those three checkpoints as one
    ensemble: `eval.py "ckpt_path=[...]"` averages their probabilities (issue 23)."""
    rows: list[Row] = []
    for name in args.experiment or recipes("experiment"):
        with tempfile.TemporaryDirectory() as keep:
            runs = [run_train(args.data_dir, f"experiment={name}", f"seed={seed}", keep_in=Path(keep) / str(seed))
                    for seed in EXPERIMENT_SEEDS]  # fmt: skip
            rows.append(seed_row(f"`python train.py experiment={name}`, seeds 0-2", runs, EXPERIMENT_SEEDS))
            print(rows[-1], flush=True)
            report[name] = test_accuracies(runs)
            if any("error" in run for run in runs):
                continue
            members = ",".join(run["metrics"]["ckpt_path"] for run in runs)
            ensemble = run_script("eval.py", Path(keep) / "ensemble", f"data.data_dir={args.data_dir}",
                                  f"ckpt_path=[{members}]")  # fmt: skip
        label = f"`eval.py` of the {name} runs above as one ensemble"
        if "error" in ensemble:
            rows.append((label, "failed", ensemble["error"]))
        else:
            report[f"{name}_ensemble"] = ensemble["metrics"]["test/acc"]
            rows.append((label, f"test acc {100 * ensemble['metrics']['test/acc']:.2f}%",
                         f"wall {ensemble['wall_s']:.1f} s"))  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def preprocess_rows(digits: Any, report: dict[str, Any]) -> list[Row]:
    """`preprocess=mnist` (data/mnist_style.py) alone, per picture, best of 3 rounds: what predict.py and
    serve.py spend on each picture before the model sees it."""
    import numpy as np
    from drawn_digits import STROKES, render
    from photo_digits import photo_like

    from mnist_classifier.data.mnist_style import mnist_style

    rng = np.random.default_rng(0)
    kinds = {
        "1,000 MNIST test digits, 28x28": [digit / np.float32(255) for digit in digits[:1_000]],
        "10 hand-drawn digits, 200x200": [np.asarray(render(digit), np.float32) / 255 for digit in STROKES],
        "200 photo-like pictures, 110-550 px": [
            np.asarray(photo_like(digit, rng).convert("L"), np.float32) / 255 for digit in digits[:200]
        ],
    }
    rows: list[Row] = []
    for label, pictures in kinds.items():
        seconds = []
        for _ in range(3):
            start = time.perf_counter()
            for gray in pictures:
                mnist_style(gray)
            seconds.append((time.perf_counter() - start) / len(pictures))
        report.setdefault("preprocess_ms", {})[label] = min(seconds) * 1e3
        rows.append((f"`preprocess=mnist`, {label}", f"{min(seconds) * 1e3:.2f} ms/picture", "one thread"))
    return rows


def section_predict(args: argparse.Namespace, report: dict[str, Any]) -> list[Row]:
    """predict.py end to end (process start to exit) on folders of pictures: 10,000 MNIST test digits as
    28x28 PNGs, and 1,000 photo-like pictures (tests/photo_digits.py, the predict tests' generator); and
    the preprocessing alone, per picture."""
    sys.path.insert(0, str(REPO / "tests"))
    from photo_digits import write_photo_digits
    from PIL import Image
    from torchvision.datasets import MNIST

    test_set = MNIST(args.data_dir, train=False)
    rows: list[Row] = preprocess_rows(test_set.data.numpy(), report)
    with tempfile.TemporaryDirectory() as tmp:
        train = run_train(args.data_dir, "logger=none", "reports=none", keep_in=Path(tmp))
        if "error" in train:
            return [("predict.py", "failed: no checkpoint", train["error"])]
        pngs = Path(tmp) / "png"
        pngs.mkdir()
        for index in range(10_000):
            Image.fromarray(test_set.data[index].numpy()).save(pngs / f"{index:05d}.png")
        photos = Path(tmp) / "photos"
        write_photo_digits(test_set.data.numpy(), test_set.targets.numpy(), photos, 1_000)
        for label, folder, count in (("10,000 28x28 PNGs", pngs, 10_000), ("1,000 photo-like pictures", photos, 1_000)):
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, str(REPO / "predict.py"), f"ckpt_path={train['metrics']['ckpt_path']}",
                 f"inputs={folder}", f"hydra.run.dir={tmp}/run_{count}"],
                check=False, capture_output=True, text=True, cwd=REPO,
            )  # fmt: skip
            wall = time.perf_counter() - start
            if result.returncode != 0:
                rows.append((f"`predict.py`, {label}", "failed", result.stderr.strip().splitlines()[-1][-300:]))
                continue
            report[f"predict_{count}"] = {"wall_s": wall, "images_per_s": count / wall}
            rows.append((f"`predict.py`, {label}, end to end", f"{count / wall:,.0f} images/s", f"{wall:.1f} s"))
    return rows


def section_serve(args: argparse.Namespace, report: dict[str, Any]) -> list[Row]:
    """serve.py on 127.0.0.1 (serving/load_test.py): 32 keep-alive clients, 10,000 single ~28x28 PNG
    drawings each, for an exported model.onnx (no torch in the server) and for the checkpoint itself."""
    sys.path.insert(0, str(REPO / "tests"))
    from drawn_digits import render

    from mnist_classifier.serving.load_test import free_port, run_load, running_server

    buffer = io.BytesIO()
    render(3, size=28).save(buffer, format="PNG")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        train = run_train(args.data_dir, "logger=none", "reports=none", keep_in=Path(tmp))
        if "error" in train:
            return [("serve.py", "failed: no checkpoint", train["error"])]
        checkpoint = train["metrics"]["ckpt_path"]
        subprocess.run(
            [sys.executable, str(REPO / "export.py"), f"ckpt_path={checkpoint}", f"data.data_dir={args.data_dir}",
             f"hydra.run.dir={tmp}/export"], check=False, capture_output=True, cwd=REPO,
        )  # fmt: skip
        for label, model in (
            ("ONNX model", f"model_path={tmp}/export/model.onnx"),
            ("checkpoint", f"ckpt_path={checkpoint}"),
        ):
            port = free_port()
            url = f"http://127.0.0.1:{port}/"
            command = [sys.executable, str(REPO / "serve.py"), model, f"port={port}", f"hydra.run.dir={tmp}/serve"]
            started = time.monotonic()
            try:
                with running_server(command, url, cwd=REPO) as server:
                    ready_s = time.monotonic() - started  # process start to /health 200 (model warm, decoders up)
                    result = run_load(url, buffer.getvalue(), clients=32, requests=10_000, max_s=180, pid=server.pid)
            except RuntimeError as err:
                rows.append((f"`serve.py`, {label}", "failed", str(err)[-300:]))
                continue
            report[f"serve_{label}"] = vars(result)
            rss = result.server_rss_mb
            memory = f"server memory {rss[0]:.0f} -> {rss[-1]:.0f} MB" if rss else ""
            rows += [
                (f"`serve.py`, {label}, start to /health ready", f"{ready_s:.2f} s",
                 "target: <= 2 s" if label == "ONNX model" else "imports torch"),
                (f"`serve.py`, {label}, 32 clients, {result.requests:,} single pictures",
                 f"{result.predictions_per_s:,.0f} predictions/s", f"{result.errors} errors; {memory}"),
                (f"`serve.py`, {label}, latency", f"p95 {result.p95_ms:.0f} ms", f"p50 {result.p50_ms:.0f} ms"),
                (f"`serve.py`, {label}, GET /health during the load", f"p95 {result.health_p95_ms:.0f} ms",
                 f"{result.health_requests} requests"),
            ]  # fmt: skip
    return rows


SECTIONS: dict[str, Callable[[argparse.Namespace, dict[str, Any]], list[Row]]] = {
    "data": section_data,
    "epochs": section_epochs,
    "stages": section_stages,
    "variants": section_variants,
    "predict": section_predict,
    "serve": section_serve,
    "recipes": section_recipes,
    "experiments": section_experiments,
}
# --cpu-kinds: these sections run once per kind of CPU, side by side; the cap restricts torch to the
# kernels of a CPU with AVX2 and no native bf16 (most laptops and CI runners), on any x86 machine
CPU_KINDS: dict[str, dict[str, str]] = {
    "native": {},
    "AVX2 cap": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}
PER_KIND_SECTIONS = ("epochs", "stages", "variants", "recipes", "experiments")


def selected_sections(args: argparse.Namespace) -> list[str]:
    skipped = {"variants": args.skip_variants, "predict": args.skip_predict, "serve": args.skip_serve,
               "recipes": args.skip_recipes, "experiments": not (args.experiments or args.experiment)}  # fmt: skip
    return [name for name in SECTIONS if not skipped.get(name) and name in (args.only or SECTIONS)]


def kind_label() -> str:
    """What the kernels of this process are: torch's CPU capability and the automatic precision."""
    return f"{torch.backends.cpu.get_cpu_capability()}, {compose_train().trainer.precision}"


def run_section_per_kind(name: str, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """One section in a fresh benchmark process per CPU kind, one after the other: {kind: its rows, report}."""
    results = {}
    for kind, env in CPU_KINDS.items():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "section.json"
            command = [sys.executable, __file__, "--section", name, "--section-out", str(out),
                       "--data-dir", args.data_dir, *(["--experiments"] if args.experiments else []),
                       *(f"--experiment={experiment}" for experiment in args.experiment or []),
                       *(["--skip-compile"] if args.skip_compile else [])]  # fmt: skip
            done = subprocess.run(command, check=False, env={**os.environ, **env}, cwd=REPO)
            if done.returncode != 0 or not out.is_file():
                results[kind] = {"rows": [(name, "failed", f"exit {done.returncode}")], "report": {}, "label": kind}
                continue
            results[kind] = json.loads(out.read_text())
    return results


def side_by_side(per_kind: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Rows of several kinds joined by measurement: [label, result of each kind..., notes]."""
    labels: list[str] = []
    cells: dict[str, dict[str, tuple[str, str]]] = {}
    for kind, result in per_kind.items():
        for label, value, note in result["rows"]:
            if label not in cells:
                labels.append(label)
                cells[label] = {}
            cells[label][kind] = (value, note)
    rows = []
    for label in labels:
        values = [cells[label].get(kind, ("-", ""))[0] for kind in per_kind]
        notes = [f"{kind}: {cells[label][kind][1]}" for kind in per_kind if cells[label].get(kind, ("", ""))[1]]
        rows.append([label, *values, "; ".join(notes)])
    return rows


def markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header)] + [f"| {' | '.join(row)} |" for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DATA_DIR", str(REPO / "data")))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "latest.json"))
    parser.add_argument("--skip-recipes", action="store_true", help="skip the end-to-end recipe runs")
    parser.add_argument("--skip-compile", action="store_true", help="skip the torch.compile variant")
    parser.add_argument("--skip-variants", action="store_true", help="skip the precision/layout/compile variants")
    parser.add_argument("--skip-predict", action="store_true", help="skip the predict.py throughput rows")
    parser.add_argument("--skip-serve", action="store_true", help="skip the serve.py load test rows")
    parser.add_argument(
        "--experiments",
        action="store_true",
        help="also run every experiment on seeds 0-2 and as an ensemble (minutes each)",
    )
    parser.add_argument(
        "--experiment",
        action="append",
        choices=recipes("experiment"),
        help="run this experiment alone in the experiment rows (repeatable; implies --experiments)",
    )
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run this section alone (repeatable)")
    kinds_help = "epoch, stage, step, recipe and experiment rows natively and under the AVX2 cap, side by side"
    parser.add_argument("--cpu-kinds", action="store_true", help=kinds_help)
    parser.add_argument("--section", choices=SECTIONS, help=argparse.SUPPRESS)  # one section, for --cpu-kinds
    parser.add_argument("--section-out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    precision = compose_train().trainer.precision
    report: dict[str, Any] = {"precision": precision}
    if args.section:  # a child of --cpu-kinds: one section, its rows as JSON
        rows = SECTIONS[args.section](args, report)
        Path(args.section_out).write_text(json.dumps({"rows": rows, "report": report, "label": kind_label()}))
        return

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else cpu_name()
    machine = f"{device}, {usable_cores()} cores, torch {torch.__version__}, default precision {precision}"
    print(f"machine: {machine}", flush=True)
    report["machine"] = machine
    kinds = list(CPU_KINDS) if args.cpu_kinds else ["native"]
    labels = dict.fromkeys(kinds, kind_label())
    table_rows: list[list[str]] = []
    for name in selected_sections(args):
        if args.cpu_kinds and name in PER_KIND_SECTIONS:
            per_kind = run_section_per_kind(name, args)
            labels.update({kind: result["label"] for kind, result in per_kind.items()})
            report[name] = {kind: result["report"] for kind, result in per_kind.items()}
            new_rows = side_by_side(per_kind)
        else:
            section_report: dict[str, Any] = {"precision": precision}
            new_rows = [[label, value, *(["-"] * (len(kinds) - 1)), note]
                        for label, value, note in SECTIONS[name](args, section_report)]  # fmt: skip
            report[name] = section_report
        table_rows += new_rows
        for row in new_rows:
            print(row, flush=True)

    header = ["measurement", *(f"{kind} ({labels[kind]})" for kind in kinds), "note"]
    table = markdown(header, table_rows)
    print(f"\nMachine: {machine}\n")
    print("\n".join(table))
    report["table"] = table
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
