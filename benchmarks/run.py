"""Speed benchmark: `python benchmarks/run.py` (or `make benchmark`). Prints a markdown table, writes JSON.

Everything is measured in one run, side by side, on this machine:
  1. data pipeline images/s: our in-memory batches vs torchvision's per-item PIL path;
  2. one training epoch through train.py's Trainer vs a plain PyTorch loop (same net, optimizer,
     schedule, precision, batches), for both recipes and the dense net at batch 256; best of two
     warm epochs on each side;
  3. CNN step time with channels_last / bf16 autocast / torch.compile switched on and off;
  4. the default recipes end to end: wall time of the whole process, start-up, test accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(REPO))

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from mnist_classifier.data.in_memory import MNIST_MEAN, MNIST_STD  # noqa: E402
from mnist_classifier.utils.resolvers import register_resolvers  # noqa: E402

register_resolvers()


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def run_train(data_dir: str, *overrides: str) -> dict:
    """Run train.py as a user would (default callbacks, logger and reports), with StageTimer attached;
    returns timings + metrics.json."""
    with tempfile.TemporaryDirectory() as tmp:
        timer_out = Path(tmp) / "timer.json"
        env = {**os.environ, "PYTHONPATH": str(REPO / "benchmarks"), "BENCH_T0": repr(time.time())}
        start = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                str(REPO / "train.py"),
                f"data.data_dir={data_dir}",
                f"hydra.run.dir={tmp}/run",
                "+callbacks.stage_timer._target_=stage_timer.StageTimer",
                f"+callbacks.stage_timer.out={timer_out}",
                *overrides,
            ],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"train.py {' '.join(overrides)} failed:\n{result.stderr[-3000:]}")
        metrics = json.loads((Path(tmp) / "run" / "metrics.json").read_text())
        return {"wall_s": wall, **json.loads(timer_out.read_text()), "metrics": metrics}


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "CPU"


def bench_data(data_dir: str, batches: int) -> dict:
    """images/s of a training loader: ours (one indexing op a batch) vs torchvision's per-item path."""
    from torch.utils.data import DataLoader
    from torchvision import transforms
    from torchvision.datasets import MNIST

    dm = instantiate(compose_train(f"data.data_dir={data_dir}").data)
    dm.prepare_data()
    dm.setup("fit")
    ours = dm.train_dataloader()
    reference = DataLoader(
        MNIST(
            data_dir,
            train=True,
            transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]),
        ),
        batch_size=dm.hparams.batch_size,
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


