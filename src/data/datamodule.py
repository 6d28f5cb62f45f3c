"""The LightningDataModule over any source of labelled images: checks, splits, loads and batches.

A subclass names its source (`make_source`): `sources/folder.py` (class folders), `csv.py` (a
label file), `cats_dogs.py`, `synthetic.py`. Evaluation, the callbacks, the feature cache and
export use only what this class offers: the classes, the train and validation samples, what was
excluded, and the loaders.
"""

from __future__ import annotations

import functools
import logging
from abc import abstractmethod
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler, WeightedRandomSampler, default_collate

from src.data.batch_transforms import DeviceBatches
from src.data.dataset import ImageFileDataset, ReadFailureTally, class_index
from src.data.device_decoding import collate_undecoded
from src.data.image_checks import checked_before, find_unusable
from src.data.images import pixel_limit
from src.data.progressive_resizing import ProgressiveResizing
from src.data.samples import Sample, relative_name, write_file_list
from src.data.source import SampleSource, SourceSamples
from src.data.split import assign_folds, fold_split, predefined_split, stratified_split
from src.data.transforms import DEFAULT_CROP_PCT, Augmentation, eval_pipeline
from src.utils.devices import default_num_workers, process_rank, wait_until
from src.utils.errors import UserError, require_int, require_number

log = logging.getLogger(__name__)

#: Largest / smallest class size from which a data set is reported as imbalanced.
IMBALANCE_RATIO = 3


