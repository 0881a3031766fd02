"""Writing findings, evidence and set-aside rows to Parquet, CSV or JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from telediag.errors import InputError

FORMATS = (".parquet", ".csv", ".jsonl")


def output_format(path: str | Path) -> str:
    """The format a path asks for, by its ending; an unknown ending is a usage error."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path}: output must end in {', '.join(FORMATS)}")
    return suffix


def _iso(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].map(lambda v: None if pd.isna(v) else v.isoformat())
    return out


def write_frame(frame: pd.DataFrame, path: str | Path, schema: pa.Schema | None = None) -> None:
    """Write a findings or evidence table; list columns become JSON arrays in CSV.

    ``schema`` fixes the Parquet column types, so that a table with no rows (nothing
    found) has the same schema as one with rows.
    """
    fmt = output_format(path)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if fmt == ".parquet":
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        pq.write_table(table, p)
    elif fmt == ".csv":
        flat = _iso(frame)
        for col in flat.columns:
            if flat[col].dtype == object and len(flat) and isinstance(flat[col].iloc[0], list):
                flat[col] = flat[col].map(json.dumps)
        flat.to_csv(p, index=False)
    else:
        flat = _iso(frame)
        with p.open("w", encoding="utf-8") as fh:
            for row in flat.to_dict(orient="records"):
                clean = {k: (None if _is_missing(v) else v) for k, v in row.items()}
                fh.write(json.dumps(clean, ensure_ascii=False, default=_jsonable) + "\n")


def write_table(table: pa.Table, path: str | Path) -> None:
    """Write an Arrow table (the set-aside rows) in the format the path asks for."""
    fmt = output_format(path)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if fmt == ".parquet":
        pq.write_table(table, p)
    elif fmt == ".csv":
        pacsv.write_csv(table, p)
    else:
        write_frame(table.to_pandas(), p)


def _is_missing(value: object) -> bool:
    if isinstance(value, (list, dict)):
        return False
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


def _jsonable(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()  # numpy scalar
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
