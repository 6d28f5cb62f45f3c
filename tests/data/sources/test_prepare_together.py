"""Several processes started at once (srun, torchrun) share one data dir: process 0 prepares the
data, the others wait for it to be complete."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import module_env
from tests.helpers.image_factory import unusable_names, write_broken_files, write_rgb_jpeg

pytestmark = pytest.mark.slow

PER_CLASS = 150


def make_archive(tmp_path: Path) -> tuple[Path, int, int]:
    """A Cats vs Dogs-like zip large enough for racing extractions; returns it, how many Dog
    files must be kept and how many quarantined."""
    source = tmp_path / "source"
    for index, name in enumerate(("Cat", "Dog")):
        for number in range(PER_CLASS):
            write_rgb_jpeg(source / "PetImages" / name / f"{number}.jpg", color=(index * 200, 9, 9))
    odd_files = write_broken_files(source / "PetImages" / "Dog")
    broken = len(unusable_names(odd_files))
    archive = tmp_path / "kagglecatsanddogs_5340.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*")):
            zf.write(path, path.relative_to(source).as_posix())
    return archive, PER_CLASS + len(odd_files) - broken, broken


def test_three_processes_started_at_once_prepare_the_data_once(tmp_path: Path) -> None:
    archive, dogs, broken = make_archive(tmp_path)
    data_dir = tmp_path / "data"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "src.prepare_data",
                f"data.archive={archive}",
                f"paths.data_dir={data_dir}",
                f"hydra.run.dir={tmp_path / f'run{rank}'}",
            ],
            cwd=tmp_path,
            env={**module_env(), "RANK": str(rank), "SLURM_PROCID": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (2, 1, 0)  # the waiting ones first
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], outputs

    prepared = json.loads((data_dir / "cats_dogs" / ".prepared").read_text())
    assert prepared["kept"] == {"Cat": PER_CLASS, "Dog": dogs}
    assert prepared["quarantined"] == broken
    assert len(list((data_dir / "cats_dogs" / "quarantine" / "Dog").iterdir())) == broken
    # Process 0 alone extracted and checked the archive (the others waited, then found it done).
    preparing = [rank for rank, output in zip((2, 1, 0), outputs, strict=True) if "kept" in output]
    assert preparing == [0], outputs
    checking = [
        rank for rank, output in zip((2, 1, 0), outputs, strict=True) if "Checked" in output
    ]
    assert checking == [0], outputs  # and alone decode-checked the images
    for output in outputs:  # every process found the complete data set
        found = re.search(r"classes \['Cat', 'Dog'\], (\d+) train / (\d+) val images", output)
        assert found and int(found[1]) + int(found[2]) == PER_CLASS + dogs, output[-2000:]
