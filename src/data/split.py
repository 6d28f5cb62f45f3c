"""Which samples train and which validate: seeded and stratified, or as the source says."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence

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
