"""Reading an import source into rows: local files, directories, saved Hugging Face datasets.

Owns: turning SOURCE into a SourceData (a label, the column names, and rows
that each know where they came from: "line 9000" in a .jsonl or .csv, "item 3"
of a .json array, "row 12" of a parquet file or dataset), and every error a
broken file can cause, as a one-line SourceError: empty, binary, not UTF-8
(with the line), bad JSON (with the line), ragged CSV, unreadable parquet, a
directory that is not a dataset. Hub dataset ids are handed to hub.py.

Invariant: reading never writes anything; .gz files are read transparently.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignui.data.records import Row, SourceError, maybe_json_list

TEXT_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt")
DATA_SUFFIXES = TEXT_SUFFIXES + (".parquet",)
SUPPORTED = ".jsonl, .json, .csv, .tsv, .txt (a prompt per line), .parquet (each optionally .gz), a saved Hugging Face " \
            "dataset directory, or a hub dataset id"
POOL_SPLITS = ("train", "heldout")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_BINARY_MAGIC = (b"\x89PNG", b"PK\x03\x04", b"%PDF", b"\x7fELF", b"GIF8", b"\xff\xd8\xff", b"PAR1")


@dataclass
class SourceData:
    label: str  # file name or dataset id: the import's source is 'import:<label>'
    rows: list[Row]
    columns: list[str]
    split: str | None = None  # the split read, for sources that have several
    splits: tuple[str, ...] = ()


def read_source(source: str, *, split: str | None = None, label: str | None = None) -> SourceData:
    """Rows of a local file or directory, or of a hub dataset id (hub.py) when no such path exists."""
    path = Path(str(source)).expanduser()
    if path.is_dir():
        data = read_directory(path, split, label or path.name)
    elif path.is_file():
        if split and split not in POOL_SPLITS:
            raise SourceError(f"{label or path.name} is a single file without splits; --split names a split of a "
                              "dataset directory or hub dataset (or 'heldout' to put prompts in the held-out pool)")
        data = read_file(path, label or path.name)
    elif HUB_ID.match(str(source)) and not str(source).endswith(DATA_SUFFIXES):
        from alignui.data.hub_datasets import read_hub

        return read_hub(str(source), split)
    else:
        raise SourceError(f"{source}: no such file or directory; give a local data file or dataset directory "
                          "(check the path), or a hub dataset id like owner/name")
    if not data.rows:
        raise SourceError(f"{data.label} holds no rows: nothing to import")
    return data


def read_file(path: Path, label: str) -> SourceData:
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    suffix = (suffixes[-2] if gz and len(suffixes) > 1 else suffixes[-1]) if suffixes else ""
    if suffix not in DATA_SUFFIXES:
        raise SourceError(f"{label}: unsupported file type {''.join(path.suffixes) or '(none)'}; use {SUPPORTED}")
    raw = path.read_bytes()
    if gz:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise SourceError(f"{label} is not a readable .gz file ({exc}); re-download or decompress it") from exc
    if not raw.strip():
        raise SourceError(f"{label} is empty: nothing to import")
    if suffix == ".parquet":
        return _parquet(raw, label)
    text = _decode(raw, label)
    reader = {".jsonl": _jsonl, ".json": _json, ".csv": _csv, ".tsv": _csv, ".txt": _txt}[suffix]
    rows = reader(text, label, delimiter="\t") if suffix == ".tsv" else reader(text, label)
    return SourceData(label, rows, _columns(rows))


def _columns(rows: list[Row]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows[:1000]:  # a prefix is enough to name the columns; rows are checked one by one later
        seen.update(dict.fromkeys(row.data))
    return list(seen)


def _decode(raw: bytes, label: str) -> str:
    head = raw[:8192]
    if b"\x00" in head or head.startswith(_BINARY_MAGIC):
        raise SourceError(f"{label} looks like a binary file, not text; export your data as {SUPPORTED}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise SourceError(f"{label}, line {line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as "
                          "UTF-8 and import again (nothing was imported)") from exc


def _bad_json(label: str, where: str, exc: json.JSONDecodeError) -> SourceError:
    return SourceError(f"{label}, {where}: not valid JSON ({exc.msg} at column {exc.colno}); fix that line and import "
                       "again (nothing was imported)")


def _too_deep(label: str, where: str) -> SourceError:
    return SourceError(f"{label}, {where}: JSON nested too deeply to read (hundreds of levels of [ or {{); flatten "
                       "or drop that row and import again (nothing was imported)")


def _valid_text(rows: list[Row], text: str, label: str) -> list[Row]:
    """`rows`, unless a \\udXXX escape left a lone surrogate (not storable text) in one: SourceError naming it.
    Only JSON can hold one (files are decoded strictly), and only where such an escape appears."""
    if _SURROGATE_ESCAPE.search(text):
        for row in rows:
            try:
                json.dumps(row.data, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise SourceError(f"{label}, {row.where}: holds a lone surrogate (a \\ud800-\\udfff escape without "
                                  "its pair), which is not valid text; fix or drop that row and import again "
                                  "(nothing was imported)") from None
    return rows


def _jsonl(text: str, label: str) -> list[Row]:
    rows = []
    for n, line in enumerate(text.split("\n"), 1):  # not splitlines(): JSON strings may hold U+2028
        if not line or line.isspace():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _bad_json(label, f"line {n}", exc) from exc
        except RecursionError:
            raise _too_deep(label, f"line {n}") from None
        if not isinstance(value, dict):
            raise SourceError(f"{label}, line {n}: expected a JSON object per line, got a JSON "
                              f"{type(value).__name__}; write one {{...}} row per line (nothing was imported)")
        rows.append(Row(f"line {n}", value))
    return _valid_text(rows, text, label)


def _json(text: str, label: str) -> list[Row]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON Lines saved as .json (datasets' to_json does this by default)
            return _jsonl(text, label)
        raise _bad_json(label, f"line {exc.lineno}", exc) from exc
    except RecursionError:
        raise _too_deep(label, "the document") from None
    if isinstance(value, dict):
        lists = {k: v for k, v in value.items() if isinstance(v, list)}
        if len(lists) == 1 and all(isinstance(r, dict) for r in next(iter(lists.values()))):
            value = next(iter(lists.values()))  # {"data": [{...}, ...]}
        elif lists and len(lists) == len(value) and len({len(v) for v in lists.values()}) == 1:
            value = [dict(zip(lists, vals)) for vals in zip(*lists.values())]  # column-oriented
        else:
            raise SourceError(f"{label} holds a JSON object, not a list of rows; write [{{...}}, {{...}}] or JSON "
                              "Lines (one object per line)")
    if not isinstance(value, list):
        raise SourceError(f"{label} holds a JSON {type(value).__name__}, not a list of rows; write [{{...}}, ...] or "
                          "JSON Lines (one object per line)")
    for i, item in enumerate(value, 1):
        if not isinstance(item, dict):
            raise SourceError(f"{label}, item {i}: expected an object, got a JSON {type(item).__name__} (nothing "
                              "was imported)")
    return _valid_text([Row(f"item {i}", item) for i, item in enumerate(value, 1)], text, label)


def _csv(text: str, label: str, delimiter: str = ",") -> list[Row]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise SourceError(f"{label} has no header line; the first line must name the columns")
        header = [h.strip() for h in header]
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise SourceError(f"{label}: column {dupes[0]!r} appears twice in the header; rename one of them")
        rows, start = [], reader.line_num + 1
        for record in reader:
            where = f"line {start}"
            start = reader.line_num + 1
            if not record or all(not cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                more = "more" if len(record) > len(header) else "fewer"
                raise SourceError(f"{label}, {where}: {len(record)} fields, {more} than the {len(header)} columns of "
                                  "the header (an unquoted comma or newline?); quote that field and import again "
                                  "(nothing was imported)")
            rows.append(Row(where, {h: maybe_json_list(v) for h, v in zip(header, record)}))
    except csv.Error as exc:
        raise SourceError(f"{label}, line {reader.line_num}: unreadable CSV ({exc}); fix the quoting there and "
                          "import again (nothing was imported)") from exc
    return rows


def _txt(text: str, label: str) -> list[Row]:
    return [Row(f"line {n}", {"prompt": line.rstrip("\r")}) for n, line in enumerate(text.split("\n"), 1)
            if line.strip()]


def _parquet(raw: bytes, label: str) -> SourceData:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(raw))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise SourceError(f"{label} is not a readable Parquet file ({exc}); re-export it") from exc
    return SourceData(label, [Row(f"row {i}", r) for i, r in enumerate(table.to_pylist(), 1)], table.column_names)


def choose_split(label: str, available: list[str], split: str | None) -> str:
    """The split to read: the one asked for, else the only one, else 'train'; a clear error otherwise."""
    if split in available:
        return split
    listed = ", ".join(available)
    if split and split not in POOL_SPLITS:
        raise SourceError(f"{label} has no split {split!r} (it has: {listed}); pass --split with one of them")
    if len(available) == 1:
        return available[0]
    if "train" in available:
        return "train"
    raise SourceError(f"{label} has several splits ({listed}); pass --split with the one to import")


def dataset_rows(data: Any, label: str, split: str | None) -> SourceData:
    """Rows of a datasets.Dataset or DatasetDict (one split of it)."""
    splits: tuple[str, ...] = ()
    chosen = None
    if isinstance(data, dict):  # a DatasetDict (a dict of splits)
        splits = tuple(data.keys())
        chosen = choose_split(label, list(splits), split)
        data = data[chosen]
    prefix = f"{chosen} row" if chosen else "row"
    rows = [Row(f"{prefix} {i}", r) for i, r in enumerate(data.to_list(), 1)]
    return SourceData(label, rows, list(data.column_names), chosen, splits)


def _format_of(path: Path) -> str:
    """'.jsonl' for data.jsonl and data.jsonl.gz (compression is not a format)."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return suffixes[-1] if suffixes else ""


