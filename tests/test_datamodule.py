"""MNISTDataModule on synthetic IDX files (torchvision's real parser) and on real MNIST."""

from __future__ import annotations

import multiprocessing
import shutil
import time
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from conftest import SYNTHETIC_TEST, SYNTHETIC_TRAIN, synthetic_digits, write_idx_images, write_idx_labels
from hydra.utils import instantiate
from test_configs import compose_train
from test_models import plain_argument_error
from torchvision import transforms
from torchvision.datasets import MNIST

from mnist_classifier.data import MNISTDataModule
from mnist_classifier.data.augment import RandomAffineBatch
from mnist_classifier.data.in_memory import MNIST_MEAN, MNIST_STD
from mnist_classifier.data.mnist_files import MNIST_FILES, ensure_mnist, load_split
from mnist_classifier.data.resumable_sampler import ResumableSampler
from mnist_classifier.errors import CheckpointError, ConfigValueError, DataNotFoundError, keys_under
from mnist_classifier.runtime.error_messages import user_error_message


def make_datamodule(data_dir: Path, **kwargs) -> MNISTDataModule:
    dm = MNISTDataModule(data_dir=str(data_dir), **{"val_size": 100, "batch_size": 32, **kwargs})
    dm.prepare_data()
    dm.setup()
    return dm


def test_split_sizes_and_disjoint_train_val(synthetic_data_dir: Path) -> None:
    dm = make_datamodule(synthetic_data_dir)
    assert len(dm.train_set) == SYNTHETIC_TRAIN - 100
    assert len(dm.val_set) == 100
    assert len(dm.test_set) == SYNTHETIC_TEST
    train = {bytes(img.numpy()) for img in dm.train_set.images}
    val = {bytes(img.numpy()) for img in dm.val_set.images}
    assert not train & val


def test_test_set_is_the_official_test_file_only(synthetic_data_dir: Path) -> None:
    dm = make_datamodule(synthetic_data_dir)
    official_test = MNIST(str(synthetic_data_dir), train=False).data
    assert torch.equal(dm.test_set.images, official_test)
    train_file = {bytes(img.numpy()) for img in MNIST(str(synthetic_data_dir), train=True).data}
    assert not train_file & {bytes(img.numpy()) for img in dm.test_set.images}
    fit_images = torch.cat([dm.train_set.images, dm.val_set.images])
    assert {bytes(img.numpy()) for img in fit_images} == train_file


def test_split_does_not_move_with_seed(synthetic_data_dir: Path) -> None:
    L.seed_everything(1)
    first = make_datamodule(synthetic_data_dir).val_set.labels
    L.seed_everything(2)
    assert torch.equal(first, make_datamodule(synthetic_data_dir).val_set.labels)
    other_split = make_datamodule(synthetic_data_dir, split_seed=7).val_set.images
    assert not torch.equal(make_datamodule(synthetic_data_dir).val_set.images, other_split)


def test_batches_match_torchvision_per_item_path(synthetic_data_dir: Path) -> None:
    """Same images, labels and normalisation as torchvision's PIL path for the same indices."""
    reference = MNIST(
        str(synthetic_data_dir),
        train=False,
        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]),
    )
    dm = make_datamodule(synthetic_data_dir)
    indices = [5, 0, 17, 199, 42]
    images, labels = dm.test_set.__getitems__(indices)
    expected = torch.stack([reference[i][0] for i in indices])
    assert images.shape == (5, 1, 28, 28) and images.dtype == torch.float32
    torch.testing.assert_close(images, expected)
    assert labels.tolist() == [reference[i][1] for i in indices]
    single_image, single_label = dm.test_set[17]
    torch.testing.assert_close(single_image, expected[2])
    assert int(single_label) == reference[17][1]


def test_dataloader_batches_keep_sampler_order(synthetic_data_dir: Path) -> None:
    dm = make_datamodule(synthetic_data_dir, eval_batch_size=64)
    batches = list(dm.test_dataloader())
    assert [len(b[1]) for b in batches] == [64, 64, 64, 8]
    images = torch.cat([b[0] for b in batches])
    torch.testing.assert_close(images, dm.test_set.__getitems__(list(range(SYNTHETIC_TEST)))[0])
    train_images, train_labels = next(iter(dm.train_dataloader()))
    assert train_images.shape == (32, 1, 28, 28) and train_labels.dtype == torch.int64


