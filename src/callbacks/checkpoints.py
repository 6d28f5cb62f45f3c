"""Checkpoints that survive kills, full disks and resumes into a new run dir, and the run-dir rules
around them: which checkpoint a resume starts from, and no run ever writing over another's."""

from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from src.callbacks.requeue import requeued_checkpoint
from src.utils.devices import is_launcher_process
from src.utils.errors import UserError, one_line
from src.utils.io import atomic_output, link_atomically

log = logging.getLogger(__name__)


class CheckpointWriteError(UserError):
    """A checkpoint could not be written; the earlier ones are untouched."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file in the same dir, sync, then rename over the target.

    A kill or a full disk while writing never leaves a truncated `last.ckpt` or `best.ckpt`:
    the target is either the previous complete file or the new complete one.

    A checkpoint of the step just written to another file (`best.ckpt` and `last.ckpt` at an
    epoch that improves) becomes a hard link to that file instead of a second write: the same
    weights, optimizer and loop state (only the checkpoint callbacks' own bookkeeping of that
    step differs). Both stay complete checkpoints; a later write replaces one, not the other.
    """

    def __init__(self) -> None:
        super().__init__()
        #: (epoch, global step) of the last checkpoint written, its file and that file's identity.
        self._written: tuple[tuple[Any, Any], Path, tuple[int, int]] | None = None

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        path = Path(path)
        step = (checkpoint.get("epoch"), checkpoint.get("global_step"))
        if self._link_to_same_step(step, path):
            return
        try:
            with atomic_output(path) as handle:
                torch.save(checkpoint, handle)
            self._written = (step, path, _identity(path))
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise CheckpointWriteError(
                    f"No space left on the device while writing {path}; the earlier checkpoints in "
                    f"{path.parent} are intact: free disk space, then resume with "
                    f"ckpt_path={path.parent / 'last.ckpt'}"
                ) from error
            raise

    def _link_to_same_step(self, step: tuple[Any, Any], path: Path) -> bool:
        """Link `path` to the file written at `step`, if that file is still as written."""
        if self._written is None or step[1] is None:
            return False
        written_step, written, identity = self._written
        if written_step != step or written == path:
            return False
        try:
            if _identity(written) != identity:
                return False
            link_atomically(written, path)
        except OSError:  # gone, or no hard links on this file system: write it
            return False
        return True


def _identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


class CarryOverModelCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint that keeps the best checkpoint when a run resumes into a new dir.

    Lightning only reloads the best score when the dir is unchanged; every resume here gets a new
    run dir, so the previous best file is copied into it and its score restored: `best.ckpt`
    then only moves when the resumed run beats it.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old_dir = state_dict.get("dirpath")
        old_best = state_dict.get("best_model_path") or ""
        score = state_dict.get("best_model_score")
        same_metric = state_dict.get("monitor") == self.monitor and self.monitor is not None
        if (
            self.dirpath is None
            or old_dir == self.dirpath
            or not same_metric
            or score is None
            or not _seen_by_rank_zero(Path(old_best))
        ):
            super().load_state_dict(state_dict)
            return
        new_best = Path(self.dirpath) / Path(old_best).name
        if rank_zero_only.rank == 0:  # the others share its decision, not its file system
            with open(old_best, "rb") as source, atomic_output(new_best) as target:
                shutil.copyfileobj(source, target)
        self.best_model_score = score
        self.best_model_path = self.kth_best_model_path = str(new_best)
        self.kth_value = score
        self.best_k_models = {str(new_best): score}
        log.info("Carried over %s (%s=%.4f) from %s", new_best.name, self.monitor, score, old_dir)


def best_checkpoint_path(trainer: L.Trainer) -> Path | None:
    """The best checkpoint of the fit's monitoring checkpoint callback, if it wrote one."""
    for callback in trainer.checkpoint_callbacks:
        if callback.monitor and callback.best_model_path:
            return Path(callback.best_model_path)
    return None


def _seen_by_rank_zero(path: Path) -> bool:
    """Whether rank 0 sees the file, on every rank: ModelCheckpoint's later decisions are
    collective, so a rank that cannot see it must still take the same path."""
    decision = [path.is_file() if rank_zero_only.rank == 0 else None]
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.broadcast_object_list(decision, src=0)
    return bool(decision[0])


class CheckpointOnSigterm(Callback):
    """On SIGTERM (what clusters send before preemption), save `last.ckpt` before exiting.

    Lightning notices the signal, finishes the current batch and raises SIGTERMException; this
    hook runs then, while the model and optimizer are still consistent.
    """

    def __init__(self, dirpath: str | Path, filename: str = "last.ckpt") -> None:
        self.path = Path(dirpath) / filename

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(self.path)
            log.warning("SIGTERM received: saved %s", self.path)


def checkpoint_to_resume(
    ckpt_path: str | None,
    resume: str | None,
    log_dir: Path,
    run_dir: Path,
    overrides: list[str] | None = None,
) -> str | None:
    """The newest checkpoint of a requeued SLURM job's earlier start (see `requeue`), else
    `ckpt_path`, or the `last.ckpt` that `resume=<run dir>|latest` stands for; refuses a run dir
    that already holds another run's checkpoints."""
    if resume and ckpt_path:
        raise UserError("give either resume=<run dir> or ckpt_path=<file>, not both")
    requeued = requeued_checkpoint(log_dir, run_dir, overrides or [])
    if requeued is not None:
        ckpt_path = str(requeued)
    elif resume:
        ckpt_path = str(find_resume_checkpoint(str(resume), log_dir, run_dir))
    refuse_used_run_dir(run_dir, resuming=ckpt_path is not None)
    if ckpt_path is not None:
        refuse_unsafe_checkpoint(Path(ckpt_path))
    return ckpt_path


def refuse_unsafe_checkpoint(path: Path) -> None:
    """Read `path` as Lightning will on resume, with `weights_only=True`, and turn a refusal
    (a pickle that would run code, a truncated file) into one line, before anything is built."""
    if not path.is_file():
        raise UserError(f"ckpt_path={path} does not exist; pass a <run dir>/checkpoints/*.ckpt")
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:
        raise UserError(
            f"ckpt_path={path} cannot be loaded safely ({type(error).__name__}: "
            f"{one_line(error)[:160]}); resume from a checkpoint this project wrote"
        ) from None


def find_resume_checkpoint(resume: str, log_dir: Path, this_run: Path) -> Path:
    """`last.ckpt` of the run dir `resume`, or of the newest earlier run for `latest`."""
    if resume == "latest":
        candidates = sorted(
            (
                path
                for path in log_dir.glob("**/checkpoints/last.ckpt")
                if this_run.resolve() not in path.resolve().parents
            ),
            key=lambda path: path.stat().st_mtime,
        )
        if not candidates:
            raise UserError(f"resume=latest found no checkpoints/last.ckpt under {log_dir}")
        return candidates[-1]
    checkpoint = Path(resume) / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        raise UserError(
            f"resume={resume}: {checkpoint} does not exist; pass a run dir of this project "
            "(outputs/train/<run>) or resume=latest"
        )
    return checkpoint


def refuse_used_run_dir(run_dir: Path, resuming: bool) -> None:
    """Never let a new run overwrite the checkpoints of an earlier one in the same dir."""
    checkpoints = run_dir / "checkpoints"
    if not resuming and is_launcher_process() and any(checkpoints.glob("*.ckpt")):
        raise UserError(
            f"{checkpoints} already holds checkpoints of an earlier run; "
            "pick a new hydra.run.dir or resume with ckpt_path=<that run>/checkpoints/last.ckpt"
        )
