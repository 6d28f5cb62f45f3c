"""Each package states its purpose and its modules in its __init__.py, and re-exports nothing:
importing one module loads only what it needs (the ONNX prediction path runs without
Lightning)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import pytest

import src

PACKAGES = sorted(info.name for info in pkgutil.walk_packages(src.__path__, "src.") if info.ispkg)


def test_every_package_is_covered() -> None:
    assert {"src.utils", "src.data", "src.models", "src.serving", "src.sweeps"} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_package_face_names_modules_that_exist(name: str) -> None:
    package = importlib.import_module(name)
    assert package.__doc__ and len(package.__doc__.strip()) > 40
    listed = re.findall(r"^- (`\w+`(?:, `\w+`)*)", package.__doc__, re.MULTILINE)
    modules = [module for line in listed for module in re.findall(r"`(\w+)`", line)]
    assert modules, f"{name} lists no modules"
    for module in modules:
        assert importlib.util.find_spec(f"{name}.{module}"), f"{name}.{module}"
    body = ast.parse(Path(package.__file__).read_text(encoding="utf-8")).body
    assert len(body) == 1, f"{name}/__init__.py holds more than its docstring"
