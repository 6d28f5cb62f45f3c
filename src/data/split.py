"""Which samples train and which validate: seeded and stratified, or as the source says."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from src.data.samples import Sample
from src.utils.errors import UserError

#: The values a source's split may give a sample.
TRAIN, VAL = "train", "val"


def stratum(sample: Sample, frequency: Mapping[int, int]) -> int:
    """The class a sample is stratified by: its label, or of several its rarest (so that every
    class is on both sides where it can be)."""
    return min(sample.labels, key=lambda label: (frequency[label], label))


def stratified_split(
    samples: Sequence[Sample], val_fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Split each class by `val_fraction`, shuffled by `seed`: the same seed, the same split.

    Every class with at least two images gets at least one image on each side.
    """
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"data.val_fraction={val_fraction} must lie strictly between 0 and 1")
    rng = random.Random(seed)
    frequency = Counter(label for sample in samples for label in sample.labels)
    by_stratum: dict[int, list[Sample]] = {}
    for sample in sorted(samples, key=lambda s: (s.labels, str(s.path))):
        by_stratum.setdefault(stratum(sample, frequency), []).append(sample)
    train: list[Sample] = []
    val: list[Sample] = []
    for label in sorted(by_stratum):
        members = by_stratum[label]
        rng.shuffle(members)
        n_val = round(len(members) * val_fraction)
        if len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        val.extend(members[:n_val])
        train.extend(members[n_val:])
    return train, val


def predefined_split(
    samples: Sequence[Sample], sides: Mapping[object, str]
) -> tuple[list[Sample], list[Sample]]:
    """The split a source gives (`train/` and `val/` folders, a CSV's split column): `sides`
    maps each sample's path to `train` or `val`."""
    train = [sample for sample in samples if sides[sample.path] == TRAIN]
    val = [sample for sample in samples if sides[sample.path] == VAL]
    return train, val


def assign_folds(
    samples: Sequence[Sample],
    folds: int,
    seed: int,
    groups: Mapping[Path, str] | None = None,
) -> dict[Path, int]:
    """Each sample's fold (0 to `folds` - 1), seeded: the same seed, the same folds.

    Stratified by iterative stratification (Sechidis et al. 2011), which balances every class
    across the folds also when images have several: the rarest class first, each of its images
    to the fold that most lacks that class. With `groups` (sample path -> group), a group's
    images (the same animal, patient or scene) move together, into one fold.
    """
    rng = random.Random(seed)
    units: dict[str, list[Sample]] = {}
    for sample in sorted(samples, key=lambda s: str(s.path)):
        key = groups[sample.path] if groups is not None else str(sample.path)
        units.setdefault(key, []).append(sample)
    counts = {
        key: Counter(label for sample in members for label in sample.labels)
        for key, members in units.items()
    }
    totals = Counter(label for sample in samples for label in sample.labels)
    wanted = [{label: n / folds for label, n in totals.items()} for _ in range(folds)]
    room = [len(samples) / folds] * folds
    left = Counter(totals)
    fold_of: dict[str, int] = {}
    by_label: dict[int, list[str]] = {}
    for key in rng.sample(list(units), len(units)):
        for label in counts[key]:
            by_label.setdefault(label, []).append(key)
    while any(left.values()):
        rarest = [label for label, n in left.items() if n > 0]
        label = min(rarest, key=lambda candidate: (left[candidate], rng.random()))
        for key in by_label[label]:
            if key in fold_of:
                continue
            fold = max(range(folds), key=lambda j: (wanted[j][label], room[j], rng.random()))
            fold_of[key] = fold
            room[fold] -= len(units[key])
            for other, n in counts[key].items():
                wanted[fold][other] -= n
                left[other] -= n
    return {s.path: fold_of[key] for key, members in units.items() for s in members}


def fold_split(
    samples: Sequence[Sample], fold_of: Mapping[Path, int], fold: int
) -> tuple[list[Sample], list[Sample]]:
    """(train, val): fold `fold` validates, the others train."""
    train = [sample for sample in samples if fold_of[sample.path] != fold]
    val = [sample for sample in samples if fold_of[sample.path] == fold]
    return train, val
