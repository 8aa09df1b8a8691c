"""MNISTDataModule on synthetic IDX files (torchvision's real parser) and on real MNIST."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import SYNTHETIC_TEST, SYNTHETIC_TRAIN, synthetic_digits, write_idx_images, write_idx_labels
from torchvision import transforms
from torchvision.datasets import MNIST

from mnist_classifier.data import MNISTDataModule
from mnist_classifier.data.augment import RandomAffineBatch
from mnist_classifier.data.in_memory import MNIST_MEAN, MNIST_STD
from mnist_classifier.data.mnist_files import MNIST_FILES
from mnist_classifier.errors import ConfigValueError, DataNotFoundError


def make_datamodule(data_dir: Path, **kwargs) -> MNISTDataModule:
    dm = MNISTDataModule(data_dir=str(data_dir), **{"val_size": 100, "batch_size": 32, **kwargs})
    dm.prepare_data()
    dm.setup()
    return dm


def test_split_sizes_and_disjoint_train_val(synthetic_data_dir: Path) -> None:
    dm = make_datamodule(synthetic_data_dir)
    assert len(dm.data_train) == SYNTHETIC_TRAIN - 100
    assert len(dm.data_val) == 100
    assert len(dm.data_test) == SYNTHETIC_TEST
    train = {bytes(img.numpy()) for img in dm.data_train.images}
    val = {bytes(img.numpy()) for img in dm.data_val.images}
    assert not train & val


def test_test_set_is_the_official_test_file_only(synthetic_data_dir: Path) -> None:
    dm = make_datamodule(synthetic_data_dir)
    official_test = MNIST(str(synthetic_data_dir), train=False).data
    assert torch.equal(dm.data_test.images, official_test)
    train_file = {bytes(img.numpy()) for img in MNIST(str(synthetic_data_dir), train=True).data}
    assert not train_file & {bytes(img.numpy()) for img in dm.data_test.images}
    fit_images = torch.cat([dm.data_train.images, dm.data_val.images])
    assert {bytes(img.numpy()) for img in fit_images} == train_file


def test_split_does_not_move_with_seed(synthetic_data_dir: Path) -> None:
    L.seed_everything(1)
    first = make_datamodule(synthetic_data_dir).data_val.labels
    L.seed_everything(2)
    assert torch.equal(first, make_datamodule(synthetic_data_dir).data_val.labels)
    other_split = make_datamodule(synthetic_data_dir, split_seed=7).data_val.images
    assert not torch.equal(make_datamodule(synthetic_data_dir).data_val.images, other_split)


def test_batches_match_torchvision_per_item_path(synthetic_data_dir: Path) -> None:
    """Same images, labels and normalisation as torchvision's PIL path for the same indices."""
    reference = MNIST(
        str(synthetic_data_dir),
        train=False,
        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]),
    )
    dm = make_datamodule(synthetic_data_dir)
    indices = [5, 0, 17, 199, 42]
    images, labels = dm.data_test.__getitems__(indices)
    expected = torch.stack([reference[i][0] for i in indices])
    assert images.shape == (5, 1, 28, 28) and images.dtype == torch.float32
    torch.testing.assert_close(images, expected)
    assert labels.tolist() == [reference[i][1] for i in indices]
    single_image, single_label = dm.data_test[17]
    torch.testing.assert_close(single_image, expected[2])
    assert int(single_label) == reference[17][1]


def test_dataloader_batches_keep_sampler_order(synthetic_data_dir: Path) -> None:
    dm = make_datamodule(synthetic_data_dir, eval_batch_size=64)
    batches = list(dm.test_dataloader())
    assert [len(b[1]) for b in batches] == [64, 64, 64, 8]
    images = torch.cat([b[0] for b in batches])
    torch.testing.assert_close(images, dm.data_test.__getitems__(list(range(SYNTHETIC_TEST)))[0])
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
    assert len(dm.data_test) == 50


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"batch_size": 0}, "data.batch_size"),
        ({"eval_batch_size": -1}, "data.eval_batch_size"),
        ({"num_workers": -2}, "data.num_workers"),
        ({"val_size": 60_000}, "data.val_size"),
        ({"on_device": True, "num_workers": 2}, "data.on_device"),
        ({"augment": {"_target_": "mnist_classifier.data.augment.RandomAffineBatch", "translate": 2}}, "data.augment"),
    ],
)
def test_bad_values_fail_with_the_key(kwargs: dict, key: str, tmp_path: Path) -> None:
    with pytest.raises(Exception, match=key.replace(".", r"\.")):
        MNISTDataModule(data_dir=str(tmp_path), **kwargs)


def test_val_size_larger_than_train_file(synthetic_data_dir: Path) -> None:
    with pytest.raises(ConfigValueError, match="leaves no training images"):
        make_datamodule(synthetic_data_dir, val_size=SYNTHETIC_TRAIN)


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


def test_augmentation_only_for_training_batches(synthetic_data_dir: Path) -> None:
    dm = make_datamodule(synthetic_data_dir, augment={"_target_": "mnist_classifier.data.augment.RandomAffineBatch"})
    batch = dm.data_val.__getitems__([0, 1, 2])

    class FakeTrainer:
        training = False

    dm.trainer = FakeTrainer()
    assert dm.on_after_batch_transfer(batch, 0) is batch
    FakeTrainer.training = True
    images, labels = dm.on_after_batch_transfer(batch, 0)
    assert images.shape == batch[0].shape and torch.equal(labels, batch[1])
    assert not torch.equal(images, batch[0])


@pytest.mark.real_data
def test_real_mnist_official_split_and_normalisation(real_data_dir: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "copy"
    shutil.copytree(real_data_dir / "MNIST" / "raw", data_dir / "MNIST" / "raw")
    dm = make_datamodule(data_dir, val_size=5000, download=True)
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (55_000, 5_000, 10_000)
    images, _ = dm.data_train.__getitems__(list(range(55_000)))
    assert abs(images.mean().item()) < 0.02 and abs(images.std().item() - 1) < 0.02
    assert torch.bincount(dm.data_test.labels).tolist()[:2] == [980, 1135]
