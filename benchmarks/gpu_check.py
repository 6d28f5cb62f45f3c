"""`python -m benchmarks.gpu_check`: run once on a new GPU machine, before a long run.

Trains a few hundred steps along every GPU path the project has, each through the command line
as a user runs it: `trainer=gpu` (its precision resolver and cuDNN benchmark mode), each
precision, bf16-true on cached features, channels_last, torch.compile, EMA, progressive resizing
with MixUp, the learning-rate finder, decoding in the loader workers and on the GPU, cached
features; on all visible GPUs, frozen layers with sync_batchnorm, cached features and decoding
on the device; a SIGTERM mid-run (last.ckpt saved, exit 143); a DDP sweep whose first job fails
(the sweep goes on). Its JPEGs mix baseline 4:2:0, 4:4:4, progressive and grayscale files, so
nvJPEG's paths and the CPU fall-back all run. Then it evaluates, predicts and exports the
trained model, and prints one table: pass or FAIL, training images/s, the share of training
time spent waiting for data, and the error of each failed path. `--cpu` (the default without a
GPU) runs the same paths in their CPU form, small, to check the harness.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from benchmarks.data import generate_jpegs
from benchmarks.timing import read_times
from src.utils.devices import computes_in_bf16

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Outcome:
    """One path: whether its command succeeded, and how fast it went."""

    path: str
    passed: bool
    images_per_s: float | None = None
    data_wait: float | None = None
    seconds: float = 0.0
    error: str = ""
    command: list[str] = field(default_factory=list)


def precisions(gpu: bool) -> list[str]:
    """The precisions this device trains in: all of Lightning's on a GPU (bfloat16 ones where
    supported), the bfloat16 ones on a CPU."""
    if not gpu:
        return ["32-true", "bf16-mixed", "bf16-true"]
    if computes_in_bf16(0):
        return ["32-true", "16-mixed", "bf16-mixed", "bf16-true"]
    return ["32-true", "16-mixed", "16-true"]


SIGTERM_PATH = "SIGTERM mid-run: last.ckpt, exit 143"
SWEEP_PATH = "DDP sweep, first job failing"


def selected(path: str, only: str | None) -> bool:
    """Whether `path` runs: every path, or with `--only` those holding one of its parts."""
    return only is None or any(part.strip() in path for part in only.split(";"))


def mixed_precision(gpu: bool) -> str:
    return "bf16-mixed" if not gpu or computes_in_bf16(0) else "16-mixed"


def training_paths(gpu: bool, devices: int) -> dict[str, list[str]]:
    """Name -> overrides of each training path."""
    mixed = mixed_precision(gpu)
    fast = f"trainer.precision={mixed}"
    paths = {"trainer=gpu": ["trainer=gpu"]} if gpu else {}
    paths |= {f"precision {p}": [f"trainer.precision={p}"] for p in precisions(gpu)}
    if "bf16-true" in precisions(gpu):
        paths["bf16-true, cached features"] = ["trainer.precision=bf16-true", "freeze=all"]
    paths[f"{mixed}, channels_last"] = [fast, "model.channels_last=true"]
    if gpu:  # on the CPU the compiler alone takes minutes
        paths[f"{mixed}, torch.compile"] = [fast, "model.compile=true"]
    paths[f"{mixed}, EMA"] = [fast, "weight_averaging=ema"]
    paths[f"{mixed}, progressive resizing, MixUp"] = [
        fast, "data.progressive_resizing.enabled=true", "data.augment.mixup=0.2",
    ]  # fmt: skip
    paths[f"{mixed}, LR finder"] = [fast, "tune=lr_find", "tune.num_training=20"]
    paths[f"{mixed}, decoding on the device"] = [fast, "data.decode_on_device=true"]
    paths[f"{mixed}, cached features"] = [fast, "freeze=all", "freeze.cache_features=true"]
    if devices > 1:
        ddp = [fast, f"trainer.devices={devices}"]
        paths[f"{mixed}, DDP on {devices} devices"] = ddp
        paths["DDP, frozen layers, sync_batchnorm"] = [
            *ddp, "freeze=layer4", "trainer.sync_batchnorm=true",
        ]  # fmt: skip
        paths["DDP, cached features"] = [*ddp, "freeze=all"]
        paths["DDP, decoding on the device"] = [*ddp, "data.decode_on_device=true"]
    return paths


def run(path: str, module: str, args: list[str], work: Path, timeout_s: float) -> Outcome:
    """`python -m module args` from `work`; pass when it exits with 0."""
    command = [sys.executable, "-m", module, *args]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=work, env=module_env(), capture_output=True, text=True, timeout=timeout_s
        )
        passed, output = done.returncode == 0, done.stderr + done.stdout
    except subprocess.TimeoutExpired:
        passed, output = False, f"no result after {timeout_s:.0f} s"
    error = "" if passed else last_error_line(output)
    return Outcome(
        path, passed, seconds=time.perf_counter() - started, error=error, command=command
    )


def sigterm_path(command: list[str], run_dir: Path, work: Path, timeout_s: float) -> Outcome:
    """A training sent SIGTERM once it has trained for a while (its TensorBoard events exist and
    10 s passed): passes when it saves last.ckpt and exits with 143."""
    full = [sys.executable, "-m", "src.train", *command, f"hydra.run.dir={run_dir}"]
    started = time.perf_counter()
    process = subprocess.Popen(full, cwd=work, env=module_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = started + timeout_s
    while process.poll() is None and not list(run_dir.glob("tensorboard/events.out.*")):
        if time.perf_counter() > deadline:
            break
        time.sleep(0.5)
    time.sleep(10)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=max(60.0, deadline - time.perf_counter()))
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    saved = (run_dir / "checkpoints" / "last.ckpt").is_file()
    passed = process.returncode == 143 and saved
    error = (
        ""
        if passed
        else f"exit {process.returncode}, last.ckpt {saved}: " + (last_error_line(output or ""))
    )
    return Outcome(
        SIGTERM_PATH, passed, seconds=time.perf_counter() - started, error=error, command=full
    )


def failing_sweep_path(
    command: list[str], sweep_dir: Path, work: Path, timeout_s: float
) -> Outcome:
    """A `-m` sweep of two DDP jobs, the first one's loss made NaN by a huge learning rate:
    passes when the sweep exits with 0, job 0 is recorded as failed, job 1 finished and the
    sweep's report is written."""
    args = ["-m", *command, "optimizer.lr=1e30,0.001", f"hydra.sweep.dir={sweep_dir}"]
    outcome = run(SWEEP_PATH, "src.train", args, work, timeout_s)
    statuses = [
        json.loads(summary.read_text()).get("status") if summary.is_file() else None
        for summary in (sweep_dir / "0" / "summary.json", sweep_dir / "1" / "summary.json")
    ]
    if outcome.passed and (
        statuses != ["failed", "finished"] or not (sweep_dir / "report.md").is_file()
    ):
        outcome.passed, outcome.error = False, f"jobs {statuses}, report.md missing or jobs wrong"
    return outcome


