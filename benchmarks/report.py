"""The header, table and JSON shared by the benchmarks."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

import lightning
import timm
import torch
import torchvision


def cpu_model() -> str:
    """The CPU's marketing name (Linux), else whatever `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(module: str, argv: list[str]) -> dict[str, Any]:
    """What a reader needs to trust or reproduce the numbers."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, "-m", module, *argv]),
        "cpu": cpu_model(),
        "cpu_cores": cores,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightning": lightning.__version__,
        "timm": timm.__version__,
    }


def header_lines(env: dict[str, Any]) -> list[str]:
    return [
        f"date:    {env['date']}",
        f"command: {env['command']}",
        f"cpu:     {env['cpu']} ({env['cpu_cores']} cores), torch threads {env['torch_threads']}",
        f"python {env['python']}, torch {env['torch']}, torchvision {env['torchvision']}, "
        f"lightning {env['lightning']}, timm {env.get('timm', '-')}",
    ]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return numerator / denominator


def fmt(value: float | None, pattern: str, missing: str = "-") -> str:
    return missing if value is None else format(value, pattern)


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def publish(report: dict[str, Any], table: str, json_path: Path | None) -> dict[str, Any]:
    """Print the table, write the report as JSON when asked; returns the report."""
    print(table, flush=True)
    if json_path:
        write_json(json_path, report)
    return report
