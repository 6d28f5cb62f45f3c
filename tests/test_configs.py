"""Every option of every config group composes and runs (a short training run each)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch

from src.config.compose import CONF_DIR
from src.train import train
from src.utils.errors import UserError
from tests.conftest import TINY
from tests.image_factory import write_broken_files, write_rgb_jpeg

#: Groups whose options are chosen on the command line; hydra and paths hold one option each.
GROUPS = ["data", "model", "freeze", "optimizer", "scheduler", "trainer", "callbacks", "logger",
          "paths", "hydra", "experiment", "debug"]  # fmt: skip


def group_options() -> list[tuple[str, str]]:
    options = []
    for group in GROUPS:
        files = sorted((CONF_DIR / group).glob("*.yaml"))
        options += [(group, f.stem) for f in files if not f.stem.startswith("_")]
    return options


#: trainer=ddp starts real processes: tests/test_ddp.py runs it through the command line.
IN_PROCESS_OPTIONS = [option for option in group_options() if option != ("trainer", "ddp")]


def test_every_group_has_options() -> None:
    found = {group for group, _ in group_options()}
    assert found == set(GROUPS)
    assert ("freeze", "layer3_4") in group_options()
    assert ("scheduler", "onecycle") in group_options()


def make_cats_dogs_zip(folder: Path) -> Path:
    """A small archive laid out like Microsoft's, broken files included."""
    source = folder / "zip_source"
    for index, name in enumerate(("Cat", "Dog")):
        for number in range(6):
            write_rgb_jpeg(
                source / "PetImages" / name / f"{number}.jpg", color=(200 * index, 80, 40)
            )
    write_broken_files(source / "PetImages" / "Dog")
    archive = folder / "kagglecatsanddogs_5340.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*")):
            zf.write(path, path.relative_to(source).as_posix())
    return archive


def overrides_for(group: str, option: str, stripes_root: Path, tmp_path: Path) -> list[str]:
    """The TINY run on the stripes folder, with `group=option` and what that option needs."""
    chosen = f"{group}={option}"
    if group == "data" and option == "cats_dogs":
        return [chosen, f"data.archive={make_cats_dogs_zip(tmp_path)}", *TINY]
    if group == "experiment":
        return [
            chosen,
            "data=synthetic",
            *TINY,
            "data.images_per_class=8",
            "data.generated_size=40",
        ]
    if group == "data" and option == "synthetic":
        return [chosen, *TINY, "data.images_per_class=8", "data.generated_size=40"]
    if group == "debug":
        return ["data=folder", f"data.root={stripes_root}", *TINY, chosen]
    return [chosen, "data=folder", f"data.root={stripes_root}", *TINY]


@pytest.mark.slow
@pytest.mark.parametrize(("group", "option"), IN_PROCESS_OPTIONS, ids=lambda v: str(v))
def test_option_composes_and_runs(group, option, stripes_root, tmp_path, make_config) -> None:
    cfg = make_config(overrides_for(group, option, stripes_root, tmp_path))
    if group in {"data", "model", "freeze", "optimizer", "scheduler", "trainer", "paths"}:
        assert cfg[group] is not None
    if group == "trainer" and option == "gpu" and not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU is available"):
            train(cfg)
        return
    best = train(cfg)
    assert best is not None and 0.0 <= best <= 1.0
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    if option != "fdr" and (group != "callbacks" or option == "default"):
        assert (checkpoints / "last.ckpt").is_file()
        assert (checkpoints / "best.ckpt").is_file()


@pytest.mark.parametrize(
    ("overrides", "lr"),
    [
        ([], 0.001 * 8**0.5),  # the default batch of 32
        (["data.batch_size=4"], 0.001),  # the tutorial's batch and learning rate
        (["data.batch_size=16"], 0.002),
        (["data.batch_size=64", "optimizer.lr=0.05"], 0.05),  # a number fixes it
        (["experiment=tutorial_finetune"], 0.001),
        (["optimizer=adamw", "data.batch_size=64"], 0.001),  # AdamW's does not scale
    ],
)
def test_sgd_learning_rate_follows_the_batch_size(make_config, overrides, lr) -> None:
    cfg = make_config(overrides)
    assert cfg.optimizer.lr == pytest.approx(lr)


def test_one_cycle_peaks_at_the_scaled_learning_rate(make_config) -> None:
    cfg = make_config(["scheduler=onecycle", "data.batch_size=64"])
    assert cfg.scheduler.scheduler.max_lr == pytest.approx(0.004)