def module_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}


def last_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["(no output)"])[-1][:200]


def check(args: argparse.Namespace) -> list[Outcome]:
    gpu = not args.cpu
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="gpu_check_"))
    images = generate_jpegs(work / "images", args.images_per_class, args.source_size, mixed=True)
    count = 2 * args.images_per_class
    accelerator = "gpu" if gpu else "cpu"
    devices = torch.cuda.device_count() if gpu else 2
    common = [
        "data=folder",
        f"data.root={images}",
        f"model.name={args.model}",
        "model.pretrained=false",
        f"data.image_size={args.image_size}",
        f"data.batch_size={args.batch_size}",
        "trainer.max_epochs=1000",
        f"+trainer.max_steps={args.steps}",
        "trainer.limit_val_batches=10",
        f"trainer.accelerator={accelerator}",
        "trainer.devices=1",
        "~callbacks.progress_bar",
    ]
    outcomes, trained = [], None
    chosen = {
        name: overrides
        for name, overrides in training_paths(gpu, devices).items()
        if selected(name, args.only)
    }
    for name, overrides in chosen.items():
        run_dir = work / "runs" / f"{len(outcomes):02d}"
        timer = run_dir / "phase_times.json"
        outcome = run(
            name,
            "src.train",
            [
                *common,
                *overrides,
                f"hydra.run.dir={run_dir}",
                "+callbacks.timer._target_=benchmarks.timing.PhaseTimer",
                f"+callbacks.timer.output={timer}",
            ],
            work,
            args.timeout_s,
        )
        if outcome.passed and timer.is_file():
            times = read_times(timer)
            outcome.images_per_s, outcome.data_wait = times.train_rate, times.data_wait_fraction
            trained = trained or run_dir / "checkpoints" / "best.ckpt"
        outcomes.append(outcome)
    fast = f"trainer.precision={mixed_precision(gpu)}"
    slow_steps = [fast, f"trainer.max_steps={100 * args.steps}"]  # still training at SIGTERM
    if selected(SIGTERM_PATH, args.only):
        sigterm_dir = work / "runs" / "sigterm"
        outcomes.append(sigterm_path([*common, *slow_steps], sigterm_dir, work, args.timeout_s))
    if devices > 1 and selected(SWEEP_PATH, args.only):
        sweep = [*common, fast, f"trainer.devices={devices}"]
        outcomes.append(failing_sweep_path(sweep, work / "runs" / "sweep", work, args.timeout_s))
    if trained is None:
        return outcomes
    after = {
        "evaluate": ("src.evaluate", [f"ckpt_path={trained}", f"data.root={images}"]),
        "predict": ("src.predict", [f"ckpt_path={trained}", f"input={images}"]),
        "export (ONNX, parity checked)": ("src.export", [f"ckpt_path={trained}"]),
    }
    for name, (module, module_args) in after.items():
        run_dir = f"hydra.run.dir={work / 'runs' / module.removeprefix('src.')}"
        outcome = run(name, module, [*module_args, run_dir], work, args.timeout_s)
        if outcome.passed and name != "export (ONNX, parity checked)":
            outcome.images_per_s = count / outcome.seconds  # the whole command, start-up included
        outcomes.append(outcome)
    return outcomes