def read_directory(path: Path, split: str | None, label: str) -> SourceData:
    """A saved dataset (load_from_disk), an alignui snapshot, or a folder of data files."""
    target = path / "dataset" if (path / "dataset" / "dataset_dict.json").is_file() else path
    if any((target / marker).is_file() for marker in ("dataset_dict.json", "state.json", "dataset_info.json")):
        from datasets import load_from_disk

        try:
            data = load_from_disk(str(target))
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise SourceError(f"{label} looks like a saved dataset but cannot be loaded ({exc}); save it again with "
                              "save_to_disk") from exc
        return dataset_rows(data, label, split)
    files = sorted(p for d in (path, path / "data") if d.is_dir() for p in d.iterdir()
                   if p.is_file() and any(p.name.lower().endswith(s) or p.name.lower().endswith(s + ".gz")
                                          for s in DATA_SUFFIXES))
    if not files:
        raise SourceError(f"{label} is a directory but not a dataset: no saved Hugging Face dataset "
                          f"(dataset_dict.json or state.json) and no data files in it; point at a file ({SUPPORTED})")
    if split and split not in POOL_SPLITS:
        files = [f for f in files if split in f.name] or files
    kinds = Counter(_format_of(f) for f in files)
    if len(kinds) > 1:  # e.g. a temp or home folder: refuse rather than read unrelated files as data
        listed = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        raise SourceError(f"{label} holds data files of several formats ({listed}): a folder import reads a saved "
                          "dataset, a snapshot, or files of one format; point at one file or a folder of one format")
    rows: list[Row] = []
    for f in files:
        part = read_file(f, f.name)
        rows += [Row(f"{f.name} {r.where}", r.data) for r in part.rows]
    return SourceData(label, rows, _columns(rows))
