"""Every option of every config group takes effect: a short run with the option, and a check of
what the option promises, not only that the run finished.

`EFFECTS` maps each (group, option) found under conf/ to its run and its check; `ELSEWHERE` names
the options that other tests run, and where. An option in neither fails
test_every_option_has_an_effect_check and its own case of test_option_takes_effect, so a new
option file cannot be left unchecked.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from lightning.pytorch.callbacks import EarlyStopping
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.config.compose import CONF_DIR, compose_config
from src.config.instantiation import to_plain
from src.finetuning.optimization import OWN_KEYS
from src.train import train
from src.utils.errors import UserError
from tests.helpers import TINY
from tests.helpers.image_factory import unusable_names, write_broken_files, write_rgb_jpeg
from tests.helpers.probe import Probe, assert_trained, probed


def group_options() -> list[tuple[str, str]]:
    """(group, option) for every option file under conf/, nested groups (hydra/launcher) too."""
    files = CONF_DIR.glob("*/**/*.yaml")
    options = {(f.parent.relative_to(CONF_DIR).as_posix(), f.stem) for f in files}
    return sorted(option for option in options if not option[1].startswith("_"))


#: Options run by other tests, and why not here.
ELSEWHERE = {
    ("trainer", "ddp"): "starts processes: tests/sweeps/test_ddp.py runs it from the command line",
    ("hparams_search", "optuna"): "a multirun: tests/sweeps/test_hparams_search.py runs a sweep",
    ("hydra/launcher", "slurm"): "submits SLURM jobs: tests/sweeps/test_hparams_search.py reads "
    "the sbatch script it writes",
}


# ------------------------------------------------------------------------------------- the runs
@dataclass
class Run:
    """A finished run with `group=option`, or only its config (`Effect.run` None)."""

    cfg: DictConfig
    #: `paths.root_dir`: the data, the caches and the run dir are under it.
    workdir: Path
    #: Hydra's choice in each config group.
    choices: dict[str, str | None]
    probe: Probe | None = None
    best: float | None = None

    @property
    def output_dir(self) -> Path:
        return Path(self.cfg.paths.output_dir)

    @property
    def trainer(self) -> L.Trainer:
        return self.probe.trainer

    def checkpoint(self, name: str = "last.ckpt") -> dict[str, Any]:
        return torch.load(self.output_dir / "checkpoints" / name, weights_only=True)


#: The overrides of a run, from (`group=option`, the stripes folder, the run's workdir).
Setup = Callable[[str, Path, Path], list[str]]


def tiny_without(*keys: str) -> list[str]:
    """TINY but for the `keys` that the option sets itself."""
    return [o for o in TINY if o.split("=", 1)[0] not in keys]


def on_the_stripes(chosen: str, stripes_root: Path, workdir: Path) -> list[str]:
    return [chosen, "data=folder", f"data.root={stripes_root}", *TINY]


def the_defaults(chosen: str, stripes_root: Path, workdir: Path) -> list[str]:
    """The default of every group: one run (per test process) for all the default options."""
    return ["data=folder", f"data.root={stripes_root}", *TINY]


def the_model_on_the_stripes(chosen: str, stripes_root: Path, workdir: Path) -> list[str]:
    return [chosen, "data=folder", f"data.root={stripes_root}", *tiny_without("model.name")]


def with_the_debug_limits(chosen: str, stripes_root: Path, workdir: Path) -> list[str]:
    """TINY but for its length, which the debug option sets (an override on the command line
    would win over the option's, wherever it stands)."""
    length = ("trainer.max_epochs", "trainer.limit_train_batches", "trainer.limit_val_batches")
    return [chosen, "data=folder", f"data.root={stripes_root}", *tiny_without(*length)]


def on_a_cats_dogs_zip(chosen: str, stripes_root: Path, workdir: Path) -> list[str]:
    return [chosen, f"data.archive={make_cats_dogs_zip(workdir)}", *TINY]


def on_a_label_file(chosen: str, stripes_root: Path, workdir: Path) -> list[str]:
    """The stripes listed in a label file (paths relative to data.root), and one row of a file
    that does not exist."""
    rows = [f"{path},{label}" for path, label in class_folder_images(stripes_root).items()]
    label_file = workdir / "labels.csv"
    label_file.write_text("path,label\n" + "\n".join([*rows, "nowhere.png,horizontal"]) + "\n")
    return [chosen, f"data.csv={label_file}", f"data.root={stripes_root}", *TINY]


def on_generated_stripes(chosen: str, stripes_root: Path, workdir: Path) -> list[str]:
    return [chosen, *TINY, "data.images_per_class=8", "data.generated_size=40"]


def the_preset_on_generated_stripes(chosen: str, stripes_root: Path, workdir: Path) -> list[str]:
    """An experiment with its own model and batch size, at TINY's image size and length, on
    small generated stripes (the demo's own data set; for the others, in place of Cats vs Dogs):
    32 training images, so that every batch is full."""
    sized = [*tiny_without("model.name", "data.batch_size"), "data.images_per_class=20"]
    return [chosen, "data=synthetic", *sized, "data.generated_size=40"]


def make_cats_dogs_zip(folder: Path) -> Path:
    """A small archive laid out like Microsoft's, broken files included; the names of those that
    must be quarantined go to `<folder>/unusable.txt`."""
    source = folder / "zip_source"
    for index, name in enumerate(("Cat", "Dog")):
        for number in range(6):
            write_rgb_jpeg(
                source / "PetImages" / name / f"{number}.jpg", color=(200 * index, 80, 40)
            )
    broken = write_broken_files(source / "PetImages" / "Dog")
    (folder / "unusable.txt").write_text("\n".join(sorted(unusable_names(broken))))
    archive = folder / "kagglecatsanddogs_5340.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*")):
            zf.write(path, path.relative_to(source).as_posix())
    return archive


