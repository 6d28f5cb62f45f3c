"""A label file (`data=csv data.csv=path/to/labels.csv`): a header row, then one row per image
with its path (relative to the file's folder, or `data.root`, or absolute) and its label, or
with `data.label_separator` several labels; optionally a split column (`train` / `val`), a fold
column (fold numbers, for `data.fold`) and a group column (images of one group stay in one fold
of `data.folds`).

A row that cannot be used is left out and listed with the reason, as unusable files are; a file
that cannot be read as a table stops the run at once, naming the line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from src.data.datamodule import ImageDataModule
from src.data.images import IMAGE_EXTENSIONS
from src.data.samples import Sample, relative_name
from src.data.source import SampleSource, SourceSamples
from src.data.split import TRAIN, VAL
from src.utils.errors import UserError

#: Split-column values, case-insensitive, and the side each means.
SIDES = {"train": TRAIN, "training": TRAIN, "val": VAL, "valid": VAL, "validation": VAL}


class CsvFormatError(UserError):
    """The label file cannot be read as a table with the configured columns."""


@dataclass(frozen=True)
class Row:
    """A usable row: its line, image path, labels (names) and split side (None: none given)."""

    line: int
    path: Path
    labels: tuple[str, ...]
    side: str | None = None
    fold: int | None = None
    group: str | None = None


class CsvSource(SampleSource):
    """The images and labels a label file lists (see the module's docstring)."""

    def __init__(
        self,
        csv_file: str | Path,
        root: str | Path | None = None,
        path_column: str = "path",
        label_column: str = "label",
        label_separator: str | None = None,
        split_column: str | None = None,
        fold_column: str | None = None,
        group_column: str | None = None,
    ) -> None:
        self.csv_file = Path(csv_file).expanduser()
        self.root = Path(root).expanduser() if root else self.csv_file.parent
        self.path_column = path_column
        self.label_column = label_column
        self.label_separator = label_separator or None
        self.split_column = split_column or None
        self.fold_column = fold_column or None
        self.group_column = group_column or None

    def read(self, whole: bool = False) -> SourceSamples:
        excluded: dict[str, str] = {}
        rows = self._usable_rows(excluded, use_split=not whole)
        class_names = sorted({label for row in rows for label in row.labels})
        index = {name: position for position, name in enumerate(class_names)}
        samples = [Sample(row.path, tuple(index[name] for name in row.labels)) for row in rows]
        split = not whole
        return SourceSamples(
            class_names,
            samples,
            excluded,
            sides={row.path: row.side for row in rows} if self.split_column and split else None,
            folds={row.path: row.fold for row in rows} if self.fold_column and split else None,
            groups={row.path: row.group for row in rows} if self.group_column else None,
        )

    # ------------------------------------------------------------ the rows
    def _lines(self) -> Iterator[tuple[int, dict[str, str]]]:
        """(line number, the row's cells by column name) for each non-blank row; a row with
        fewer cells than the header gets None for the missing ones."""
        if not self.csv_file.is_file():
            raise CsvFormatError(
                f"data.csv={self.csv_file} does not exist; give the path of a label file "
                f"with a header row (columns {self.path_column} and {self.label_column})"
            )
        with self.csv_file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)
            try:
                header = next(reader, None)
                if header is None:
                    raise self._error(1, "the file is empty; it needs a header row")
                columns = self._columns(header)
                for row in reader:
                    if any(cell.strip() for cell in row):
                        cells = {
                            name: row[position] if position < len(row) else None
                            for name, position in columns.items()
                        }
                        yield reader.line_num, cells
            except csv.Error as error:
                raise self._error(reader.line_num, f"not a valid CSV row ({error})") from None
            except UnicodeDecodeError:
                raise self._error(reader.line_num + 1, "not UTF-8 text") from None

    def _columns(self, header: list[str]) -> dict[str, int]:
        """The position of each configured column in the header; a missing one is an error that
        lists the header's columns (or says that the first row holds data, not names)."""
        names = [name.strip() for name in header]
        wanted = {
            "data.path_column": self.path_column,
            "data.label_column": self.label_column,
            "data.split_column": self.split_column,
            "data.fold_column": self.fold_column,
            "data.group_column": self.group_column,
        }
        columns = {}
        for setting, column in wanted.items():
            if column is None:
                continue
            if column not in names:
                if any(Path(name).suffix.lower() in IMAGE_EXTENSIONS for name in names):
                    problem = "the first row holds data, not column names: add a header row"
                else:
                    problem = f"no column {column!r} (columns: {', '.join(names)}); set {setting}"
                raise self._error(1, problem)
            columns[column] = names.index(column)
        return columns

    def _error(self, line: int, problem: str) -> CsvFormatError:
        return CsvFormatError(f"data.csv={self.csv_file}, line {line}: {problem}")

    def _usable_rows(self, excluded: dict[str, str], use_split: bool) -> list[Row]:
        """The rows that name an existing file with labels (and a split side, when the file has
        a split column); the others go to `excluded` with the reason."""
        rows: dict[Path, Row] = {}
        ambiguous: set[Path] = set()
        for line, cells in self._lines():
            where = f"{self.csv_file.name} line {line}"
            if any(value is None for value in cells.values()):
                given = sum(value is not None for value in cells.values())
                excluded[where] = f"too few columns ({given} of {len(cells)} configured)"
                continue
            row = self._row(line, cells, use_split, excluded, where)
            if row is None:
                continue
            earlier = rows.get(row.path)
            if earlier is None:
                rows[row.path] = row
            elif earlier.labels == row.labels:
                excluded[where] = f"the same path as line {earlier.line}"
            else:
                ambiguous.add(row.path)
                excluded[relative_name(row.path, self.root)] = (
                    f"the same path twice with different labels (lines {earlier.line} and "
                    f"{line}: {', '.join(earlier.labels)} / {', '.join(row.labels)})"
                )
        return [row for path, row in rows.items() if path not in ambiguous]

    def _row(
        self,
        line: int,
        cells: dict[str, Any],
        use_split: bool,
        excluded: dict[str, str],
        where: str,
    ) -> Row | None:
        """The row as a `Row`, or None with the reason in `excluded`."""
        name = cells[self.path_column].strip()
        if not name:
            excluded[where] = "empty path"
            return None
        path = Path(name).expanduser()
        path = path if path.is_absolute() else self.root / path
        shown = f"{relative_name(path, self.root)} ({where})"
        labels = self._labels(cells[self.label_column])
        if not labels:
            excluded[shown] = "empty label"
            return None
        if not path.is_file():
            excluded[shown] = "missing file"
            return None
        row = Row(line, path, labels)
        if self.group_column:
            row = replace(row, group=cells[self.group_column].strip() or f"line {line}")
        if self.split_column and use_split:
            value = cells[self.split_column].strip()
            if value.lower() not in SIDES:
                excluded[shown] = f"split {value!r} is neither train nor val"
                return None
            row = replace(row, side=SIDES[value.lower()])
        if self.fold_column and use_split:
            value = cells[self.fold_column].strip()
            if not value.isdigit():
                excluded[shown] = f"fold {value!r} is not a fold number (0, 1, ...)"
                return None
            row = replace(row, fold=int(value))
        return row

    def _labels(self, cell: str) -> tuple[str, ...]:
        parts = cell.split(self.label_separator) if self.label_separator else [cell]
        return tuple(dict.fromkeys(part.strip() for part in parts if part.strip()))


class CsvDataModule(ImageDataModule):
    """`data=csv`: the images a label file lists."""

    def __init__(
        self,
        csv: str,
        root: str | None = None,
        path_column: str = "path",
        label_column: str = "label",
        label_separator: str | None = None,
        split_column: str | None = None,
        fold_column: str | None = None,
        group_column: str | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(**settings)
        # Where the images are, as resolved: export's check and the file lists use it.
        self.hparams["root"] = str(self.source.root)

    def make_source(self) -> SampleSource:
        settings = self.hparams
        return CsvSource(
            settings.csv,
            settings.root,
            settings.path_column,
            settings.label_column,
            settings.label_separator,
            settings.split_column,
            settings.fold_column,
            settings.group_column,
        )
