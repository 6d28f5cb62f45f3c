"""LightningDataModule for a folder of class folders: checks, splits and loads the images."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler, WeightedRandomSampler
from torchvision.transforms import v2

from src.data.dataset import ImageFileDataset, ReadFailureTally
from src.data.device_decoding import (
    ProcessRandomness,
    UndecodedBatch,
    collate_undecoded,
    decode_batch,
)
from src.data.image_checks import find_unusable
from src.data.images import pixel_limit
from src.data.progressive_resizing import ProgressiveResizing, resize_batch
from src.data.samples import (
    Sample,
    collect_samples,
    find_classes,
    stratified_split,
    write_file_list,
)
from src.data.transforms import DEFAULT_CROP_PCT, Augmentation, eval_pipeline, eval_transform
from src.utils.devices import default_num_workers, process_rank, wait_until
from src.utils.errors import UserError, require_int, require_number

log = logging.getLogger(__name__)

#: Largest / smallest class size from which a data set is reported as imbalanced.
IMBALANCE_RATIO = 3


class ImageFolderDataModule(L.LightningDataModule):
    """Images in `root/<class>/...`, split here (seeded, stratified), or in `root/{train,val}/...`.

    Files that cannot be decoded are excluded and reported, never fed to the model. With
    `evaluate_all` there is no split: every usable image is in the validation set (a test folder).
    """

    def __init__(
        self,
        root: str,
        image_size: int | None = 224,
        crop_pct: float | None = None,
        batch_size: int = 32,
        num_workers: int | None = None,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        val_fraction: float = 0.2,
        split_seed: int | None = 0,
        max_pixels: int | None = None,
        augment: dict[str, Any] | None = None,
        progressive_resizing: dict[str, Any] | None = None,
        cache_dir: str | None = None,
        file_list_dir: str | None = None,
        max_read_failures: int = 20,
        balance_classes: bool = False,
        decode_on_device: bool = False,
        evaluate_all: bool = False,
        prepare_timeout_s: float = 7200.0,
    ) -> None:
        super().__init__()
        require_int(batch_size, "data.batch_size", 1)
        if image_size is not None:  # null until the model's own is filled in (train does)
            require_int(image_size, "data.image_size", 8)
        if crop_pct is not None:
            require_number(crop_pct, "data.crop_pct", 0.05, 1.0)
        require_number(val_fraction, "data.val_fraction", 0.0, 1.0)
        if val_fraction in (0, 1) and not evaluate_all:
            held_out = "no image for validation" if val_fraction == 0 else "no image for training"
            raise UserError(
                f"data.val_fraction={val_fraction} leaves {held_out}; "
                "give the share of images held out for validation, e.g. 0.2"
            )
        if num_workers is not None:
            require_int(num_workers, "data.num_workers", 0)
        # Lightning stores these in checkpoints; with the class they rebuild this data module.
        self.save_hyperparameters(logger=False)
        self.hparams["_target_"] = f"{type(self).__module__}.{type(self).__qualname__}"
        self.root = Path(root).expanduser()
        self.image_size = image_size
        #: The evaluation crop's share of the resized image (null: the usual 0.875).
        self.crop_pct = crop_pct or DEFAULT_CROP_PCT
        self.batch_size = batch_size
        #: None: chosen for the device the trainer runs on (`loader_workers`).
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.val_fraction = val_fraction
        self.split_seed = 0 if split_seed is None else split_seed
        self.max_pixels = pixel_limit(max_pixels, "data.max_pixels")
        self.augment = dict(augment or {})
        self.augmentation = Augmentation(**self.augment)
        self.progressive_resizing = ProgressiveResizing(**(progressive_resizing or {}))
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.file_list_dir = Path(file_list_dir) if file_list_dir else None
        self.max_read_failures = max_read_failures
        self.balance_classes = balance_classes
        self.decode_on_device = decode_on_device
        self.evaluate_all = evaluate_all
        self.prepare_timeout_s = prepare_timeout_s
        #: Per-process random draws of the augmentations made on the device.
        self.device_randomness = ProcessRandomness()
        #: Files that stopped decoding on the device during the run (`decode_on_device`).
        self.device_read_failures: dict[Path, str] = {}
        # None: a file past `max_read_failures` stops the process that meets it.
        self.read_failure_tallies: list[ReadFailureTally] | None = None
        self.device_tally: ReadFailureTally | None = None
        self.train_samples: list[Sample] = []
        self.val_samples: list[Sample] = []
        self.excluded: dict[Path, str] = {}
        #: (train, val) samples found by `prepare_data` in this process, for `setup` to reuse.
        self._scanned: tuple[list[Sample], list[Sample]] | None = None

    # ------------------------------------------------------------- the files
    def ensure_data(self) -> None:
        """Make `root` hold the data; subclasses download or generate it. Idempotent: quick once
        the data is in place."""

    def data_ready(self) -> bool:
        """Whether `ensure_data` has completed (perhaps in another process)."""
        return True

    def prepare_data(self) -> None:
        """Runs once per node: fetch the data and decode-check new images (results are cached).

        Idempotent within a process: `train` calls it before building the model (to know the
        classes) and Lightning calls it again in `fit`; `setup` reuses the scan made here.
        """
        if self._scanned is None:
            # Processes started together (srun, torchrun) share the data dir: the first one
            # fetches or makes the data, the others wait for it to be complete.
            if process_rank() != 0:
                wait_until(self.data_ready, self.prepare_timeout_s, f"the data in {self.root}")
            self.ensure_data()
            if len(self.class_names) < 2 and not self.evaluate_all:
                raise UserError(
                    f"{self.root} holds a single class {self.class_names}; "
                    "a classifier needs at least two class folders"
                )
            self._scanned = self._scan()

    @property
    def has_predefined_split(self) -> bool:
        return (self.root / "train").is_dir() and (self.root / "val").is_dir()

    @property
    def class_names(self) -> list[str]:
        return find_classes(self.root / "train" if self.has_predefined_split else self.root)

    def _scan_folder(self, folder: Path, classes: list[str]) -> list[Sample]:
        candidates, skipped = collect_samples(folder, classes)
        # One cache file per scanned folder: train/ and val/ must not overwrite each other's.
        unusable = find_unusable(
            [s.path for s in candidates], folder, self.max_pixels, self.cache_dir
        )
        self.excluded.update({path: "not an image file (suffix)" for path in skipped})
        self.excluded.update(unusable)
        usable = [sample for sample in candidates if sample.path not in unusable]
        for label, name in enumerate(classes):
            if not any(sample.label == label for sample in usable):
                raise UserError(f"Class folder {folder / name} holds no usable image; add images")
        return usable

    def _scan(self) -> tuple[list[Sample], list[Sample]]:
        classes = self.class_names
        self.excluded = {}
        if self.evaluate_all:
            folders = [self.root / "train", self.root / "val"]
            if not self.has_predefined_split:
                folders = [self.root]
            return [], [sample for f in folders for sample in self._scan_folder(f, classes)]
        if self.has_predefined_split:
            return self._scan_folder(self.root / "train", classes), self._scan_folder(
                self.root / "val", classes
            )
        return stratified_split(
            self._scan_folder(self.root, classes), self.val_fraction, self.split_seed
        )

    def setup(self, stage: str | None = None) -> None:
        if self.train_samples:
            return
        self.train_samples, self.val_samples = self._scanned or self._scan()
        classes = self.class_names
        counts = dict(
            zip(classes, self.class_counts(self.train_samples + self.val_samples), strict=True)
        )
        log.info(
            "Data %s: %d train / %d val images; per class %s",
            self.root,
            len(self.train_samples),
            len(self.val_samples),
            counts,
        )
        if max(counts.values()) >= IMBALANCE_RATIO * min(counts.values()):
            log.warning(
                "Classes are imbalanced %s%s",
                counts,
                "" if self.balance_classes else "; data.balance_classes=true samples them evenly",
            )
        if self.excluded:
            log.warning(
                "Excluded %d unusable files under %s%s",
                len(self.excluded),
                self.root,
                f" (listed in {self.file_list_dir / 'excluded_files.txt'})"
                if self.file_list_dir
                else "",
            )
        if stage == "fit" and self.progressive_resizing.enabled and self.trainer is not None:
            sizes = self.progressive_resizing.sizes(self.trainer.max_epochs, self.image_size)
            log.info(
                "Progressive resizing: epochs 0-%d train at %s px; validation at %d px",
                len(sizes) - 1,
                ", ".join(map(str, sizes)),
                self.image_size,
            )
        if self.file_list_dir and self.trainer_is_global_zero:
            write_file_list(
                self.file_list_dir / "train_files.txt", self.train_samples, self.root, classes
            )
            write_file_list(
                self.file_list_dir / "val_files.txt", self.val_samples, self.root, classes
            )
            excluded_lines = [
                f"{path.relative_to(self.root).as_posix()}\t{reason}"
                for path, reason in sorted(self.excluded.items())
            ]
            (self.file_list_dir / "excluded_files.txt").write_text(
                "".join(line + "\n" for line in excluded_lines), encoding="utf-8"
            )

    @property
    def trainer_is_global_zero(self) -> bool:
        return self.trainer is None or self.trainer.is_global_zero

    # ---------------------------------------------------------- the loaders
    def train_dataset(self, decoded_in_workers: bool = False) -> ImageFileDataset:
        """The training samples through the augmentation; with `decode_on_device` (unless
        `decoded_in_workers`), as encoded JPEGs for the device to decode and augment."""
        on_device = self.decode_on_device and not decoded_in_workers
        return ImageFileDataset(
            self.train_samples,
            None if on_device else self.train_transform(),
            self.max_pixels,
            max_read_failures=self.max_read_failures,
            jpeg_bytes=on_device,
        )

    def val_dataset(self) -> ImageFileDataset:
        return self.eval_dataset(self.val_samples, jpeg_bytes=self.decode_on_device)

    def eval_dataset(self, samples: list[Sample], jpeg_bytes: bool = False) -> ImageFileDataset:
        """`samples` through the deterministic pipeline (resize, center crop): no augmentation."""
        transform, draft_size = eval_pipeline(self.image_size, self.crop_pct)
        return ImageFileDataset(
            samples,
            None if jpeg_bytes else transform,
            self.max_pixels,
            draft_size,
            self.max_read_failures,
            jpeg_bytes=jpeg_bytes,
        )

    def train_transform(self) -> v2.Transform:
        return self.augmentation.worker_transform(self.image_size, self.crop_pct)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training batches on the device: resized to this epoch's size
        (`data.progressive_resizing`), then MixUp / CutMix (`data.augment.mixup`, `cutmix`)."""
        if self.trainer is None or not self.trainer.training:
            return batch
        images, labels = batch
        epoch, max_epochs = self.trainer.current_epoch, self.trainer.max_epochs
        images = resize_batch(
            images, self.progressive_resizing.size_at(epoch, max_epochs, self.image_size)
        )
        if self.mixing is not None:
            images, labels = self.mixing(images, labels)
        return images, labels

    @functools.cached_property
    def mixing(self) -> Callable | None:
        """MixUp / CutMix over the classes found, or None."""
        return self.augmentation.batch_mixing(len(self.class_names))

    @functools.cached_property
    def device_train_transforms(self) -> tuple[v2.Transform, torch.nn.Module | None]:
        """(per image, per batch) augmentation with `decode_on_device`, made once."""
        return self.augmentation.device_transforms(self.image_size, self.crop_pct)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """With `decode_on_device`, decode and transform the batch on the training device."""
        if not isinstance(batch, UndecodedBatch):
            return batch
        device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        failures = (self.device_read_failures, self.max_read_failures, self.device_tally)
        if not (self.trainer is not None and self.trainer.training):
            evaluation = eval_transform(self.image_size, self.crop_pct)
            return decode_batch(batch, device, evaluation, *failures)
        per_image, per_batch = self.device_train_transforms
        with self.device_randomness.active(self.trainer.global_rank):
            return decode_batch(batch, device, per_image, *failures, batch_transform=per_batch)

    def count_read_failures_for_the_trainer(self) -> None:
        """From now on, files that become unreadable while training or validating are counted
        in tallies (`read_failures_past_limit`) instead of stopping the process that meets them,
        so that a callback can stop every process together."""
        self.device_tally = ReadFailureTally(workers=0)
        self.read_failure_tallies = [self.device_tally]

    def read_failures_past_limit(self) -> int:
        """The most files any loader process of this one found unreadable, when past
        `max_read_failures`; else 0."""
        worst = max((tally.worst() for tally in self.read_failure_tallies or []), default=0)
        return worst if worst > self.max_read_failures else 0

    def _with_tally(self, dataset: ImageFileDataset) -> ImageFileDataset:
        if self.read_failure_tallies is not None:
            dataset.tally = ReadFailureTally(self.loader_workers)
            self.read_failure_tallies.append(dataset.tally)
        return dataset

    def class_counts(self, samples: list[Sample]) -> list[int]:
        counts = [0] * len(self.class_names)
        for sample in samples:
            counts[sample.label] += 1
        return counts

    def balanced_sampler(self) -> WeightedRandomSampler:
        """Draws every class equally often (with replacement): for imbalanced data sets."""
        counts = self.class_counts(self.train_samples)
        weights = torch.tensor([1.0 / counts[s.label] for s in self.train_samples])
        return WeightedRandomSampler(weights, num_samples=len(self.train_samples))

    @property
    def loader_workers(self) -> int:
        """`num_workers`, or by default this process's share of the node's cores, less those the
        model takes when it runs on the CPU."""
        if self.num_workers is not None:
            return self.num_workers
        if self.trainer is None:
            return default_num_workers(model_on_cpu=True)
        on_cpu = self.trainer.strategy.root_device.type == "cpu"
        return default_num_workers(on_cpu, processes_on_node=self.trainer.num_devices)

    def _loader(
        self,
        dataset: ImageFileDataset,
        shuffle: bool,
        sampler: Sampler | None = None,
        batch_size: int | None = None,
        drop_last: bool = False,
    ) -> DataLoader:
        workers = self.loader_workers
        return DataLoader(
            dataset,
            batch_size=batch_size or self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers and workers > 0,
            drop_last=drop_last,
            collate_fn=collate_undecoded if self.decode_on_device else None,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled; the last incomplete batch of an epoch is dropped when each process has a
        full one: a batch of one image breaks training BatchNorm on small feature maps."""
        sampler = self.balanced_sampler() if self.balance_classes else None
        dataset = self._with_tally(self.train_dataset())
        processes = self.trainer.world_size if self.trainer is not None else 1
        full_batch = len(dataset) // processes >= self.batch_size
        return self._loader(dataset, shuffle=True, sampler=sampler, drop_last=full_batch)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self._with_tally(self.val_dataset()), shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """The validation split, for `evaluate`."""
        return self.val_dataloader()

    def augmented_train_loader(self, batch_size: int) -> DataLoader:
        """The training samples in order, each through the augmentation in the workers: one
        augmented view of every image per pass (for cached views)."""
        dataset = self.train_dataset(decoded_in_workers=True)
        return self._loader(dataset, shuffle=False, batch_size=batch_size)

    def eval_loader(self, samples: list[Sample], batch_size: int) -> DataLoader:
        """`samples` in order through the deterministic pipeline, decoded in the workers."""
        return self._loader(self.eval_dataset(samples), shuffle=False, batch_size=batch_size)