def test_unpacked_files_work_without_download(tmp_path: Path) -> None:
    """Unpacked IDX files alone are enough (the .gz path is covered with real MNIST below)."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 300), ("t10k", 50)):
        images, labels = synthetic_digits(n, 3)
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
    dm = make_datamodule(tmp_path, download=False)
    assert len(dm.test_set) == 50


AFFINE = "mnist_classifier.data.augment.RandomAffineBatch"
LARGE_BATCH = (
    "data.batch_size=1000000 is larger than the training set (55000 images once data.val_size=5000 are kept for "
    "validation): one batch would be the whole set at best. Use a batch a fraction of it, e.g. data.batch_size=128."
)
ON_DEVICE = (
    "data.on_device=true keeps the images on the GPU, where loader worker processes cannot index them: set "
    "data.num_workers=0."
)


@pytest.mark.parametrize(
    ("kwargs", "argument", "overrides", "shown"),
    [
        ({"batch_size": 0}, "batch_size", ["data.batch_size=0"], "data.batch_size must be a positive integer, got 0."),
        ({"batch_size": 1_000_000}, "batch_size=1000000 is larger", ["data.batch_size=1000000"], LARGE_BATCH),
        ({"eval_batch_size": 10_001}, "eval_batch_size=10001 is larger than the test set",
         ["data.eval_batch_size=10001"], "data.eval_batch_size=10001 is larger than the test set (10000 images): "
         "use at most 10000, e.g. data.eval_batch_size=1000."),
        ({"eval_batch_size": -1}, "eval_batch_size", ["data.eval_batch_size=-1"],
         "data.eval_batch_size must be a positive integer, got -1."),
        ({"num_workers": -2}, "num_workers", ["data.num_workers=-2"],
         "data.num_workers must be an integer >= 0, got -2."),
        ({"val_size": 60_000}, "val_size", ["data.val_size=60000"], "data.val_size must be an integer in [1, 59999] "
         "(images taken from the official 60k training file for validation), got 60000."),
        ({"on_device": True, "num_workers": 2}, "on_device", ["data.on_device=true", "data.num_workers=2"], ON_DEVICE),
        ({"shuffle_seed": "x"}, "shuffle_seed", ["data.shuffle_seed=x"],
         "data.shuffle_seed must be an integer or null, got 'x'."),
        ({"augment": {"_target_": AFFINE, "translate": 2}}, "augment.translate",
         ["model=dense", "data.augment.translate=2"], "data.augment.translate must be in [0, 1), got 2."),
    ],
)  # fmt: skip
def test_bad_values_name_the_argument_and_through_the_config_the_key(
    kwargs: dict, argument: str, overrides: list[str], shown: str, tmp_path: Path
) -> None:
    """The datamodule alone names its argument; built from the config (as train.py does) the key."""
    plain_argument_error(lambda: MNISTDataModule(data_dir=str(tmp_path), **kwargs), argument)
    with pytest.raises(Exception) as err:
        instantiate(compose_train(*overrides).data)
    assert user_error_message(err.value) == shown


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"degrees": -1}, "degrees"), ({"degrees": float("nan")}, "degrees"), ({"degrees": float("inf")}, "degrees"),
     ({"translate": 1.0}, "translate"), ({"scale": [1.1, 0.9]}, "scale"),
     ({"scale": [0.0, 1.0]}, "scale"), ({"scale": 1.0}, "scale"), ({"elastic": -0.5}, "elastic"),
     ({"elastic": "x"}, "elastic"), ({"elastic_grid": 1}, "elastic_grid"), ({"elastic_grid": 4.0}, "elastic_grid")],
)  # fmt: skip
def test_augmentation_names_its_argument(kwargs: dict, argument: str) -> None:
    plain_argument_error(lambda: RandomAffineBatch(**kwargs), argument)


def test_val_size_larger_than_train_file(synthetic_data_dir: Path) -> None:
    """Checked against the file in setup(): train.py's fit names it `data.val_size` (keys_under)."""
    dm = MNISTDataModule(data_dir=str(synthetic_data_dir), val_size=SYNTHETIC_TRAIN)
    plain_argument_error(dm.setup, f"val_size={SYNTHETIC_TRAIN} leaves no training images")
    keyed = rf"^data\.val_size={SYNTHETIC_TRAIN} leaves no training images"
    with pytest.raises(ConfigValueError, match=keyed), keys_under("data"):
        dm.setup()