def start(
    chosen: str, setup: Setup | None, extra: tuple[str, ...], stripes: Path, workdir: Path
) -> Run:
    """Compose the run's config as the entry point does; train it under a `Probe` unless
    `setup` is None (then the config is composed with `chosen` alone)."""
    overrides = [chosen] if setup is None else [*setup(chosen, stripes, workdir), *extra]
    cfg = compose_config("train", overrides, workdir)
    run = Run(cfg, workdir, dict(HydraConfig.get().runtime.choices))
    if setup is not None:
        with probed() as run.probe:
            run.best = train(cfg)
    return run


@pytest.fixture(scope="session")
def default_run(stripes_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Run]:
    """The run of `the_defaults`, made the first time a check asks for it in this process."""

    @functools.cache
    def made() -> Run:
        return start("", the_defaults, (), stripes_root, tmp_path_factory.mktemp("defaults"))

    return made


# ------------------------------------------------------------------------------------ the checks
Check = Callable[[Run], None]


def all_of(*checks: Check) -> Check:
    def check(run: Run) -> None:
        for each in checks:
            each(run)

    return check


# Freeze: which parameter names train, epoch by epoch (prefixes; "" is every name).
EVERYTHING = ("",)
HEAD = ("fc.",)
LAYER4 = ("layer4.", "fc.")
LAYER3_4 = ("layer3.", "layer4.", "fc.")


def trains(*epochs: tuple[str, ...]) -> Check:
    """Epoch by epoch, exactly the parameters named with these prefixes train and change, and
    nothing else of the network does (`assert_trained`)."""

    def check(run: Run) -> None:
        assert_trained(run.probe, *epochs)

    return check


def uses_cached_features(cached: bool) -> Check:
    """With the feature cache: one features file written, and every training batch is of
    features (2-D); without: no file, and every batch is of images."""

    def check(run: Run) -> None:
        written = list((Path(run.cfg.paths.cache_dir) / "features").glob("*.pt"))
        assert len(written) == (1 if cached else 0)
        assert {len(step.inputs) for step in run.probe.steps} == {2 if cached else 4}

    return check