class ImageDataModule(L.LightningDataModule):
    """Labelled images from `make_source()`, decode-checked and split (seeded and stratified,
    or as the source says), loaded and batched.

    Files that cannot be decoded are excluded and reported, never fed to the model. With
    `evaluate_all` there is no split: every usable image is in the validation set (a test set).
    With `multi_label`, targets are multi-hot vectors and a sample may have several classes;
    otherwise a sample with several is excluded.
    """

    def __init__(
        self,
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
        multi_label: bool = False,
        folds: int | None = None,
        fold: int = 0,
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
        if folds is not None:
            require_int(folds, "data.folds", 2)
            require_int(fold, "data.fold", 0)
            if fold >= folds:
                raise UserError(
                    f"data.fold={fold} with data.folds={folds}: folds count from 0, give "
                    f"data.fold=0 to {folds - 1}"
                )
        # Lightning stores these in checkpoints; with the class they rebuild this data module.
        self.save_hyperparameters(logger=False)
        self.hparams["_target_"] = f"{type(self).__module__}.{type(self).__qualname__}"
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
        self.multi_label = multi_label
        self.folds, self.fold = folds, fold
        self.source = self.make_source()
        self.batches = DeviceBatches(
            image_size,
            self.crop_pct,
            self.augmentation,
            self.progressive_resizing,
            max_read_failures,
            lambda: len(self.class_names),
            multi_label,
        )
        # None: a file past `max_read_failures` stops the process that meets it.
        self.read_failure_tallies: list[ReadFailureTally] | None = None
        self.train_samples: list[Sample] = []
        self.val_samples: list[Sample] = []
        self.class_names: list[str] = []
        #: Files and label-file rows left out, by name, with the reason.
        self.excluded: dict[str, str] = {}
        #: (train, val) samples found by `prepare_data` in this process, for `setup` to reuse.
        self._scanned: tuple[list[Sample], list[Sample]] | None = None

    @abstractmethod
    def make_source(self) -> SampleSource:
        """Where the samples come from, from this module's settings."""

    @property
    def root(self) -> Path:
        """The folder the images are under (file lists are written relative to it)."""
        return self.source.root

    # ------------------------------------------------------------- the files
    def prepare_data(self) -> None:
        """Fetch the data, decode-check new images (results are cached) and split.

        Idempotent within a process: `train` calls it before building the model (to know the
        classes) and Lightning calls it again in `fit`; `setup` reuses the scan made here.
        """
        if self._scanned is not None:
            return
        # Processes started together (srun, torchrun) share the data dir: the first one
        # fetches or makes the data, the others wait for it to be complete.
        if process_rank() != 0:
            wait_until(self.source.ready, self.prepare_timeout_s, f"the data in {self.root}")
        self.source.ensure()
        read = self.source.read(whole=self.evaluate_all)
        if not read.samples:
            name, reason = next(iter(read.excluded.items()), ("-", "-"))
            raise UserError(
                f"No usable image in {self.root}: {len(read.excluded)} left out, e.g. {name}: "
                f"{reason} (a label file's paths are relative to data.root, by default its folder)"
            )
        self.class_names = list(read.class_names)
        if len(self.class_names) < 2 and not self.evaluate_all:
            raise UserError(
                f"{self.root} holds a single class {self.class_names}; "
                "a classifier needs at least two classes"
            )
        self._scanned = self._split(self._usable(read), read)

    def _usable(self, read: SourceSamples) -> list[Sample]:
        """The source's samples less the files that do not decode and, for a single-label task,
        the samples with several labels; each class must keep one."""
        self.excluded = dict(read.excluded)
        paths = [sample.path for sample in read.samples]
        if self.cache_dir and process_rank() != 0:  # process 0 decode-checks them for all
            wait_until(
                lambda: checked_before(paths, self.root, self.max_pixels, self.cache_dir),
                self.prepare_timeout_s,
                f"the image checks of {self.root} in {self.cache_dir}",
            )
        unusable = find_unusable(paths, self.root, self.max_pixels, self.cache_dir)
        self.excluded |= {relative_name(path, self.root): why for path, why in unusable.items()}
        usable = [sample for sample in read.samples if sample.path not in unusable]
        if not self.multi_label:
            several = [sample for sample in usable if len(sample.labels) > 1]
            self.excluded |= {
                relative_name(sample.path, self.root): (
                    f"several labels ({', '.join(self.class_names[i] for i in sample.labels)}) "
                    "for a single-label task (task=multilabel takes them)"
                )
                for sample in several
            }
            usable = [sample for sample in usable if len(sample.labels) == 1]
        found = {label for sample in usable for label in sample.labels}
        for label, name in enumerate(self.class_names):
            if label not in found:
                raise UserError(f"Class {name!r} in {self.root} holds no usable image; add images")
        return usable

    def _split(
        self, usable: list[Sample], read: SourceSamples
    ) -> tuple[list[Sample], list[Sample]]:
        """(train, val): none trains with `evaluate_all`; with `folds`, fold `fold` validates (the
        source's folds, or stratified ones keeping its groups together); else the source's
        split, or a seeded, stratified one. Validation samples of a class that does not train
        are left out."""
        if self.evaluate_all:
            return [], usable
        if self.folds is not None or read.folds is not None:
            train, val = fold_split(usable, self.fold_assignment(usable, read), self.fold)
        elif read.sides is not None:
            train, val = predefined_split(usable, read.sides)
        else:
            train, val = stratified_split(usable, self.val_fraction, self.split_seed)
        trained = {label for sample in train for label in sample.labels}
        unseen = [sample for sample in val if not set(sample.labels) <= trained]
        for sample in unseen:
            missing = [self.class_names[i] for i in sample.labels if i not in trained]
            self.excluded[relative_name(sample.path, self.root)] = (
                f"label seen only in validation ({', '.join(missing)})"
            )
        return train, [sample for sample in val if set(sample.labels) <= trained]

    def fold_assignment(self, usable: list[Sample], read: SourceSamples) -> dict[Path, int]:
        """Each sample's fold: the source's (a label file's fold column), or `data.folds`
        stratified folds, seeded by `data.split_seed`."""
        if read.sides is not None:
            raise UserError(
                "data.folds with a split the data gives (train/ and val/ folders, or "
                "data.split_column): drop one of them"
            )
        if read.folds is not None:
            count = self.folds or max(read.folds.values()) + 1
            if self.fold >= count:
                raise UserError(f"data.fold={self.fold}: the data's folds are 0 to {count - 1}")
            return {sample.path: read.folds[sample.path] for sample in usable}
        return assign_folds(usable, self.folds, self.split_seed, read.groups)

    def setup(self, stage: str | None = None) -> None:
        if self.train_samples or self.val_samples:
            return
        if self._scanned is None:
            self.prepare_data()
        self.train_samples, self.val_samples = self._scanned
        counts = dict(zip(self.class_names, self.class_counts(self.samples), strict=True))
        log.info(
            "Data %s: %d train / %d val images; per class %s",
            self.root,
            len(self.train_samples),
            len(self.val_samples),
            counts,
        )
        if max(counts.values()) >= IMBALANCE_RATIO * max(1, min(counts.values())):
            log.warning(
                "Classes are imbalanced %s%s",
                counts,
                ""
                if self.balance_classes
                else "; data.balance_classes=true samples them evenly, or loss.class_weights=auto",
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
            self.write_file_lists(self.file_list_dir)

    def training_samples(self) -> list[Sample]:
        """The training split, from `prepare_data` on (before `setup`)."""
        if self._scanned is None:
            self.prepare_data()
        return self._scanned[0]

    @property
    def samples(self) -> list[Sample]:
        return self.train_samples + self.val_samples

    def write_file_lists(self, directory: Path) -> None:
        """train_files.txt, val_files.txt and excluded_files.txt (each with its reason)."""
        classes = self.class_names
        write_file_list(directory / "train_files.txt", self.train_samples, self.root, classes)
        write_file_list(directory / "val_files.txt", self.val_samples, self.root, classes)
        lines = [f"{name}\t{reason}" for name, reason in sorted(self.excluded.items())]
        (directory / "excluded_files.txt").write_text(
            "".join(line + "\n" for line in lines), encoding="utf-8"
        )

    @property
    def trainer_is_global_zero(self) -> bool:
        return self.trainer is None or self.trainer.is_global_zero

    # ---------------------------------------------------------- the targets
    @functools.cached_property
    def target(self) -> Callable[[Sample], Any]:
        """A sample's training target: its class index, or with `multi_label` a multi-hot
        float vector over the classes."""
        if not self.multi_label:
            return class_index
        return functools.partial(_multi_hot, len(self.class_names))

    def targets(self, samples: list[Sample]) -> torch.Tensor:
        """The targets of `samples`, stacked: [N] class indices or [N, C] multi-hot."""
        return default_collate([self.target(sample) for sample in samples])

    def class_counts(self, samples: list[Sample]) -> list[int]:
        """Images of each class among `samples` (an image with several classes counts in each)."""
        counts = Counter(label for sample in samples for label in sample.labels)
        return [counts[label] for label in range(len(self.class_names))]

    def balanced_sampler(self) -> WeightedRandomSampler:
        """Draws every class equally often (with replacement): for imbalanced data sets. An
        image with several classes is drawn as often as its rarest class asks."""
        counts = self.class_counts(self.train_samples)
        weights = torch.tensor(
            [max(1.0 / counts[label] for label in s.labels) for s in self.train_samples]
        )
        return WeightedRandomSampler(weights, num_samples=len(self.train_samples))

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
            target=self.target,
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
            target=self.target,
        )

    def train_transform(self):
        return self.augmentation.worker_transform(self.image_size, self.crop_pct)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return self.batches.before_transfer(batch, self.trainer)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return self.batches.after_transfer(batch, self.trainer)

    def count_read_failures_for_the_trainer(self) -> None:
        """From now on, files that become unreadable while training or validating are counted
        in tallies (`read_failures_past_limit`) instead of stopping the process that meets them,
        so that a callback can stop every process together."""
        self.batches.tally = ReadFailureTally(workers=0)
        self.read_failure_tallies = [self.batches.tally]

    def defer_device_failures(self) -> None:
        """From now on, a device failure while decoding on the device (`decode_on_device`) is
        recorded (`device_failure`) for a callback that stops every process together."""
        self.batches.defer_device_failures = True

    @property
    def device_failure(self) -> str | None:
        """What the device failed at while decoding, in this process, or None."""
        return self.batches.device_failure

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
            collate_fn=collate_undecoded if dataset.jpeg_bytes else None,
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


def _multi_hot(num_classes: int, sample: Sample) -> torch.Tensor:
    target = torch.zeros(num_classes)
    target[list(sample.labels)] = 1.0
    return target
