"""``CsvDataset``: numeric CSV files as (features, target) samples, NumPy-backed.

Columns are chosen by index (negative counts from the end) or, with a header, by name.
Defaults: the last column is the target, every other column a feature. A single target
column gives scalar targets; several give a vector. (Named csv_dataset.py so it never
shadows the standard library's ``csv``.)
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import shrew_core as sc

from .dataset import Dataset, check_index
from .errors import DataError

Column = int | str


class CsvDataset(Dataset[tuple]):
    """``dataset[i] = (features[i], target[i])`` read from a numeric CSV file.

    Args:
        path: the CSV file.
        has_header: the first row names the columns.
        feature_cols / target_cols: column indices or names; see the module docstring.
        delimiter: field separator.
        dtype: dtype of features and targets (``"f32"``; ``target_dtype`` overrides).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        has_header: bool = True,
        feature_cols: Sequence[Column] | None = None,
        target_cols: Sequence[Column] | None = None,
        delimiter: str = ",",
        dtype: Any = "f32",
        target_dtype: Any = None,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        self.path = Path(path)
        try:
            with open(self.path, newline="") as f:
                rows = [r for r in csv.reader(f, delimiter=delimiter) if r]
        except FileNotFoundError:
            raise DataError(f"CsvDataset: file not found: {self.path}") from None
        header = [h.strip() for h in rows.pop(0)] if has_header and rows else None
        if not rows:
            raise DataError(f"CsvDataset: {self.path} has no data rows")
        width = len(header) if header is not None else len(rows[0])
        first_line = 2 if header is not None else 1
        for k, r in enumerate(rows):
            if len(r) != width:
                raise DataError(
                    f"CsvDataset: {self.path} line {first_line + k} has {len(r)} fields, "
                    f"expected {width}"
                )
        self.columns = header if header is not None else [str(i) for i in range(width)]
        tgt = self._resolve(target_cols, header, width, "target_cols")
        feat = self._resolve(feature_cols, header, width, "feature_cols")
        if target_cols is None:
            tgt = [] if feature_cols is not None and width - 1 in feat else [width - 1]
        if feature_cols is None:
            feat = [c for c in range(width) if c not in tgt]
        table = self._parse(rows, first_line)
        self.feature_cols, self.target_cols = feat, tgt
        self.features = table[:, feat].astype(sc.as_dtype(dtype).np_dtype)
        targets = table[:, tgt].astype(sc.as_dtype(target_dtype or dtype).np_dtype)
        self.targets = targets[:, 0] if len(tgt) == 1 else targets
        self.feature_names = [self.columns[c] for c in feat]
        self.transform = transform
        self.target_transform = target_transform

    @classmethod
    def load(cls, path: str | os.PathLike, *args: Any, **kwargs: Any) -> CsvDataset:
        """The seed's ``CsvDataset.load(path, has_header, feature_cols, target_cols, ...)``."""
        return cls(path, *args, **kwargs)

    @staticmethod
    def _resolve(cols: Sequence[Column] | None, header: list[str] | None, width: int,
                 what: str) -> list[int]:
        out: list[int] = []
        for c in cols or []:
            if isinstance(c, str):
                if header is None or c not in header:
                    known = f"columns are {header}" if header else "the file has no header"
                    raise DataError(f"CsvDataset: {what}: unknown column {c!r}; {known}")
                out.append(header.index(c))
            elif isinstance(c, int) and not isinstance(c, bool) and -width <= c < width:
                out.append(c % width)
            else:
                raise DataError(f"CsvDataset: {what}: column {c!r} out of range for {width}")
        return out

    def _parse(self, rows: list[list[str]], first_line: int) -> np.ndarray:
        try:
            return np.array(rows, dtype=np.float64)
        except ValueError:
            pass
        for k, r in enumerate(rows):  # find the offending cell for the message
            for j, cell in enumerate(r):
                try:
                    float(cell)
                except ValueError:
                    raise DataError(
                        f"CsvDataset: {self.path} line {first_line + k}, column "
                        f"{self.columns[j]!r}: {cell!r} is not a number"
                    ) from None
        raise DataError(f"CsvDataset: {self.path} could not be parsed as numbers")

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> tuple:
        i = check_index(index, len(self.features), "CsvDataset")
        x: Any = self.features[i]
        y: Any = self.targets[i]
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y
