"""Tests for preparing the Cats vs Dogs archive, on a tiny zip laid out like the real one."""

from __future__ import annotations

import errno
import json
import stat
import urllib.error
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import src.data.sources.cats_dogs as cats_dogs
from src.data.sources.cats_dogs import DataPreparationError, prepare_cats_dogs
from tests.helpers.image_factory import unusable_names, write_broken_files, write_rgb_jpeg

GOOD_PER_CLASS = 3


def _make_archive(tmp_path: Path) -> tuple[Path, dict[str, set[str]]]:
    """Zip ``PetImages/{Cat,Dog}`` with good JPEGs, plus every broken kind under Cat.

    Returns the zip and, per class, the names that must be quarantined.
    """
    src = tmp_path / "src"
    for index, name in enumerate(("Cat", "Dog")):
        for number in range(GOOD_PER_CLASS):
            write_rgb_jpeg(src / "PetImages" / name / f"{number}.jpg", color=(index * 200, 90, 9))
    expected = write_broken_files(src / "PetImages" / "Cat")
    (src / "PetImages" / "Dog" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 60)
    (src / "readme[1].txt").write_text("Cats vs Dogs\n")
    archive = tmp_path / "kagglecatsanddogs_5340.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(src.rglob("*")):
            zf.write(path, path.relative_to(src).as_posix())
    bad = {"Cat": unusable_names(expected), "Dog": {"Thumbs.db"}}
    return archive, bad


def test_prepare_keeps_good_and_quarantines_bad(tmp_path: Path) -> None:
    archive, bad = _make_archive(tmp_path)
    dest = tmp_path / "data"
    root = prepare_cats_dogs(dest, archive=archive)

    assert root == (dest / "PetImages").resolve()
    for name, bad_names in bad.items():
        kept = {p.name for p in (root / name).iterdir()}
        assert not kept & bad_names
        assert {p.name for p in (dest / "quarantine" / name).iterdir()} == bad_names
    assert len(list((root / "Dog").iterdir())) == GOOD_PER_CLASS
    assert len(list((root / "Cat").iterdir())) == GOOD_PER_CLASS + 9  # + usable odd kinds

    report = json.loads((dest / "prepare_report.json").read_text())
    assert report["kept"] == {"Cat": GOOD_PER_CLASS + 9, "Dog": GOOD_PER_CLASS}
    reasons = {item["path"]: item["reason"] for item in report["quarantined"]}
    expected_paths = {f"PetImages/{c}/{n}" for c, names in bad.items() for n in names}
    assert set(reasons) == expected_paths and all(reasons.values())
    assert "zero-byte" in reasons["PetImages/Cat/zero_bytes.jpg"]
    assert "PetImages/Cat/bomb.png" in (dest / "prepare_report.txt").read_text()
    assert (dest / ".prepared").is_file()
    assert not list(dest.glob(".extract-*"))


def test_second_call_does_no_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive, _ = _make_archive(tmp_path)
    dest = tmp_path / "data"
    prepare_cats_dogs(dest, archive=archive)
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*")}

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("no work expected on a prepared folder")

    monkeypatch.setattr(cats_dogs, "check_image", fail)
    monkeypatch.setattr(cats_dogs, "_extract_image_root", fail)
    archive.unlink()  # not even needed any more
    assert prepare_cats_dogs(dest, archive=archive) == (dest / "PetImages").resolve()
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*")} == before


@pytest.mark.parametrize(
    "member", ["../escaped.txt", "PetImages/../../escaped.txt", "/tmp/abs.txt"]
)
def test_zip_slip_member_refused(tmp_path: Path, member: str) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("PetImages/Cat/ok.jpg", b"x")
        zf.writestr(zipfile.ZipInfo(member), b"owned")
    with pytest.raises(DataPreparationError, match="outside"):
        prepare_cats_dogs(tmp_path / "data", archive=archive)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "data" / "PetImages").exists()


def test_symlink_member_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    link = zipfile.ZipInfo("PetImages/Cat/link.jpg")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(DataPreparationError, match="symbolic link"):
        prepare_cats_dogs(tmp_path / "data", archive=archive)


def test_missing_archive_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.zip"
    with pytest.raises(DataPreparationError, match=r"nowhere\.zip"):
        prepare_cats_dogs(tmp_path / "data", archive=missing)


def test_corrupt_archive(tmp_path: Path) -> None:
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"<html>not a zip</html>")
    with pytest.raises(DataPreparationError, match="not a valid zip"):
        prepare_cats_dogs(tmp_path / "data", archive=archive)


def test_download_failure_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import utils as tv_utils

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tv_utils, "download_url", offline)
    with pytest.raises(DataPreparationError, match=r"data\.archive=") as info:
        prepare_cats_dogs(tmp_path / "data", url="https://example.invalid/x/kagglecats.zip")
    assert "https://example.invalid/x/kagglecats.zip" in str(info.value)
    assert not list((tmp_path / "data").iterdir())


def test_full_disk_while_extracting_leaves_nothing_half_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, _ = _make_archive(tmp_path)
    calls = {"n": 0}
    real_copy = cats_dogs.shutil.copyfileobj

    def copy_until_full(source, target, *args):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_copy(source, target, *args)

    monkeypatch.setattr(cats_dogs.shutil, "copyfileobj", copy_until_full)
    dest = tmp_path / "data"
    with pytest.raises(DataPreparationError, match=r"No space left.*paths\.data_dir"):
        prepare_cats_dogs(dest, archive=archive)
    assert not (dest / "PetImages").exists() and not (dest / ".prepared").exists()
    assert not list(dest.glob(".extract-*"))


def test_too_little_free_space_is_refused_before_extracting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, _ = _make_archive(tmp_path)
    monkeypatch.setattr(
        cats_dogs.shutil, "disk_usage", lambda _: SimpleNamespace(total=1, used=1, free=0)
    )
    with pytest.raises(DataPreparationError, match=r"needs .* GB but .* free; free space"):
        prepare_cats_dogs(tmp_path / "data", archive=archive)
