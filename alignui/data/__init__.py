"""Data in and out: import formats -> rows in the database, and votes -> immutable dataset snapshots.

One module per concern: readers (files, directories, saved datasets), hub_datasets
(hub datasets and pushing snapshots), records (row checks), mapping
(--map and the missing-columns error), detect (format registry), one module
per format (trl, hh_rlhf, ultrafeedback, oasst, prompts), importer (the
whole import as one transaction); export (votes -> snapshot), snapshot (the
on-disk snapshot format, read back without a database), card (the dataset
card). Nothing here imports gradio or torch.
"""

from alignui.data.detect import FORMAT_CHOICES, FORMATS
from alignui.data.importer import ImportOptions, ImportSummary, SourcePreview, import_source, preview_source
from alignui.data.records import SourceError

__all__ = ["FORMATS", "FORMAT_CHOICES", "ImportOptions", "ImportSummary", "SourceError", "SourcePreview",
           "import_source", "preview_source"]
