"""The code base downloads from the configured data set's address only."""

from __future__ import annotations

import re

from tests.helpers import REPO


def test_the_only_download_address_is_the_configured_data_set() -> None:
    """No code or config names another address than the data set's (weights: torchvision's)."""
    found = set()
    for path in [*(REPO / "src").rglob("*.py"), *(REPO / "conf").rglob("*.yaml")]:
        found.update(re.findall(r"https?://[^\s\"')]+", path.read_text(encoding="utf-8")))
    allowed = (
        "https://download.microsoft.com/download/3/E/1/"
        "3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip"
    )
    assert found and all(allowed.startswith(url) for url in found), found
