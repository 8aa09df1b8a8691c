"""The MNIST LightningDataModule: official 60k/10k files, validation carved from the 60k."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader, Sampler

from mnist_classifier.data.in_memory import InMemoryMNIST, keep_batch
from mnist_classifier.data.mnist_files import ensure_mnist, load_split
from mnist_classifier.data.resumable_sampler import ResumableSampler
from mnist_classifier.errors import ArgumentError, CheckpointError
from mnist_classifier.utils.instantiate import instantiate_argument
from mnist_classifier.utils.plain import to_plain

OFFICIAL_TRAIN_SIZE = 60_000
OFFICIAL_TEST_SIZE = 10_000


class MNISTDataModule(L.LightningDataModule):
    """Train = 55k of the official train file, val = the other 5k (a fixed split that does not move
    with `seed`), test = the official 10k test file, never mixed into training.

    Images stay one uint8 tensor in memory (optionally on the GPU: `on_device`) and every batch is
    fetched with one indexing op; `augment` (a `_target_` config) transforms training batches only.

    The training order is a ResumableSampler's, seeded by `shuffle_seed` (default: the run's seed); the
    datamodule's state in a checkpoint is where training stood in that order, so a resumed run goes on
    with the same batches. No loader draws from the global random generator.
    """

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        num_workers: int = 0,
        pin_memory: bool = False,
        val_size: int = 5_000,
        split_seed: int = 12345,
        on_device: bool = False,
        download: bool = True,
        augment: Mapping[str, Any] | None = None,
        shuffle_seed: int | None = None,
    ) -> None:
        super().__init__()
        augment = to_plain(augment)
        self.save_hyperparameters(logger=False)
        for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if not isinstance(value, int) or value < 1:
                raise ArgumentError(name, lambda key: f"{key(name)} must be a positive integer, got {value!r}.")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ArgumentError(
                "num_workers", lambda key: f"{key('num_workers')} must be an integer >= 0, got {num_workers!r}."
            )
        if not isinstance(val_size, int) or not 0 < val_size < OFFICIAL_TRAIN_SIZE:
            raise ArgumentError(
                "val_size",
                lambda key: f"{key('val_size')} must be an integer in [1, {OFFICIAL_TRAIN_SIZE - 1}] (images taken "
                f"from the official 60k training file for validation), got {val_size!r}.",
            )
        if batch_size > OFFICIAL_TRAIN_SIZE - val_size:
            raise ArgumentError(
                "batch_size",
                lambda key: f"{key('batch_size')}={batch_size} is larger than the training set "
                f"({OFFICIAL_TRAIN_SIZE - val_size} images once {key('val_size')}={val_size} are kept for "
                f"validation): one batch would be the whole set at best. Use a batch a fraction of it, e.g. "
                f"{key('batch_size')}=128.",
            )
        if eval_batch_size > OFFICIAL_TEST_SIZE:
            raise ArgumentError(
                "eval_batch_size",
                lambda key: f"{key('eval_batch_size')}={eval_batch_size} is larger than the test set "
                f"({OFFICIAL_TEST_SIZE} images): use at most {OFFICIAL_TEST_SIZE}, e.g. {key('eval_batch_size')}=1000.",
            )
        for name, flag in (("pin_memory", pin_memory), ("on_device", on_device), ("download", download)):
            if not isinstance(flag, bool):  # `on_device=maybe` was read as true
                raise ArgumentError(
                    name, lambda key, name=name, flag=flag: f"{key(name)} must be true or false, got {flag!r}."
                )
        if on_device and num_workers > 0:
            raise ArgumentError(
                "on_device",
                lambda key: f"{key('on_device')}=true keeps the images on the GPU, where loader worker processes "
                f"cannot index them: set {key('num_workers')}=0.",
            )
        if shuffle_seed is not None and (not isinstance(shuffle_seed, int) or isinstance(shuffle_seed, bool)):
            raise ArgumentError(
                "shuffle_seed", lambda key: f"{key('shuffle_seed')} must be an integer or null, got {shuffle_seed!r}."
            )
        if not isinstance(split_seed, int) or isinstance(split_seed, bool) or not 0 <= split_seed < 2**63:
            raise ArgumentError(
                "split_seed", lambda key: f"{key('split_seed')} must be a whole number >= 0, got {split_seed!r}."
            )
        if not isinstance(data_dir, (str, os.PathLike)) or not str(data_dir):
            raise ArgumentError(
                "data_dir", lambda key: f"{key('data_dir')} must be a folder's path, e.g. {key('data_dir')}=data."
            )
        self.data_dir, self.val_size, self.split_seed = data_dir, val_size, split_seed
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.pin_memory, self.on_device, self.download = num_workers, pin_memory, on_device, download
        self.augment = instantiate_argument("augment", augment) if augment else None
        # after seed_everything(seed), torch's initial seed is the run's seed
        self.shuffle_seed = torch.initial_seed() % 2**32 if shuffle_seed is None else shuffle_seed
        self.train_position = {"epoch": 0, "batches": 0}  # batches trained in that epoch
        self._resume_position: dict[str, int] | None = None
        self.data_train: InMemoryMNIST | None = None
        self.data_val: InMemoryMNIST | None = None
        self.data_test: InMemoryMNIST | None = None

    def prepare_data(self) -> None:
        """Verify/unpack (or download) the files once, on rank 0. With download=false the files
        must already be unpacked; setup() says so clearly if they are not."""
        if self.download:
            ensure_mnist(self.data_dir)

    def setup(self, stage: str | None = None) -> None:
        device = self._storage_device()
        if stage in (None, "fit", "validate") and self.data_train is None:
            images, labels = load_split(self.data_dir, train=True)
            if len(labels) <= self.val_size:
                raise ArgumentError(
                    "val_size",
                    lambda key: f"{key('val_size')}={self.val_size} leaves no training images: the training "
                    f"file in {self.data_dir} holds only {len(labels)}.",
                )
            order = torch.randperm(
                len(labels), generator=torch.Generator().manual_seed(self.split_seed)
            )
            train_idx, val_idx = order[: -self.val_size], order[-self.val_size :]
            if self.batch_size > len(train_idx):
                raise ArgumentError(
                    "batch_size",
                    lambda key: f"{key('batch_size')}={self.batch_size} is larger than the training set: the "
                    f"training file in {self.data_dir} leaves {len(train_idx)} images after "
                    f"{key('val_size')}={self.val_size}. Use a smaller {key('batch_size')}.",
                )
            self.data_train = InMemoryMNIST(images[train_idx], labels[train_idx]).to(device)
            self.data_val = InMemoryMNIST(images[val_idx], labels[val_idx]).to(device)
        if stage in (None, "test", "predict") and self.data_test is None:
            self.data_test = InMemoryMNIST(*load_split(self.data_dir, train=False)).to(device)

    def _storage_device(self) -> torch.device:
        if self.on_device and self.trainer is not None:
            return self.trainer.strategy.root_device
        return torch.device("cpu")

    @staticmethod
    def _loaded(dataset: InMemoryMNIST | None, stage: str) -> InMemoryMNIST:
        if dataset is None:
            raise RuntimeError(f"MNISTDataModule.setup({stage!r}) must run before its data is used")
        return dataset

    @property
    def train_set(self) -> InMemoryMNIST:
        return self._loaded(self.data_train, "fit")

    @property
    def val_set(self) -> InMemoryMNIST:
        return self._loaded(self.data_val, "fit")

    @property
    def test_set(self) -> InMemoryMNIST:
        return self._loaded(self.data_test, "test")

    def _loader(self, dataset: InMemoryMNIST, batch_size: int, sampler: Sampler[int] | None = None) -> DataLoader:
        on_cpu = dataset.images.device.type == "cpu"
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=keep_batch,  # type: ignore[arg-type]  # batches come whole from __getitems__
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and on_cpu,
            persistent_workers=self.num_workers > 0,
            # its own generator: creating an iterator draws a seed, which must not move the global one
            generator=torch.Generator().manual_seed(self.shuffle_seed),
        )

    def train_dataloader(self) -> DataLoader:
        replicas, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        if self.trainer is not None and replicas > 1:  # every process must shuffle alike (seed=null: each drew its own)
            self.shuffle_seed = self.trainer.strategy.broadcast(self.shuffle_seed, src=0)
        sampler = ResumableSampler(self.train_set, num_replicas=replicas, rank=rank, seed=self.shuffle_seed)
        if self._resume_position is not None:
            position, self._resume_position = self._resume_position, None
            sampler.start_at(position["epoch"], position["batches"] * self.batch_size)
        return self._loader(self.train_set, self.batch_size, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.eval_batch_size, self._eval_sampler(self.val_set))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.eval_batch_size, self._eval_sampler(self.test_set))

    def _eval_sampler(self, dataset: InMemoryMNIST) -> Sampler[int] | None:
        """Under DDP each process evaluates its share, and every image once: Lightning's DistributedSampler
        repeats images until the shares are equal (10,000 test images on 3 processes were 10,002)."""
        if self.trainer is None or self.trainer.world_size <= 1 or len(dataset) < self.trainer.world_size:
            return None  # fewer images than processes (a tiny data.val_size): Lightning's, which repeats some
        return UnrepeatedDistributedSampler(
            dataset, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank, shuffle=False
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.trainer is None or not self.trainer.training:
            return batch
        self._count_training_batch(self.trainer.current_epoch)
        if self.augment is not None:
            images, labels = batch
            return self.augment(images), labels
        return batch

    def _count_training_batch(self, epoch: int) -> None:
        if self.train_position["epoch"] != epoch:
            self.train_position = {"epoch": epoch, "batches": 0}
        self.train_position["batches"] += 1

    # --- checkpoint: where training stands in the data order --------------------------------
    def state_dict(self) -> dict[str, Any]:
        position = dict(self.train_position)
        if self.trainer is not None and position["batches"] >= self.trainer.num_training_batches:
            position = {"epoch": position["epoch"] + 1, "batches": 0}  # the epoch is done: the next one is due
        return {"shuffle_seed": self.shuffle_seed, "train_position": position, "batch_size": self.batch_size}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        try:
            seed = state_dict["shuffle_seed"]
            position = {key: int(state_dict["train_position"][key]) for key in ("epoch", "batches")}
            if not isinstance(seed, int) or min(position.values()) < 0:
                raise ValueError(f"shuffle_seed {seed!r}, position {position}")
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"The checkpoint's data position cannot be restored ({err}).") from err
        stored = state_dict.get("batch_size", self.batch_size)  # absent from checkpoints before 2026-12-08
        testing = self.trainer is not None and self.trainer.state.fn != TrainerFn.FITTING  # train=false ckpt_path=
        if stored != self.batch_size and not testing:
            # the position is counted in batches, and the run's length and schedule in steps of this size
            raise CheckpointError(
                f"The checkpoint was trained with data.batch_size={stored}; this run asks {self.batch_size}, which "
                f"would change the run it resumes (its data position, steps and schedule). Resume with "
                f"data.batch_size={stored}, or start a new run."
            )
        self.shuffle_seed = seed
        self.train_position = position
        self._resume_position = dict(position)
