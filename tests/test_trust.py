"""Checkpoints are data: crafted checkpoints (built from real ones) are refused before anything in them
is built, by eval.py and by a resume; every legit checkpoint of every model and experiment loads."""

from __future__ import annotations

import copy
import re
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import quick_checkpoint, run_cli
from test_configs import compose_train, options

from mnist_classifier.checkpoint.checkpoint_io import SafeCheckpointIO
from mnist_classifier.checkpoint.loader import load_checkpoint
from mnist_classifier.checkpoint.resume_state import check_optimizer_and_schedule
from mnist_classifier.checkpoint.trust import allowed_targets
from mnist_classifier.errors import CheckpointError
from mnist_classifier.models.from_checkpoint import build_model
from mnist_classifier.models.trained_net import load_net

QUICK = ["data.val_size=100", "data.batch_size=50"]  # as quick_checkpoint trains


@pytest.fixture(scope="module")
def real_checkpoint(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CNN checkpoint with batch augmentation, so both stored config trees hold `_target_`s."""
    path = tmp_path_factory.mktemp("real") / "real.ckpt"
    augment = "+data.augment._target_=mnist_classifier.data.RandomAffineBatch"
    return quick_checkpoint(path, synthetic_data_dir, "model=cnn", "model.net.channels=[4,4]", augment)


def evil(marker: Path) -> dict[str, Any]:
    """A config that, built by Hydra, would create `marker` (and so prove that code ran)."""
    return {"_target_": "builtins.open", "file": str(marker), "mode": "w"}


Craft = Callable[[dict[str, Any], Path], None]
CRAFTS: dict[str, tuple[Craft, str]] = {
    "net target": (lambda c, m: c["hyper_parameters"]["net"].update(evil(m)), "net._target_"),
    "loss target": (lambda c, m: c["hyper_parameters"]["loss"].update(evil(m)), "loss._target_"),
    "optimizer target": (
        lambda c, m: c["hyper_parameters"]["optimizer"].update({**evil(m), "_partial_": True}),
        "optimizer._target_",
    ),
    "scheduler target": (
        lambda c, m: c["hyper_parameters"]["scheduler"].update({**evil(m), "_partial_": True}),
        "scheduler._target_",
    ),
    "target nested in a network argument": (
        lambda c, m: c["hyper_parameters"]["net"].update(hidden_size=evil(m)),
        "net.hidden_size._target_",
    ),
    "target inside a list": (
        lambda c, m: c["hyper_parameters"]["net"].update(channels=[evil(m), 4]),
        r"net.channels\[0\]._target_",
    ),
    "target at a key that takes none": (
        lambda c, m: c["hyper_parameters"].update(channels_last=evil(m)),
        "channels_last._target_",
    ),
    "allowed class at the wrong key": (
        lambda c, m: c["hyper_parameters"]["net"].update(_target_="torch.optim.SGD"),
        "names 'torch.optim.SGD'",
    ),
    "augmentation target": (
        lambda c, m: c["datamodule_hyper_parameters"]["augment"].update(evil(m)),
        "augment._target_",
    ),
    "_args_ key": (lambda c, m: c["hyper_parameters"]["loss"].update(_args_=[str(m)]), "loss._args_"),
    "_recursive_ key": (lambda c, m: c["hyper_parameters"]["net"].update(_recursive_=True), "net._recursive_"),
    "_convert_ key": (lambda c, m: c["hyper_parameters"]["net"].update(_convert_="all"), "net._convert_"),
    "_partial_ on the network": (lambda c, m: c["hyper_parameters"]["net"].update(_partial_=True), "net._partial_"),
    "interpolation": (
        lambda c, m: c["hyper_parameters"]["net"].update(padding="${oc.create:{_target_:builtins.open}}"),
        "interpolation",
    ),
    "tensor as a hyper-parameter": (
        lambda c, m: c["hyper_parameters"]["net"].update(dropout=torch.zeros(2)),
        "is a Tensor, not plain data",
    ),
    "oversized list": (lambda c, m: c["hyper_parameters"].update(extra=list(range(5000))), "5000 items"),
    "deep nesting": (
        lambda c, m: c["hyper_parameters"].update(extra=[[[[[[[[[[[[[[0]]]]]]]]]]]]]]),
        "too large",
    ),
}


def craft(real: Path, name: str, out: Path, marker: Path) -> Path:
    checkpoint = copy.deepcopy(torch.load(real, map_location="cpu", weights_only=True))
    CRAFTS[name][0](checkpoint, marker)
    torch.save(checkpoint, out)
    return out


@pytest.mark.parametrize("name", list(CRAFTS))
def test_crafted_checkpoint_is_refused_before_anything_runs(name: str, real_checkpoint: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    crafted = craft(real_checkpoint, name, tmp_path / "crafted.ckpt", marker)
    with pytest.raises(CheckpointError, match=CRAFTS[name][1]) as refused:
        load_net(crafted)
    assert "is refused" in str(refused.value) and "Nothing from the checkpoint was run" in str(refused.value)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["target nested in a network argument", "augmentation target"])
def test_eval_refuses_a_crafted_checkpoint(name: str, real_checkpoint: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    crafted = craft(real_checkpoint, name, tmp_path / "crafted.ckpt", marker)
    result = run_cli("eval.py", f"ckpt_path={crafted}", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "is refused" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("name", ["optimizer target"])
def test_resume_refuses_a_crafted_checkpoint(
    name: str, real_checkpoint: Path, synthetic_data_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    crafted = craft(real_checkpoint, name, tmp_path / "crafted.ckpt", marker)
    result = run_cli(
        "train.py",
        f"ckpt_path={crafted}",
        f"data.data_dir={synthetic_data_dir}",
        *QUICK,
        "model.net.channels=[4,4]",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "is refused" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_weights_that_do_not_fit_the_stored_network_are_refused(real_checkpoint: Path, tmp_path: Path) -> None:
    """A crafted size cannot allocate anything: the network is checked on the meta device first."""
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    checkpoint["hyper_parameters"]["net"]["hidden_size"] = 10**9
    torch.save(checkpoint, tmp_path / "huge.ckpt")
    with pytest.raises(CheckpointError, match="does not match its stored weights"):
        load_net(tmp_path / "huge.ckpt")


def test_weights_holding_nan_or_inf_are_refused(real_checkpoint: Path, tmp_path: Path) -> None:
    """eval/predict/export say a diverged run's checkpoint predicts nonsense instead of reporting chance."""
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    name = next(key for key in checkpoint["state_dict"] if key.endswith("weight"))
    checkpoint["state_dict"][name].view(-1)[:3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    torch.save(checkpoint, tmp_path / "nan.ckpt")
    with pytest.raises(CheckpointError, match=rf"3 of its weights are NaN or infinite \(in {name} \(3\)\)"):
        load_net(tmp_path / "nan.ckpt")


ODD_TENSORS: dict[str, Callable[[torch.Tensor], Any]] = {
    "meta": lambda t: torch.empty(t.shape, device="meta"),
    "sparse": lambda t: t.to_sparse(),
    "complex holding NaN": lambda t: torch.full(t.shape, complex("nan+1j")),
    "not a tensor": lambda t: t.tolist(),
}


@pytest.mark.filterwarnings("ignore:Validating sparse tensor invariants")  # torch's, reading the sparse one
@pytest.mark.parametrize("kind", list(ODD_TENSORS))
def test_weights_that_are_not_dense_real_cpu_tensors_are_refused(
    kind: str, real_checkpoint: Path, tmp_path: Path
) -> None:
    """weights_only=True lets these through: meta and sparse weights were tracebacks from deep in torch, and a
    complex weight holding NaN passed the NaN check (not a floating-point tensor) and predicted NaN. The
    pickle scan refuses the first three (their rebuild functions and storages are not what torch.save writes
    here), the weight check whatever is not a tensor."""
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    name = next(key for key in checkpoint["state_dict"] if key.endswith("weight"))
    checkpoint["state_dict"][name] = ODD_TENSORS[kind](checkpoint["state_dict"][name])
    torch.save(checkpoint, tmp_path / "odd.ckpt")
    refusal = rf"its state_dict holds what train.py never writes: {name} \(|calls '[\w.]+' when unpickled"
    with pytest.raises(CheckpointError, match=refusal):
        load_net(tmp_path / "odd.ckpt")


def test_the_raw_weights_a_weight_averaging_callback_resumes_are_checked_too(
    real_checkpoint: Path, tmp_path: Path
) -> None:
    """EMAWeightAveraging stores the raw training weights beside the averaged ones and loads them on resume."""
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    checkpoint["current_model_state"] = {name: t.tolist() for name, t in checkpoint["state_dict"].items()}
    torch.save(checkpoint, tmp_path / "ema.ckpt")
    with pytest.raises(CheckpointError, match=r"its current_model_state holds what train\.py never writes"):
        load_checkpoint(tmp_path / "ema.ckpt")


def with_model_checkpoint_state(real: Path, out: Path, best: str) -> Path:
    """`real` with the state a ModelCheckpoint callback stores, its best file at `best`."""
    checkpoint = torch.load(real, weights_only=True)
    folder = str(out.parent / "checkpoints")
    checkpoint["callbacks"] = {
        "ModelCheckpoint{'monitor': 'val/acc'}": {
            "dirpath": folder,
            "best_model_path": best.format(folder=folder),
            "best_k_models": {best.format(folder=folder): torch.tensor(0.9)},
            "kth_best_model_path": best.format(folder=folder),
            "last_model_path": "",
        }
    }
    torch.save(checkpoint, out)
    return out


def test_stored_checkpoint_paths_through_a_parent_folder_or_a_protocol_are_refused(
    real_checkpoint: Path, tmp_path: Path
) -> None:
    """A resumed run's ModelCheckpoint deletes the stored file it replaces when that file is inside its
    folder, and Lightning takes `<dirpath>/../../victim` for one (and deletes `local:///x` wherever it is, a
    folder too). Paths Lightning writes load, a file of the run resumed from among them (Lightning keeps that
    best_model_path when the folder changes)."""
    for best in ("{folder}/epoch_001.ckpt", str(tmp_path / "earlier_run" / "checkpoints" / "last.ckpt")):
        legit = with_model_checkpoint_state(real_checkpoint, tmp_path / "legit.ckpt", best)
        assert load_checkpoint(legit)["callbacks"], best
    outside = with_model_checkpoint_state(real_checkpoint, tmp_path / "outside.ckpt", "{folder}/../../victim.txt")
    with pytest.raises(CheckpointError, match="where Lightning stores a plain local file path"):
        load_checkpoint(outside)
    url = with_model_checkpoint_state(real_checkpoint, tmp_path / "url.ckpt", "local://" + str(tmp_path / "victim"))
    with pytest.raises(CheckpointError, match="where Lightning stores a plain local file path"):
        load_checkpoint(url)
    not_a_path = torch.load(outside, weights_only=True)
    not_a_path["callbacks"]["ModelCheckpoint{'monitor': 'val/acc'}"]["best_model_path"] = torch.zeros(2)
    torch.save(not_a_path, tmp_path / "tensor.ckpt")
    with pytest.raises(CheckpointError, match="where Lightning stores a plain local file path"):
        load_checkpoint(tmp_path / "tensor.ckpt")


@pytest.mark.parametrize(
    "damage",
    [
        lambda state: state.update(kth_best_model_path=state["dirpath"] + "/epoch_000.ckpt"),
        lambda state: state.update(best_k_models=dict.fromkeys(state["best_k_models"], "high")),
    ],
    ids=["worst kept file not kept", "score not a number"],
)
def test_a_model_checkpoint_ranking_lightning_cannot_use_is_refused(
    damage: Callable[[dict[str, Any]], None], real_checkpoint: Path, tmp_path: Path
) -> None:
    """A run resumed in the same folder (a requeued SLURM job) drops the worst kept file from the ranking
    when a better one comes: a KeyError or TypeError inside Lightning, mid-run, for a ranking it never writes."""
    legit = with_model_checkpoint_state(real_checkpoint, tmp_path / "legit.ckpt", "{folder}/epoch_001.ckpt")
    checkpoint = torch.load(legit, weights_only=True)
    damage(checkpoint["callbacks"]["ModelCheckpoint{'monitor': 'val/acc'}"])
    torch.save(checkpoint, tmp_path / "ranking.ckpt")
    with pytest.raises(CheckpointError, match="does not rank the files it keeps as Lightning does"):
        load_checkpoint(tmp_path / "ranking.ckpt")


@pytest.mark.parametrize(
    ("craft_it", "message"),
    [
        (lambda c: c.update(training_progress=[1]), "its training_progress"),
        (lambda c: c.update(training_progress={"epochs_completed": 1, "max_epochs": "x"}), "its training_progress"),
        (
            lambda c: c["state_dict"].update(
                {k: v[:1] for k, v in c["state_dict"].items() if k.startswith("net.") and k.endswith("weight")}
            ),
            "does not match its stored weights",
        ),
        (
            lambda c: c["optimizer_states"][0]["state"][0].update(exp_avg=torch.zeros(3)),
            "its optimizer state for parameter 0 does not fit that parameter",
        ),
        (
            lambda c: c["optimizer_states"][0]["state"].update({99: {"exp_avg": torch.zeros(3)}}),
            "its optimizer state for parameter 99 does not fit",
        ),
        (
            lambda c: c["optimizer_states"][0]["param_groups"][0].update(lr="x"),
            "its optimizer's `lr` ('x') is not what this run's Adam keeps there",
        ),
        (
            lambda c: c["optimizer_states"][0]["state"][0].update(exp_avg=torch.tensor(0.0)),
            "its optimizer state for parameter 0 does not fit that parameter",
        ),
        (
            lambda c: c["optimizer_states"][0]["state"][0].update(
                exp_avg=torch.zeros(1).expand(c["optimizer_states"][0]["state"][0]["exp_avg"].shape)
            ),
            "its optimizer state for parameter 0 does not fit that parameter",
        ),
        (
            lambda c: c["optimizer_states"][0]["state"][0].update(step=torch.tensor(True)),
            "its optimizer state for parameter 0 does not fit that parameter",
        ),
        (
            lambda c: c["optimizer_states"][0]["param_groups"][0].update(capturable=True),
            "its optimizer's `capturable` (True) is not what this run's Adam keeps there",
        ),
        (lambda c: c.update(optimizer_states={}), "its optimizer state is not one Adam's"),
        (lambda c: c.pop("optimizer_states"), "holds weights but no optimizer state"),
        (lambda c: c.update(lr_schedulers=[]), "it holds 0 LR schedule state(s) where this run has 1"),
        (lambda c: c["lr_schedulers"][0].update(total_steps="x"), "its LR schedule's step counts"),
        (lambda c: c["lr_schedulers"][0].update(last_epoch=10**9), "its LR schedule's step counts"),
        (
            lambda c: c["lr_schedulers"][0]["_schedule_phases"][0].update(start_lr="params"),
            "its LR schedule's `_schedule_phases`",
        ),
        (lambda c: c["lr_schedulers"][0].update(_schedule_phases=[]), "its LR schedule's `_schedule_phases`"),
    ],
    ids=[
        "progress not a dict",
        "progress not numbers",
        "weights of other shapes",
        "moment of another shape",
        "state of a parameter it lacks",
        "lr not a number",
        "moment of no dimension",
        "moment expanded from one number",
        "step a bool",
        "capturable on a CPU run",
        "no optimizer",
        "weights only",
        "no schedule",
        "schedule length not a number",
        "schedule past its end",
        "schedule phase reading another key",
        "schedule without phases",
    ],
)
def test_resume_refuses_a_damaged_checkpoint(
    craft_it: Callable[[dict[str, Any]], None], message: str, real_checkpoint: Path, synthetic_data_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    """What a resume reads besides the configs: checked before Lightning restores it, with exit 2."""
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    craft_it(checkpoint)
    torch.save(checkpoint, tmp_path / "damaged.ckpt")
    result = run_cli(
        "train.py", f"ckpt_path={tmp_path / 'damaged.ckpt'}", f"data.data_dir={synthetic_data_dir}", *QUICK,
        "model.net.channels=[4,4]", f"hydra.run.dir={tmp_path / 'run'}",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]


def test_a_stored_compile_flag_that_is_not_a_bool_is_refused(real_checkpoint: Path, tmp_path: Path) -> None:
    """Any truthy value used to make eval.py run torch.compile (Inductor and a C compiler) on the checkpoint."""
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    checkpoint["hyper_parameters"]["compile"] = "yes"
    torch.save(checkpoint, tmp_path / "compile.ckpt")
    with pytest.raises(CheckpointError, match=r"model\.compile must be true or false, got 'yes'"):
        build_model(load_checkpoint(tmp_path / "compile.ckpt"), tmp_path / "compile.ckpt")


@pytest.mark.parametrize("lie", ["none", "extra field zipfile cannot parse"])
def test_compressed_records_are_refused_before_they_are_inflated(
    lie: str, real_checkpoint: Path, tmp_path: Path
) -> None:
    """torch.save stores its records uncompressed, and torch.load inflates deflated ones: 20 MB of zero
    weights deflate to kilobytes. Refused before torch.load reads the file, also when Python's zipfile cannot
    parse it (an extra field claiming more bytes than it holds, which torch's zip reader skips)."""
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    checkpoint["padding"] = torch.zeros(5_000_000)
    torch.save(checkpoint, tmp_path / "plain.ckpt")
    deflated = tmp_path / "deflated.ckpt"
    with (
        zipfile.ZipFile(tmp_path / "plain.ckpt") as source,
        zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for info in source.infolist():
            out.writestr(info.filename, source.read(info.filename))
        if lie != "none":
            odd = zipfile.ZipInfo(source.namelist()[0].split("/")[0] + "/odd")
            odd.extra = b"\xfe\xca\x64\x00abcd"  # a field said to hold 100 bytes, holding 4
            out.writestr(odd, b"x")
    assert (
        deflated.stat().st_size < 1_000_000 and torch.load(deflated, weights_only=True)["padding"].numel() == 5_000_000
    )
    with pytest.raises(
        CheckpointError, match=r"holds compressed records that would inflate to 20 MB .* never compresses"
    ):
        load_checkpoint(deflated)
    result = run_cli("eval.py", f"ckpt_path={deflated}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert result.returncode == 2 and "compressed records" in result.stderr and "Traceback" not in result.stderr


def doubling(depth: int) -> list[Any]:
    """A list of `depth` levels, each holding the level below twice: the pickle writes each level once."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value, value]
    return value


def with_doubling_key(real: Path, out: Path, depth: int) -> Path:
    """`real` with a dict whose key is a tuple of `depth` levels, each holding the level below twice, which
    unpickling hashes 2**depth times. Python would hash it to build the dict, so the pickle is patched: a
    placeholder key's opcode becomes LONG_BINPUT / LONG_BINGET / TUPLE2 per level around a short string."""
    checkpoint = torch.load(real, weights_only=True)
    checkpoint["lookup"] = {"PLACEHOLDER": 1}
    torch.save(checkpoint, out)
    placeholder = b"X" + struct.pack("<I", 11) + b"PLACEHOLDER"
    memo = struct.pack("<I", 10**9)
    key = b"X" + struct.pack("<I", 1) + b"k" + (b"r" + memo + b"j" + memo + b"\x86") * depth
    records = {}
    with zipfile.ZipFile(out) as source:
        for info in source.infolist():
            data = source.read(info)
            records[info.filename] = data.replace(placeholder, key) if info.filename.endswith("data.pkl") else data
    with zipfile.ZipFile(out, "w") as patched:
        for name, data in records.items():
            patched.writestr(name, data)
    return out


def with_target(real: Path, out: Path, target: Any) -> Path:
    checkpoint = torch.load(real, weights_only=True)
    checkpoint["hyper_parameters"]["net"]["_target_"] = target
    torch.save(checkpoint, out)
    return out


@pytest.mark.parametrize(
    ("craft", "message"),
    [
        (lambda real, out: with_target(real, out, doubling(40)), "unfold more than"),
        (lambda real, out: with_doubling_key(real, out, 45), "unfold more than"),
        (lambda real, out: with_target(real, out, list(range(1000))), "names [0, 1, 2, 3, ...]"),
    ],
    ids=["a list unfolding to 2**40 items", "a dict key unpickling hashes 2**45 times", "a long list (control)"],
)
def test_shared_references_that_unfold_without_end_are_refused(
    craft: Callable[[Path, Path], Path], message: str, real_checkpoint: Path, tmp_path: Path
) -> None:
    """A few kilobytes can refer to one value so often that unpickling (the key's hashing) or the message
    naming the value (the list's repr) would never end: refused from the pickle's opcodes first. The
    control, a list where a class name belongs, is the trust check's to refuse, with a short message."""
    crafted = craft(real_checkpoint, tmp_path / "shared.ckpt")
    assert crafted.stat().st_size < 1_000_000
    with pytest.raises(CheckpointError, match=re.escape(message)) as refused:
        load_checkpoint(crafted)
    assert len(str(refused.value)) < 1000


@pytest.mark.parametrize(
    ("save", "message"),
    [
        (
            lambda c, out: torch.save(c, out, _use_new_zipfile_serialization=False),
            "cannot be read as a PyTorch checkpoint",
        ),
        (lambda c, out: torch.save(c | {"buffer": bytearray(10)}, out), "calls '__builtin__.bytearray' when unpickled"),
    ],
    ids=["torch's old format, which skipped the scan", "a constructor weights_only=True allows"],
)
def test_what_torch_save_does_not_write_here_is_refused_before_unpickling(
    save: Callable[[dict[str, Any], Path], None], message: str, real_checkpoint: Path, tmp_path: Path
) -> None:
    """The old non-zip format went past the scan of the pickle (a dict key hashed 2**60 times hung eval.py,
    and SIGTERM could not stop it); bytearray(2_000_000_000), 30 bytes of pickle, took 2 GB."""
    save(torch.load(real_checkpoint, weights_only=True), tmp_path / "odd.ckpt")
    assert torch.load(tmp_path / "odd.ckpt", weights_only=True)["state_dict"], "torch itself loads it"
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_checkpoint(tmp_path / "odd.ckpt")


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    """weights_only=True: a pickle that would call a function is not unpickled."""

    class Boom:
        def __reduce__(self) -> tuple:
            return (open, (str(tmp_path / "marker"), "w"))

    torch.save({"state_dict": {}, "hyper_parameters": Boom()}, tmp_path / "pickle.ckpt")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_checkpoint(tmp_path / "pickle.ckpt")
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize(
    "overrides",
    [[f"model={name}"] for name in options("model")] + [[f"experiment={name}"] for name in options("experiment")],
    ids=lambda o: o[0],
)
def test_every_legit_checkpoint_loads(overrides: list[str], synthetic_data_dir: Path, tmp_path: Path) -> None:
    path = quick_checkpoint(tmp_path / "model.ckpt", synthetic_data_dir, *overrides)
    saved = torch.load(path, weights_only=True)["state_dict"]
    model = build_model(load_checkpoint(path), path)  # eval.py's LightningModule
    assert all(torch.equal(value, saved[key]) for key, value in model.state_dict().items() if key.startswith("net."))
    net = load_net(path)  # predict.py's, serve.py's and export.py's network alone
    assert all(torch.equal(value, saved[f"net.{key}"]) for key, value in net.state_dict().items())
    cfg = compose_train(f"data.data_dir={synthetic_data_dir}", *QUICK, *overrides)  # as quick_checkpoint's
    check_optimizer_and_schedule(load_checkpoint(path), path, cfg.model)  # what a resume checks besides


def test_a_resume_takes_an_optimizer_state_without_the_newer_flags(
    real_checkpoint: Path, synthetic_data_dir: Path, tmp_path: Path
) -> None:
    """An older torch wrote fewer flags in each parameter group; loading fills in their defaults, so such a
    state is not refused (a missing number, such as lr, is)."""
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    for group in checkpoint["optimizer_states"][0]["param_groups"]:
        del group["decoupled_weight_decay"], group["fused"]
    cfg = compose_train(f"data.data_dir={synthetic_data_dir}", *QUICK, "model=cnn", "model.net.channels=[4,4]")
    check_optimizer_and_schedule(checkpoint, "older.ckpt", cfg.model)
    del checkpoint["optimizer_states"][0]["param_groups"][0]["lr"]
    with pytest.raises(CheckpointError, match="its optimizer's `lr` \\('missing'\\)"):
        check_optimizer_and_schedule(checkpoint, "older.ckpt", cfg.model)


def test_allowlist_holds_classes_not_modules() -> None:
    allowed = allowed_targets()
    assert "torch.nn.CrossEntropyLoss" in allowed["loss"] and "torch.optim.Adam" in allowed["optimizer"]
    assert "torch.optim.lr_scheduler.OneCycleLR" in allowed["scheduler"]
    assert "mnist_classifier.models.ConvNet" in allowed["net"]
    everything = set().union(*allowed.values())
    for forbidden in ("torch.load", "torch.utils.cpp_extension.load_inline", "torch.nn.functional.relu", "os.system"):
        assert forbidden not in everything
    assert all(not name.endswith((".Optimizer", ".LRScheduler", "._Loss")) for name in everything)


def test_lightning_removes_only_local_checkpoint_files(tmp_path: Path) -> None:
    """Behind the loader's check: a replaced checkpoint is unlinked if it is a file or a link, and a folder
    or a URL is left alone (Lightning's own removal is fsspec's recursive rm)."""
    io = SafeCheckpointIO()
    file, folder, link = tmp_path / "epoch_001.ckpt", tmp_path / "keep", tmp_path / "last.ckpt"
    file.write_bytes(b"x")
    (folder / "inside").mkdir(parents=True)
    link.symlink_to(folder)
    for path in (file, link, folder, f"local://{folder}"):
        io.remove_checkpoint(path)
    assert not file.exists() and not link.is_symlink(), "a file and a link are removed"
    assert (folder / "inside").is_dir(), "a folder is not"
