"""The settings people compare across runs, for the loggers' hparams tables (TensorBoard's
dashboard, CSV's hparams.yaml). The whole composed config stays in `<run dir>/.hydra/`.

The columns are derived from the composed config the run uses: every setting of the groups that
shape a result is a column, unless it is listed in `NOT_COMPARED` (where files go, how fast they
load). A setting added to one of those groups becomes a column without a change here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import Container, DictConfig, OmegaConf


def result_metrics(monitor: str) -> tuple[str, ...]:
    """Result metrics of TensorBoard's hparams table (each is logged as a scalar under this
    tag): the best of the task's validation metric `monitor`, the loss, the training time."""
    return (f"{monitor}_best", "val/loss", "time/train_s")


#: Config groups whose settings shape a run's result (absent optional groups are skipped).
COMPARED_GROUPS = (
    "model",
    "freeze",
    "optimizer",
    "scheduler",
    "loss",
    "data",
    "trainer",
    "weight_averaging",
    "early_stopping",
    "tune",
)

#: Settings of those groups that change where files go or how fast the run is, not its result.
NOT_COMPARED = {
    "data": {
        "_convert_",
        "cache_dir",
        "file_list_dir",
        "num_workers",
        "pin_memory",
        "persistent_workers",
        "prepare_timeout_s",
        "max_read_failures",
        "url",
        "md5",
        "archive",
    },
    "trainer": {
        "_target_",  # always Lightning's Trainer
        "default_root_dir",
        "log_every_n_steps",
        "check_val_every_n_epoch",
        "benchmark",
        "fast_dev_run",
    },
}

#: Top-level settings that are not a run's own choices (where it starts from, what it is named).
NOT_COMPARED_TOP_LEVEL = {"task_name", "ckpt_path", "resume"}


def _short(target: str) -> str:
    """`torch.optim.SGD` -> `SGD`."""
    return target.rsplit(".", 1)[-1]


def _text(value: Any) -> Any:
    """Lists, mappings and None as text: hparams tables hold numbers, booleans and strings."""
    if value is None:
        return "null"
    if isinstance(value, (list, tuple, dict)):
        return str(value)
    return value


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(dotted name, value) of every setting under `node`; a class path `_target_` is named by
    its parent and shortened; an empty mapping is one value."""
    if isinstance(node, Mapping) and node:
        for key, value in node.items():
            if key == "_target_":
                yield prefix, _short(str(value))
            else:
                yield from _leaves(value, f"{prefix}.{key}")
    else:
        yield prefix, node


def _group_choices() -> dict[str, str | None]:
    """The option chosen in each config group (`freeze` -> `layer3_4`), when Hydra composed it."""
    if not HydraConfig.initialized():
        return {}
    choices = HydraConfig.get().runtime.choices
    return {
        group: option
        for group, option in choices.items()
        if group in COMPARED_GROUPS or group == "experiment"
    }


def compared_settings(cfg: DictConfig) -> dict[str, Any]:
    """One column per setting that shapes the result: each compared group's settings (dotted
    names), the option chosen in each group (`group:freeze`), and the top-level settings such
    as `seed` and `label_smoothing`."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    settings: dict[str, Any] = {
        f"group:{group}": option for group, option in sorted(_group_choices().items())
    }
    for group in COMPARED_GROUPS:
        node = plain.get(group)
        if not node:
            continue
        skipped = NOT_COMPARED.get(group, set())
        compared = {key: value for key, value in node.items() if key not in skipped}
        settings.update(_leaves(compared, group))
    for key, value in plain.items():
        if key not in NOT_COMPARED_TOP_LEVEL and not isinstance(value, (dict, list, Container)):
            settings[key] = value
    return {name: _text(value) for name, value in settings.items()}