# Optimizer and scheduler.
#: What each optimizer keeps per parameter (checkpoints do not name the optimizer's class).
STATE = {"SGD": {"momentum_buffer"}, "AdamW": {"step", "exp_avg", "exp_avg_sq"}}


def optimizer(kind: str, **values: Any) -> Check:
    """The optimizer that trained, and its state in last.ckpt, are `kind` with `values` in the
    first group (the head's); `lr` is the group's rate before any schedule."""

    def check(run: Run) -> None:
        live = run.trainer.optimizers[0]
        assert type(live).__name__ == kind
        saved = run.checkpoint()["optimizer_states"][0]
        for groups in (live.param_groups, saved["param_groups"]):
            assert group_settings(groups[0], values) == values
            # AdamW is Adam with decoupled weight decay: only this tells them apart
            assert groups[0].get("decoupled_weight_decay", False) == (kind == "AdamW")
        assert set(next(iter(saved["state"].values()))) == STATE[kind]

    return check


def group_settings(group: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The group's values of `keys` (its starting rate for `lr`; lists for tuples)."""

    def value(key: str) -> Any:
        found = group.get("initial_lr", group["lr"]) if key == "lr" else group[key]
        return list(found) if isinstance(found, tuple) else found

    return {key: value(key) for key in keys}


def optimizer_as_configured(kind: str) -> Check:
    """`kind` with every value its config group sets (lr, momentum or betas, weight decay, ...)."""

    def check(run: Run) -> None:
        configured = to_plain(run.cfg.optimizer)
        assert configured.pop("_target_") == f"torch.optim.{kind}"
        for key in OWN_KEYS:  # ours (the groups' rates), not the optimizer's
            configured.pop(key)
        optimizer(kind, **configured)(run)

    return check


def scheduler(kind: str, **values: Any) -> Check:
    def check(run: Run) -> None:
        (config,) = run.trainer.lr_scheduler_configs
        assert type(config.scheduler).__name__ == kind
        assert {key: getattr(config.scheduler, key) for key in values} == values

    return check


#: The learning rate of a step: (optimizer.lr, scheduler.scheduler, step index, epoch, steps).
Schedule = Callable[[float, DictConfig, int, int, int], float]


def constant(lr: float, settings: DictConfig, index: int, epoch: int, total: int) -> float:
    return lr


def step_decay(lr: float, settings: DictConfig, index: int, epoch: int, total: int) -> float:
    return lr * settings.gamma ** (epoch // settings.step_size)


def cosine(lr: float, settings: DictConfig, index: int, epoch: int, total: int) -> float:
    floor = settings.eta_min
    return floor + (lr - floor) * (1 + math.cos(math.pi * epoch / settings.T_max)) / 2


def one_cycle(lr: float, settings: DictConfig, index: int, epoch: int, total: int) -> float:
    """Up from max_lr / 25 to max_lr over the first pct_start of the steps, then down to
    max_lr / 25 / 1e4, each along a half cosine (torch's defaults, unless configured)."""
    peak = settings.max_lr
    start = peak / settings.get("div_factor", 25.0)
    end = start / settings.get("final_div_factor", 1e4)
    top = settings.pct_start * total - 1  # the step at the peak
    if index <= top:
        return halfway_cosine(start, peak, index / top)
    return halfway_cosine(peak, end, (index - top) / (total - 1 - top))


def halfway_cosine(start: float, end: float, fraction: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2


def follows(schedule: Schedule) -> Check:
    """Each step trained at the rate that the schedule's closed form gives (the first optimizer
    group's), and LearningRateMonitor logged each epoch's first rate."""

    def check(run: Run) -> None:
        steps = run.probe.steps
        lr, settings = float(run.cfg.optimizer.lr), run.cfg.scheduler.scheduler
        expected = [
            schedule(lr, settings, i, step.epoch, len(steps)) for i, step in enumerate(steps)
        ]
        assert [step.lrs[0] for step in steps] == pytest.approx(expected, rel=1e-9)
        assert schedule is constant or len(set(expected)) > 1  # long enough to tell them apart
        first_of_each_epoch = [step.lrs[0] for step in steps if step.batch == 0]
        assert logged_rates(run) == pytest.approx(first_of_each_epoch, rel=1e-6)

    return check


def logged_rates(run: Run) -> list[float]:
    """The first optimizer group's rate that LearningRateMonitor logged, epoch by epoch."""
    rows = metrics_rows(run)
    column = min(key for key in rows[0] if key.startswith("lr-"))
    return [float(row[column]) for row in rows if row[column]]


def metrics_rows(run: Run) -> list[dict[str, str]]:
    with open(run.output_dir / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def backbone_rate(multiplier: float, epoch: int) -> Check:
    """At `epoch`, the head's group first and every other group at `multiplier` times its rate."""

    def check(run: Run) -> None:
        (head, head_lr), *others = run.probe.groups[epoch]
        assert head == "head" and others
        assert [lr for _, lr in others] == [pytest.approx(head_lr * multiplier)] * len(others)

    return check


def batches_of(size: int) -> Check:
    def check(run: Run) -> None:
        assert {(step.inputs[0], step.targets[0]) for step in run.probe.steps} == {(size, size)}

    return check


def label_smoothing(value: float) -> Check:
    def check(run: Run) -> None:
        assert run.trainer.lightning_module.criterion.label_smoothing == value

    return check


def resnet_stages(*blocks: int) -> Check:
    """The trained network's four stages hold these numbers of basic (two-convolution) blocks."""

    def check(run: Run) -> None:
        state = run.checkpoint()["state_dict"]
        counts = [
            len({key.split(".")[2] for key in state if key.startswith(f"net.layer{stage}.")})
            for stage in range(1, 5)
        ]
        assert counts == list(blocks)
        assert not any(".conv3." in key for key in state)  # not bottleneck blocks

    return check


def trains_with_the_loss(name: str, gamma: float) -> Check:
    """The module's loss is `name` with `gamma` (focal's down-weighting; cross-entropy: 0): on a
    fixed batch it gives (1 - p_true) ** gamma times each image's cross-entropy."""

    def check(run: Run) -> None:
        criterion = run.trainer.lightning_module.criterion
        assert run.checkpoint()["hyper_parameters"]["loss"]["name"] == name
        logits, targets = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
        p_true = logits.softmax(dim=1)[:, 0]
        expected = ((1 - p_true) ** gamma * -p_true.log()).mean()
        assert float(criterion.cpu()(logits, targets)) == pytest.approx(float(expected), rel=1e-5)

    return check


def built_by(source: str, module: str) -> Check:
    """The network came from `source` (the class's module is `module`), and the checkpoint says
    so, so that evaluate and predict rebuild it from the same source."""

    def check(run: Run) -> None:
        assert type(run.trainer.lightning_module.net).__module__ == module
        assert run.checkpoint()["hyper_parameters"]["model"]["source"] == source

    return check


# Where the run ran, and how long.
def runs_on(device: str) -> Check:
    def check(run: Run) -> None:
        assert run.probe.device.type == device
        assert str(run.trainer.precision) == run.cfg.trainer.precision

    return check


def runs_on_the_gpu_in_mixed_precision(run: Run) -> None:
    runs_on("cuda")(run)
    half = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}[run.cfg.trainer.precision]
    assert {output for name, _, output in run.probe.dtypes if name == "head"} == {half}
    assert torch.backends.cudnn.benchmark


def trains_batches(epochs: int, batches: int) -> Check:
    def check(run: Run) -> None:
        expected = [(epoch, batch) for epoch in range(epochs) for batch in range(batches)]
        assert [(step.epoch, step.batch) for step in run.probe.steps] == expected
        assert run.trainer.global_step == epochs * batches

    return check


def one_batch_of_each(run: Run) -> None:
    trains_batches(1, 1)(run)
    assert run.probe.val_batches == 1


def stops_when_stalled(run: Run) -> None:
    """Patience 1 and a min_delta that no accuracy can make: the second of 4 epochs is the last."""
    (stopper,) = (c for c in run.trainer.callbacks if isinstance(c, EarlyStopping))
    assert run.trainer.max_epochs == 4 and stopper.stopped_epoch == 1
    assert {step.epoch for step in run.probe.steps} == {0, 1}
    assert run.checkpoint()["epoch"] == 1


def averages_the_weights(run: Run) -> None:
    """last.ckpt holds the exponential moving average (at the configured decay) of the weights
    after each optimizer step, not the last step's weights (which it keeps beside)."""
    decay = run.cfg.weight_averaging.decay
    after_step = run.probe.after_step
    average = dict(after_step[0])
    for weights in after_step[1:]:
        average = {name: decay * average[name] + (1 - decay) * w for name, w in weights.items()}
    saved = run.checkpoint()
    assert int(saved["averaging_state"]["n_averaged"]) == len(after_step) == 4
    for name, expected in average.items():
        assert torch.allclose(saved["state_dict"][f"net.{name}"], expected, rtol=0, atol=1e-7)
        assert torch.equal(saved["current_model_state"][f"net.{name}"], after_step[-1][name])
        assert not torch.allclose(expected, after_step[-1][name])


def trains_at_the_suggestion(run: Run) -> None:
    assert (run.output_dir / "lr_find.png").read_bytes().startswith(b"\x89PNG")
    suggestion = run.probe.lr_suggestion
    assert suggestion is not None and suggestion != run.cfg.optimizer.lr
    steps = run.probe.steps
    assert [step.lrs for step in steps] == [(pytest.approx(suggestion),)] * len(steps)
    assert run.checkpoint()["hyper_parameters"]["optimizer"]["lr"] == suggestion


# Files the run leaves.
def default_callbacks() -> set[str]:
    entries = OmegaConf.load(CONF_DIR / "callbacks" / "default.yaml").values()
    return {entry._target_.rsplit(".", 1)[1] for entry in entries}


def has_the_default_callbacks(present: bool) -> Check:
    """Default: every callback of the default group in the trainer; best.ckpt and last.ckpt, and
    the evaluation report of the best. None: neither those callbacks nor their files."""

    def check(run: Run) -> None:
        callbacks = {type(callback).__name__ for callback in run.trainer.callbacks}
        written = {path.name for path in run.output_dir.glob("checkpoints/*.ckpt")}
        report = run.output_dir / "evaluation" / "metrics.json"
        if present:
            assert default_callbacks() <= callbacks
            assert written == {"best.ckpt", "last.ckpt"}
            assert run.checkpoint()["global_step"] == run.trainer.global_step
            assert json.loads(report.read_text())["accuracy"] == pytest.approx(run.best)
        else:  # Lightning's own progress bar is Rich's when rich is installed
            assert not (default_callbacks() - {"RichProgressBar"}) & callbacks
            assert not written and not report.parent.exists()

    return check


def leaves_logs(tensorboard: bool, csv_file: bool) -> Check:
    """TensorBoard events and/or csv/metrics.csv, each with every epoch's val/acc; nothing of a
    logger not chosen."""

    def check(run: Run) -> None:
        epochs = len(run.probe.changed)
        assert len(run.trainer.loggers) == tensorboard + csv_file
        events = run.output_dir / "tensorboard"
        assert events.is_dir() == tensorboard
        if tensorboard:
            accumulator = EventAccumulator(str(events))
            accumulator.Reload()
            assert len(accumulator.Scalars("val/acc")) == epochs
        assert (run.output_dir / "csv").is_dir() == csv_file
        if csv_file:
            assert len([row for row in metrics_rows(run) if row["val/acc"]]) == epochs

    return check


def listed_files(run: Run) -> dict[str, str]:
    """relative path -> class, from the run's train_files.txt and val_files.txt (disjoint)."""
    splits = []
    for name in ("train_files.txt", "val_files.txt"):
        lines = (run.output_dir / name).read_text(encoding="utf-8").splitlines()
        splits.append(dict(line.split("\t") for line in lines))
    train_files, val_files = splits
    assert train_files and val_files and not train_files.keys() & val_files.keys()
    return train_files | val_files


def class_folder_images(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.parent.name for p in root.glob("*/*") if p.is_file()}


def lists_the_folder(run: Run) -> None:
    """The run split exactly the images of data.root's class folders."""
    assert listed_files(run) == class_folder_images(Path(run.cfg.data.root))


def lists_the_label_files_rows(run: Run) -> None:
    """The run split exactly the label file's usable rows, and listed the one it left out."""
    assert listed_files(run) == class_folder_images(Path(run.cfg.data.root))
    excluded = (run.output_dir / "excluded_files.txt").read_text()
    assert excluded.startswith("nowhere.png (") and excluded.endswith("\tmissing file\n")


def generates_images(run: Run) -> None:
    """images_per_class images of generated_size px per class under the data dir, and the run
    trained on them."""
    data = run.cfg.data
    root = Path(data.root)
    assert root.is_relative_to(run.workdir / "data")
    images = class_folder_images(root)
    for name in ("horizontal", "vertical"):
        assert sum(1 for label in images.values() if label == name) == data.images_per_class
    assert {Image.open(root / path).size for path in images} == {(data.generated_size,) * 2}
    lists_the_folder(run)


def extracts_and_quarantines(run: Run) -> None:
    """The local archive extracted into the data dir, its unusable files moved to quarantine/
    and listed in prepare_report.txt, and the run trained on the others."""
    root = Path(run.cfg.data.root)  # <data dir>/cats_dogs/PetImages
    assert root.is_relative_to(run.workdir / "data")
    quarantine = root.parent / "quarantine"
    moved = {p.relative_to(quarantine).as_posix() for p in quarantine.rglob("*") if p.is_file()}
    unusable = set((run.workdir / "unusable.txt").read_text().split())
    assert {Path(path).name for path in moved} == unusable
    kept = class_folder_images(root)
    with zipfile.ZipFile(run.cfg.data.archive) as zf:
        archived = {name for name in zf.namelist() if not name.endswith("/")}
    assert {f"PetImages/{path}" for path in kept.keys() | moved} == archived
    report = (root.parent / "prepare_report.txt").read_text()
    assert f"Moved {len(unusable)} unusable files" in report
    assert all(Path(path).name in report for path in moved)
    assert listed_files(run) == kept


def writes_under_its_paths(run: Run) -> None:
    """Data and caches under <root_dir>/data, the run's files in its output dir; nothing
    elsewhere under the root."""
    paths, root = run.cfg.paths, run.workdir
    assert Path(paths.data_dir) == root / "data" and Path(paths.log_dir) == root / "outputs"
    assert Path(paths.cache_dir) == root / "data" / ".cache"
    assert any(Path(paths.cache_dir).iterdir())  # the image checks' cache
    assert (run.output_dir / "checkpoints" / "last.ckpt").is_file()
    assert {path.name for path in root.iterdir()} == {"data", run.output_dir.name}


def names_run_dirs_to_the_microsecond(run: Run) -> None:
    """Run and sweep dirs under paths.log_dir/<task name>, named by the time to the microsecond
    (no two runs share one); jobs keep the directory they start in; a sweep ends with its
    report."""
    stamp = r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\d{6}"
    log_dir = re.escape(str(run.workdir / "outputs"))
    run_dirs = []
    for _ in range(2):  # two runs started one after the other
        compose_config("train", [], run.workdir)
        hydra = HydraConfig.get()
        run_dirs.append(hydra.run.dir)
        assert re.fullmatch(f"{log_dir}/train/{stamp}", hydra.run.dir)
        assert re.fullmatch(f"{log_dir}/train_multirun/{stamp}", hydra.sweep.dir)
        assert hydra.job.chdir is False
        assert get_class(hydra.callbacks.sweep_report._target_).__name__ == "SweepReport"
    assert run_dirs[0] != run_dirs[1]


# ------------------------------------------------------------------------------------ the table
@dataclass(frozen=True)
class Effect:
    """How a run with the option goes, and what it must show."""

    check: Check
    #: The run's overrides; None: the check needs the composed config only.
    run: Setup | None = on_the_stripes
    #: Overrides that make the effect visible in a TINY run (a decay within two epochs, ...).
    extra: tuple[str, ...] = ()


TUTORIAL_SGD = optimizer("SGD", lr=0.001, momentum=0.9, weight_decay=0.0, nesterov=False)
TUTORIAL_STEPLR = scheduler("StepLR", step_size=7, gamma=0.1)
RESNET34 = resnet_stages(3, 4, 6, 3)
DEFAULT_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

EFFECTS: dict[tuple[str, str], Effect] = {
    ("callbacks", "default"): Effect(has_the_default_callbacks(True), the_defaults),
    ("callbacks", "none"): Effect(has_the_default_callbacks(False)),
    ("data", "cats_dogs"): Effect(extracts_and_quarantines, on_a_cats_dogs_zip),
    ("data", "csv"): Effect(lists_the_label_files_rows, on_a_label_file),
    ("data", "folder"): Effect(lists_the_folder, the_defaults),
    ("data", "synthetic"): Effect(generates_images, on_generated_stripes),
    ("debug", "fdr"): Effect(one_batch_of_each, with_the_debug_limits),
    ("debug", "limit"): Effect(trains_batches(2, 3), with_the_debug_limits),
    ("early_stopping", "val_acc"): Effect(  # no accuracy improves by 2: a stall from epoch 1
        stops_when_stalled,
        extra=("early_stopping.patience=1", "early_stopping.min_delta=2", "trainer.max_epochs=4"),
    ),
    ("experiment", "demo"): Effect(
        all_of(
            runs_on("cpu"),
            generates_images,
            resnet_stages(2, 2, 2, 2),
            optimizer("AdamW", lr=0.001, weight_decay=0.01),
            follows(cosine),
            batches_of(16),
            trains(EVERYTHING, EVERYTHING),
        ),
        the_preset_on_generated_stripes,
    ),
    ("experiment", "modern"): Effect(
        all_of(
            RESNET34,
            optimizer("AdamW", lr=0.001, weight_decay=0.05),
            follows(cosine),
            batches_of(32),
            uses_cached_features(False),
            trains(HEAD, EVERYTHING),
            backbone_rate(0.1, epoch=1),
            label_smoothing(0.1),
        ),
        the_preset_on_generated_stripes,
    ),
    ("experiment", "tutorial_feature_extractor"): Effect(
        all_of(
            RESNET34,
            TUTORIAL_SGD,
            TUTORIAL_STEPLR,
            batches_of(4),
            uses_cached_features(False),
            trains(HEAD, HEAD),
        ),
        the_preset_on_generated_stripes,
    ),
    ("experiment", "tutorial_finetune"): Effect(
        all_of(
            RESNET34, TUTORIAL_SGD, TUTORIAL_STEPLR, batches_of(4), trains(EVERYTHING, EVERYTHING)
        ),
        the_preset_on_generated_stripes,
    ),
    ("freeze", "all"): Effect(all_of(trains(HEAD, HEAD), uses_cached_features(True))),
    ("freeze", "gradual"): Effect(trains(HEAD, LAYER4)),  # layer4 from epoch 1, layer3 from 2
    ("freeze", "last_blocks"): Effect(trains(LAYER3_4, LAYER3_4)),  # 2 blocks: ResNet's stages
    ("freeze", "layer3_4"): Effect(trains(LAYER3_4, LAYER3_4)),
    ("freeze", "layer4"): Effect(trains(LAYER4, LAYER4)),
    ("freeze", "none"): Effect(trains(EVERYTHING, EVERYTHING), the_defaults),
    ("hydra", "default"): Effect(names_run_dirs_to_the_microsecond, run=None),
    ("logger", "csv"): Effect(leaves_logs(tensorboard=False, csv_file=True)),
    ("logger", "default"): Effect(leaves_logs(tensorboard=True, csv_file=True), the_defaults),
    ("logger", "none"): Effect(leaves_logs(tensorboard=False, csv_file=False)),
    ("logger", "tensorboard"): Effect(leaves_logs(tensorboard=True, csv_file=False)),
    ("loss", "cross_entropy"): Effect(trains_with_the_loss("cross_entropy", 0.0), the_defaults),
    ("loss", "focal"): Effect(trains_with_the_loss("focal", 2.0)),
    ("model", "resnet34"): Effect(
        all_of(RESNET34, built_by("torchvision", "torchvision.models.resnet")),
        the_model_on_the_stripes,
    ),
    # timm's ResNet34: the same stages, built by timm
    ("model", "timm"): Effect(
        all_of(RESNET34, built_by("timm", "timm.models.resnet")), the_model_on_the_stripes
    ),
    ("optimizer", "adamw"): Effect(optimizer_as_configured("AdamW")),
    ("optimizer", "sgd"): Effect(optimizer_as_configured("SGD"), the_defaults),
    ("paths", "default"): Effect(writes_under_its_paths, the_defaults),
    ("scheduler", "cosine"): Effect(follows(cosine)),
    ("scheduler", "none"): Effect(follows(constant)),
    ("scheduler", "onecycle"): Effect(follows(one_cycle)),
    # a decay within TINY's two epochs (7 would leave it constant, as scheduler=none)
    ("scheduler", "step"): Effect(follows(step_decay), extra=("scheduler.scheduler.step_size=1",)),
    ("trainer", "cpu"): Effect(runs_on("cpu")),
    ("trainer", "default"): Effect(runs_on(DEFAULT_DEVICE), the_defaults),
    ("trainer", "gpu"): Effect(runs_on_the_gpu_in_mixed_precision),
    ("tune", "lr_find"): Effect(trains_at_the_suggestion, extra=("tune.num_training=20",)),  # fast
    ("weight_averaging", "ema"): Effect(  # over 4 steps, 0.999 would keep the first step's
        averages_the_weights, extra=("weight_averaging.decay=0.5",)
    ),
}


def test_every_option_has_an_effect_check() -> None:
    options = group_options()
    unchecked = [f"{g}={o}" for g, o in options if (g, o) not in EFFECTS.keys() | ELSEWHERE]
    assert not unchecked, f"add what each of {unchecked} does to EFFECTS"
    assert EFFECTS.keys() | ELSEWHERE.keys() == set(options)  # no entry for a removed option
    assert not EFFECTS.keys() & ELSEWHERE.keys()
    assert {("freeze", "layer3_4"), ("hydra/launcher", "slurm")} <= set(options)
    # the default run is the defaults' alone: an option that needs more runs on its own
    assert all(not e.extra for e in EFFECTS.values() if e.run is the_defaults)


NEEDS_A_GPU = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA GPU here: test_gpu_option_without_a_gpu_is_refused covers trainer=gpu",
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("group", "option"),
    [
        pytest.param(
            group,
            option,
            id=f"{group}-{option}",
            marks=[NEEDS_A_GPU] if (group, option) == ("trainer", "gpu") else [],
        )
        for group, option in group_options()
        if (group, option) not in ELSEWHERE
    ],
)
def test_option_takes_effect(
    group: str, option: str, default_run: Callable[[], Run], stripes_root: Path, tmp_path: Path
) -> None:
    effect = EFFECTS.get((group, option))
    if effect is None:
        pytest.fail(f"{group}={option} has no check of its effect: add one to EFFECTS")
    if effect.run is the_defaults:
        run = default_run()
    else:
        run = start(f"{group}={option}", effect.run, effect.extra, stripes_root, tmp_path)
    assert run.choices[group] == option
    effect.check(run)


def test_gpu_option_without_a_gpu_is_refused(
    stripes_root, tmp_path, make_config, monkeypatch
) -> None:
    """trainer=gpu where no CUDA GPU is (made to look so on a machine that has one)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = make_config(on_the_stripes("trainer=gpu", stripes_root, tmp_path))
    assert cfg.trainer is not None
    with pytest.raises(UserError, match="no CUDA GPU is available"):
        train(cfg)
