"""Which import format a source is in: detected from its columns and first row, or named by the user.

Owns: the registry of format modules (each has NAME, REQUIRED, DESCRIPTION,
matches(columns, first_row) and convert(rows, checker)), the detection order
(most specific first: oasst, ultrafeedback, hh-rlhf, trl, unpaired, prompts), and the
friendly error when nothing fits.
"""

from __future__ import annotations

from types import ModuleType

from alignui.data import hh_rlhf, oasst, prompts, trl, ultrafeedback, unpaired
from alignui.data.mapping import missing_columns_error, suggest_map
from alignui.data.readers import SourceData

#: Detection order: a source is taken by the first format whose matches() accepts it.
FORMATS: dict[str, ModuleType] = {m.NAME: m for m in (oasst, ultrafeedback, hh_rlhf, trl, unpaired, prompts)}
FORMAT_CHOICES = ("auto", "trl", "hh-rlhf", "ultrafeedback", "oasst", "unpaired", "prompts")
PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")


def needed_columns(fmt: ModuleType, columns: list[str]) -> tuple[str, ...]:
    return fmt.required_for(columns) if hasattr(fmt, "required_for") else fmt.REQUIRED


def detect(columns: list[str], first: dict) -> ModuleType | None:
    return next((fmt for fmt in FORMATS.values() if fmt.matches(columns, first)), None)


def choose_format(data: SourceData, requested: str = "auto") -> ModuleType:
    """The format module for `data`: the one requested (if its columns are there) or the detected one."""
    first = data.rows[0].data if data.rows else {}
    if requested not in FORMAT_CHOICES:
        raise ValueError(f"unknown format {requested!r}")
    if requested != "auto":
        fmt = FORMATS[requested]
        needed = needed_columns(fmt, data.columns)
        accepts = getattr(fmt, "accepts", lambda cols: all(c in cols for c in needed))
        if fmt.matches(data.columns, first) or accepts(data.columns):
            return fmt
        raise missing_columns_error(data.label, data.columns, needed, fmt.DESCRIPTION)
    found = detect(data.columns, first)
    if found is None:
        if "=COLUMN" in suggest_map(data.columns, ("chosen", "rejected")) and "=COLUMN" not in suggest_map(
                data.columns, ("prompt",)):  # nothing looks like responses: most likely a prompt list
            raise missing_columns_error(data.label, data.columns, ("prompt",), "a prompt list (a 'prompt' column)")
        what = ("preference data (TRL prompt/chosen/rejected, hh-rlhf chosen/rejected transcripts, UltraFeedback, "
                "oasst1 messages) or a prompt list (a 'prompt' column)")
        raise missing_columns_error(data.label, data.columns, PREFERENCE_COLUMNS, what)
    return found
