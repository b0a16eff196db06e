"""Data in: import formats -> rows in the database (pairs with verdict 'a', or prompts for the pool).

One module per concern: readers (files, directories, saved datasets), hub
(hub datasets and pushing snapshots), records (row checks), mapping
(--map and the missing-columns error), detect (format registry), one module
per format (trl, hh_rlhf, ultrafeedback, oasst, prompts), importer (the
whole import as one transaction). Nothing here imports gradio or torch.
"""

from alignui.datasets_io.detect import FORMAT_CHOICES, FORMATS
from alignui.datasets_io.importer import ImportOptions, ImportSummary, SourcePreview, import_source, preview_source
from alignui.datasets_io.records import SourceError

__all__ = ["FORMATS", "FORMAT_CHOICES", "ImportOptions", "ImportSummary", "SourceError", "SourcePreview",
           "import_source", "preview_source"]