def test_missing_files_and_failed_download_give_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # a download that fails, with or without network
    dm = MNISTDataModule(data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in message
    assert all(f"{name}.gz" in message for name in MNIST_FILES)
    assert "data.data_dir" in message


def test_batch_larger_than_the_training_file(synthetic_data_dir: Path) -> None:
    """Also checked in setup(); through train.py: tests/test_recovery.py::test_bad_run_value_is_one_paragraph..."""
    batch = SYNTHETIC_TRAIN - 50
    dm = MNISTDataModule(data_dir=str(synthetic_data_dir), val_size=100, batch_size=batch)
    err = plain_argument_error(dm.setup, f"batch_size={batch} is larger than the training set")
    assert str(err).endswith(f"leaves {SYNTHETIC_TRAIN - 100} images after val_size=100. Use a smaller batch_size.")
    keyed = rf"^data\.batch_size={batch} is larger .* after data\.val_size=100\. Use a smaller data\.batch_size\.$"
    with pytest.raises(ConfigValueError, match=keyed), keys_under("data"):
        dm.setup()


def test_failed_download_leaves_no_folder_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo'd data_dir is not created: the folders made for the download go when it fails."""
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataNotFoundError):
        MNISTDataModule(data_dir=str(tmp_path / "typo" / "data")).prepare_data()
    assert list(tmp_path.iterdir()) == []


def test_data_dir_that_is_a_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text("root:x:0:0\n")
    with pytest.raises(DataNotFoundError, match=r"passwd is a file, not a folder\. Point data\.data_dir at a"):
        MNISTDataModule(data_dir=str(tmp_path / "passwd")).prepare_data()


def test_missing_files_without_download(tmp_path: Path) -> None:
    dm = MNISTDataModule(data_dir=str(tmp_path), download=False)
    dm.prepare_data()
    with pytest.raises(DataNotFoundError, match="not found"):
        dm.setup("fit")


def test_augmentation_keeps_shapes_labels_and_background() -> None:
    torch.manual_seed(0)
    images = torch.full((16, 1, 28, 28), (0 - MNIST_MEAN) / MNIST_STD)
    images[:, :, 10:18, 10:18] = (1 - MNIST_MEAN) / MNIST_STD
    out = RandomAffineBatch(degrees=15, translate=0.1)(images)
    assert out.shape == images.shape and out.dtype == images.dtype
    torch.testing.assert_close(out[:, :, 0, 0], images[:, :, 0, 0])  # corners stay black
    assert not torch.equal(out, images)


