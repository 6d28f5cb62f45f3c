"""Every option of every config group composes and runs (a short training run each)."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from src.config.compose import CONF_DIR
from src.train import train
from src.utils.errors import UserError
from tests.helpers import TINY
from tests.helpers.image_factory import write_broken_files, write_rgb_jpeg

#: Groups whose options are chosen on the command line; hydra and paths hold one option each.
GROUPS = ["data", "model", "freeze", "optimizer", "scheduler", "trainer", "callbacks", "logger",
          "paths", "hydra", "experiment", "debug", "weight_averaging", "early_stopping",
          "tune"]  # fmt: skip
#: Groups that are a node of the composed config (the others name callbacks or loggers, or set
#: values in other nodes).
NODE_GROUPS = {"data", "model", "freeze", "optimizer", "scheduler", "trainer", "paths"}


def group_options() -> list[tuple[str, str]]:
    options = []
    for group in GROUPS:
        files = sorted((CONF_DIR / group).glob("*.yaml"))
        options += [(group, f.stem) for f in files if not f.stem.startswith("_")]
    return options


#: trainer=ddp starts real processes: tests/sweeps/test_ddp.py runs it through the command line.
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


# What a run with `group=option` (given as `chosen`) is started with: the TINY run and the data
# the option needs, from the stripes folder and the test's tmp_path.
def on_the_stripes(chosen: str, stripes_root: Path, tmp_path: Path) -> list[str]:
    return [chosen, "data=folder", f"data.root={stripes_root}", *TINY]


def on_the_stripes_chosen_last(chosen: str, stripes_root: Path, tmp_path: Path) -> list[str]:
    return ["data=folder", f"data.root={stripes_root}", *TINY, chosen]


def on_a_cats_dogs_zip(chosen: str, stripes_root: Path, tmp_path: Path) -> list[str]:
    return [chosen, f"data.archive={make_cats_dogs_zip(tmp_path)}", *TINY]


def on_generated_stripes(chosen: str, stripes_root: Path, tmp_path: Path) -> list[str]:
    return [chosen, *TINY, "data.images_per_class=8", "data.generated_size=40"]


def on_data_synthetic(chosen: str, stripes_root: Path, tmp_path: Path) -> list[str]:
    """Experiments choose their own data set: this replaces it with small generated stripes."""
    return [chosen, "data=synthetic", *TINY, "data.images_per_class=8", "data.generated_size=40"]


#: Options, or whole groups, whose run is not `on_the_stripes`.
OTHER_RUNS: dict[tuple[str, str] | str, Callable[[str, Path, Path], list[str]]] = {
    ("data", "cats_dogs"): on_a_cats_dogs_zip,
    ("data", "synthetic"): on_generated_stripes,
    "experiment": on_data_synthetic,
    "debug": on_the_stripes_chosen_last,
}


@dataclass(frozen=True)
class OptionRun:
    """A short training run with `group=option`, and what it must show."""

    group: str
    option: str
    #: The run's overrides, from (`group=option`, the stripes folder, tmp_path).
    overrides: Callable[[str, Path, Path], list[str]]
    #: Config nodes the option must leave set.
    nodes: tuple[str, ...]
    #: Files the run must leave in `<run dir>/checkpoints`.
    checkpoints: tuple[str, ...]


def option_run(group: str, option: str) -> OptionRun:
    overrides = OTHER_RUNS.get((group, option)) or OTHER_RUNS.get(group, on_the_stripes)
    # debug=fdr runs one batch, which Lightning never checkpoints; callbacks options other than
    # the default leave out the checkpoint callbacks.
    writes_checkpoints = option != "fdr" and (group != "callbacks" or option == "default")
    return OptionRun(
        group,
        option,
        overrides,
        nodes=(group,) if group in NODE_GROUPS else (),
        checkpoints=("last.ckpt", "best.ckpt") if writes_checkpoints else (),
    )


NEEDS_A_GPU = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA GPU here: test_gpu_option_without_a_gpu_is_refused covers trainer=gpu",
)
OPTION_RUNS = [
    pytest.param(
        option_run(group, option),
        id=f"{group}-{option}",
        marks=[NEEDS_A_GPU] if (group, option) == ("trainer", "gpu") else [],
    )
    for group, option in IN_PROCESS_OPTIONS
]


@pytest.mark.slow
@pytest.mark.parametrize("run", OPTION_RUNS)
def test_option_composes_and_runs(run: OptionRun, stripes_root, tmp_path, make_config) -> None:
    cfg = make_config(run.overrides(f"{run.group}={run.option}", stripes_root, tmp_path))
    for node in run.nodes:
        assert cfg[node] is not None, node
    best = train(cfg)
    assert best is not None and 0.0 <= best <= 1.0
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    for name in run.checkpoints:
        assert (checkpoints / name).is_file(), name


def test_gpu_option_without_a_gpu_is_refused(
    stripes_root, tmp_path, make_config, monkeypatch
) -> None:
    """trainer=gpu where no CUDA GPU is (made to look so on a machine that has one)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = make_config(on_the_stripes("trainer=gpu", stripes_root, tmp_path))
    assert cfg.trainer is not None
    with pytest.raises(UserError, match="no CUDA GPU is available"):
        train(cfg)