def plain_epoch(
    data_dir: str, precision: str, *overrides: str, warmup_steps: int = 30, epochs: int = 2
) -> tuple[float, int]:
    """Best of `epochs` training epochs in a plain loop, and its number of steps: same
    net/optimizer/schedule/precision/batches as train.py (best-of, because these machines are noisy)."""
    cfg = compose_train(*overrides, f"data.data_dir={data_dir}")
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    module = instantiate(cfg.model)
    net, loss_fn = module.net.train(), module.criterion
    optimizer = instantiate(cfg.model.optimizer)(params=net.parameters())
    steps = len(dm.train_dataloader())
    scheduler = instantiate(cfg.model.scheduler)(optimizer=optimizer, total_steps=epochs * steps + warmup_steps)
    channels_last = cfg.model.channels_last

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            loss = loss_fn(net(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()

    for i, batch in enumerate(dm.train_dataloader()):
        step(*batch)
        if i + 1 == warmup_steps:
            break
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for batch in dm.train_dataloader():
            step(*batch)
        times.append(time.perf_counter() - start)
    return min(times), steps


def main() -> None:  # noqa: PLR0915 (one table, measured top to bottom; split in the recipes rework)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DATA_DIR", str(REPO / "data")))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "latest.json"))
    parser.add_argument("--skip-recipes", action="store_true", help="skip the end-to-end default recipes")
    parser.add_argument("--skip-compile", action="store_true", help="skip the torch.compile variant")
    parser.add_argument("--skip-variants", action="store_true", help="skip the precision/layout/compile variants")
    args = parser.parse_args()

    precision = compose_train().trainer.precision
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else cpu_name()
    machine = f"{device}, {os.cpu_count()} cores, torch {torch.__version__}, default precision {precision}"
    print(f"machine: {machine}", flush=True)
    report: dict = {"machine": machine, "precision": precision}
    rows: list[tuple[str, str, str]] = []

    rates = bench_data(args.data_dir, batches=200)
    report["data_images_per_s"] = rates
    ours, ref = rates["in-memory (ours)"], rates["torchvision per-item"]
    rows.append(
        ("data pipeline, images/s (batch 128)", f"ours {ours:,.0f} vs torchvision {ref:,.0f}", f"{ours / ref:.0f}x")
    )
    print(rows[-1], flush=True)

    # The shipped recipes, and the dense net at a quarter of its batch: Lightning's cost per step is
    # fixed (about a millisecond here), so the ratio depends on how much work a step holds.
    # "bare" drops our callbacks, logger and reports: what is left is Lightning's own loop.
    epoch_runs = {
        "cnn": ["model=cnn"],
        "dense": ["model=dense"],
        "dense, bare Trainer": ["model=dense", "callbacks=none", "logger=none", "reports=none"],
        "dense, batch 256": ["model=dense", "data.batch_size=256"],
    }
    for name, overrides in epoch_runs.items():
        trainer_run = run_train(args.data_dir, *overrides, "trainer.max_epochs=3", "test=false")
        trainer_epoch = min(trainer_run["epoch_s"][1:])  # best of the two warm epochs, like the plain loop
        plain, steps = plain_epoch(args.data_dir, precision, *overrides)
        overhead_ms = 1000 * (trainer_epoch - plain) / steps
        report[f"epoch_{name}"] = {
            "trainer_s": trainer_epoch,
            "plain_s": plain,
            "steps": steps,
            "overhead_ms_per_step": overhead_ms,
            "startup_s": trainer_run["startup_s"],
        }
        rows.append(
            (
                f"{name}: training epoch, Trainer vs plain loop",
                f"{trainer_epoch:.2f} s vs {plain:.2f} s ({steps} steps, {overhead_ms:+.2f} ms/step)",
                f"{trainer_epoch / plain:.2f}x",
            )
        )
        print(rows[-1], flush=True)
        if name == "cnn":
            rows.append(("start-up: process start to first training step", f"{trainer_run['startup_s']:.2f} s", ""))

    variants = {
        "fp32": ["trainer.precision=32-true", "model.channels_last=false"],
        "fp32 + channels_last": ["trainer.precision=32-true", "model.channels_last=true"],
        "bf16-mixed": ["trainer.precision=bf16-mixed", "model.channels_last=false"],
        "bf16-mixed + channels_last": ["trainer.precision=bf16-mixed", "model.channels_last=true"],
    }
    if args.skip_variants:
        variants = {}
    elif not args.skip_compile:
        variants["bf16-mixed + channels_last + compile"] = variants["bf16-mixed + channels_last"] + [
            "model.compile=true"
        ]
    steps = 150
    report["cnn_variants_ms_per_step"] = {}
    for name, overrides in variants.items():
        run = run_train(
            args.data_dir,
            "model=cnn",
            "trainer.max_epochs=2",
            f"trainer.limit_train_batches={steps}",
            "trainer.limit_val_batches=1",
            "test=false",
            *overrides,
        )
        warm, first = run["epoch_s"][1], run["epoch_s"][0]
        report["cnn_variants_ms_per_step"][name] = 1000 * warm / steps
        extra = f"first epoch +{first - warm:.1f} s" if "compile" in name else ""
        rows.append((f"cnn step time, {name}", f"{1000 * warm / steps:.1f} ms", extra))
        print(rows[-1], flush=True)

    if not args.skip_recipes:
        for command, overrides in (("python train.py", []), ("python train.py model=dense", ["model=dense"])):
            run = run_train(args.data_dir, *overrides)
            acc = run["metrics"]["test/acc"]
            report[command] = {"wall_s": run["wall_s"], "test_acc": acc, "startup_s": run["startup_s"]}
            rows.append((f"`{command}` (whole process)", f"{run['wall_s']:.1f} s", f"test acc {100 * acc:.2f}%"))
            print(rows[-1], flush=True)

    table = ["| measurement | result | ratio / note |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    print(f"\nMachine: {machine}\n")
    print("\n".join(table))
    report["table"] = table
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