def test_elastic_distortion_is_a_smooth_field_of_the_size_asked_for() -> None:
    """Shifts of `elastic` pixels (std) at the lattice points, bicubic in between (F.interpolate's own
    weights), so neighbouring pixels move almost together; the background stays black."""
    augment = RandomAffineBatch(degrees=0, translate=0, scale=[1, 1], elastic=2.0, elastic_grid=4)
    images = torch.zeros(512, 1, 28, 28)
    torch.manual_seed(1)
    field = augment._displacement(512, 28, 28, images)
    torch.manual_seed(1)
    lattice = torch.randn(512, 2, 4, 4) * 2.0
    expected = F.interpolate(lattice, size=(28, 28), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
    torch.testing.assert_close(field * 14, expected)  # 2 / 28 grid units per pixel
    pixels = field * 14
    assert 1.0 < pixels.std().item() < 2.0  # interpolation between the points lowers the spread
    assert (pixels[:, 1:] - pixels[:, :-1]).abs().mean() < 0.25 * pixels.abs().mean()  # smooth: 9 pixels between points
    background = torch.full((8, 1, 28, 28), (0 - MNIST_MEAN) / MNIST_STD)
    torch.testing.assert_close(augment(background), background)
    digit = background.clone()
    digit[:, :, 8:20, 12:16] = (1 - MNIST_MEAN) / MNIST_STD
    assert not torch.equal(augment(digit), digit)
    assert augment(digit.bfloat16()).dtype == torch.bfloat16  # the field takes the batch's dtype


def test_no_elastic_distortion_leaves_the_affine_draws_as_they_were() -> None:
    """elastic=0 draws nothing more: the same seed gives the same batch as the affine augmentation alone."""
    images = torch.randn(16, 1, 28, 28)
    torch.manual_seed(3)
    plain = RandomAffineBatch()(images)
    torch.manual_seed(3)
    torch.testing.assert_close(RandomAffineBatch(elastic=0.0)(images), plain)
    torch.manual_seed(3)
    assert not torch.allclose(RandomAffineBatch(elastic=1.0)(images), plain)


def test_augmentation_only_for_training_batches(synthetic_data_dir: Path) -> None:
    dm = make_datamodule(synthetic_data_dir, augment={"_target_": "mnist_classifier.data.augment.RandomAffineBatch"})
    batch = dm.val_set.__getitems__([0, 1, 2])

    class FakeTrainer:
        training = False
        current_epoch = 0

    dm.trainer = FakeTrainer()  # type: ignore[assignment]  # only what the hook reads
    assert dm.on_after_batch_transfer(batch, 0) is batch
    FakeTrainer.training = True
    images, labels = dm.on_after_batch_transfer(batch, 0)
    assert images.shape == batch[0].shape and torch.equal(labels, batch[1])
    assert not torch.equal(images, batch[0])


def test_resumable_sampler_starts_part_way_and_shards_like_distributed_sampler(synthetic_data_dir: Path) -> None:
    dataset = make_datamodule(synthetic_data_dir).train_set
    full = ResumableSampler(dataset, num_replicas=1, rank=0, seed=3)
    full.set_epoch(2)
    order = list(full)
    assert sorted(order) == list(range(len(dataset))) and order != list(range(len(dataset)))
    resumed = ResumableSampler(dataset, num_replicas=1, rank=0, seed=3)
    resumed.start_at(epoch=2, start=96)
    assert list(resumed) == order[96:]
    assert list(resumed) == order, "the start applies to one iteration only"
    shards = [list(ResumableSampler(dataset, num_replicas=2, rank=r, seed=3)) for r in (0, 1)]
    assert not set(shards[0]) & set(shards[1]) and len(shards[0]) == len(dataset) // 2


def test_datamodule_state_is_where_training_stands(synthetic_data_dir: Path) -> None:
    """The position counts training batches; a finished epoch points at the start of the next one."""
    dm = make_datamodule(synthetic_data_dir, shuffle_seed=5)

    class FakeTrainer:
        training, current_epoch, num_training_batches = True, 1, 16

    dm.trainer = FakeTrainer()  # type: ignore[assignment]  # only what the hooks read
    batch = dm.train_set.__getitems__([0, 1])
    for _ in range(3):
        dm.on_after_batch_transfer(batch, 0)
    assert dm.state_dict() == {"shuffle_seed": 5, "train_position": {"epoch": 1, "batches": 3}, "batch_size": 32}
    FakeTrainer.num_training_batches = 3
    assert dm.state_dict()["train_position"] == {"epoch": 2, "batches": 0}

    resumed = make_datamodule(synthetic_data_dir)
    resumed.load_state_dict({"shuffle_seed": 5, "train_position": {"epoch": 1, "batches": 3}})
    sampler = resumed.train_dataloader().sampler
    assert isinstance(sampler, ResumableSampler) and sampler.seed == 5 and sampler.epoch == 1
    assert sampler.start == 3 * resumed.batch_size
    with pytest.raises(CheckpointError, match="data position"):
        resumed.load_state_dict({"shuffle_seed": "x", "train_position": {}})


@pytest.mark.real_data
def test_real_mnist_official_split_and_normalisation(real_data_dir: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "copy"
    shutil.copytree(real_data_dir / "MNIST" / "raw", data_dir / "MNIST" / "raw")
    dm = make_datamodule(data_dir, val_size=5000, download=True)
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (55_000, 5_000, 10_000)
    images, _ = dm.train_set.__getitems__(list(range(55_000)))
    assert abs(images.mean().item()) < 0.02 and abs(images.std().item() - 1) < 0.02
    assert torch.bincount(dm.test_set.labels).tolist()[:2] == [980, 1135]


def _unpack_and_count(data_dir: Path, start: Any, delay: float, errors: Any) -> None:
    """One of several processes that meet a fresh data dir at about the same moment (sweep jobs, test workers)."""
    start.wait()
    time.sleep(delay)
    try:
        ensure_mnist(data_dir)
        sizes = [len(load_split(data_dir, train)[1]) for train in (True, False)]
        if sizes != [60_000, 10_000]:
            errors.put(f"read {sizes} images")
    except Exception as err:
        errors.put(f"{type(err).__name__}: {err}")


@pytest.mark.real_data
def test_processes_that_unpack_mnist_at_once_each_read_it_whole(real_data_dir: Path, tmp_path: Path) -> None:
    """Only the .gz files, and six processes released a tenth of a second apart: without the lock, one that
    found no unpacked files unpacked them again, over the file another was reading (`invalid literal for
    int() with base 16: b''`, CI)."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        shutil.copy(real_data_dir / "MNIST" / "raw" / f"{name}.gz", raw)
    context = multiprocessing.get_context("fork")
    start, errors = context.Barrier(6), context.Queue()
    workers = [context.Process(target=_unpack_and_count, args=(tmp_path, start, i / 10, errors)) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    found = []
    while not errors.empty():  # not qsize(): macOS has none
        found.append(errors.get())
    assert found == [] and [worker.exitcode for worker in workers] == [0] * 6, found


def test_a_data_dir_where_no_lock_can_be_made_still_loads(
    synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only dataset folder (a shared mount) holds no lock file, and needs none: nothing unpacks there."""
    import filelock

    def refuse(self: filelock.BaseFileLock, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(30, "Read-only file system", self.lock_file)

    monkeypatch.setattr(filelock.FileLock, "acquire", refuse)
    ensure_mnist(synthetic_data_dir)
    assert len(load_split(synthetic_data_dir, train=False)[1]) == SYNTHETIC_TEST