def table(outcomes: list[Outcome]) -> str:
    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    def share(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.0f}%"

    lines = ["| path | result | images/s | data wait | error |", "|---|---|---|---|---|"]
    for o in outcomes:
        result = "pass" if o.passed else "FAIL"
        lines.append(
            f"| {o.path} | {result} | {rate(o.images_per_s)} | {share(o.data_wait)} | {o.error} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", default=not torch.cuda.is_available())
    parser.add_argument("--model", default="resnet34")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200, help="training steps per path")
    parser.add_argument("--images-per-class", type=int, default=2000)
    parser.add_argument("--source-size", type=int, default=320, help="generated JPEGs' size")
    parser.add_argument("--timeout-s", type=float, default=900, help="per command")
    parser.add_argument("--work-dir", type=Path, help="default: a new temporary dir")
    parser.add_argument("--json", type=Path, help="write the outcomes here as JSON")
    parser.add_argument(
        "--only",
        help="parts of path names, separated by ';': run the paths that hold one (and after "
        "them evaluate, predict, export)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    devices = "the CPU" if args.cpu else f"{torch.cuda.device_count()} GPU(s)"
    print(f"Checking every path on {devices}, {args.steps} steps each ...", flush=True)
    outcomes = check(args)
    print(table(outcomes))
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=2), encoding="utf-8")
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
