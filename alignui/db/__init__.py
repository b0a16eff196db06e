"""The Store: typed access to the DuckDB file under the data root.

`Store` is the Database (connection, cursor per thread, migrations, tx) plus
one mixin per concern; each mixin lives in its own module of this package.
"""

from alignui.db.arena import ArenaMixin, NewJudgment
from alignui.db.core import Database, new_id
from alignui.db.data import BrowseFilter, ComparisonRow, DataMixin
from alignui.db.imports import ImportBatch, ImportsMixin
from alignui.db.pool import PoolMixin
from alignui.db.ratings import Rating, RatingsMixin
from alignui.db.rounds import RoundsMixin
from alignui.db.records import ARENA_VERDICTS, VERDICTS, Comparison, NewGeneration, Prompt
from alignui.db.runs import Run, RunsMixin
from alignui.db.settings import SettingsMixin
from alignui.db.users import UsersMixin
from alignui.db.votes import VotesMixin


class Store(VotesMixin, RatingsMixin, ArenaMixin, PoolMixin, SettingsMixin, DataMixin, ImportsMixin, RunsMixin,
            UsersMixin, RoundsMixin, Database):
    """Open with `Store(path)`; close with `.close()` (or use as a context manager)."""


__all__ = ["ARENA_VERDICTS", "VERDICTS", "ArenaMixin", "BrowseFilter", "Comparison", "ComparisonRow", "DataMixin",
           "ImportBatch", "ImportsMixin", "NewJudgment", "Database", "NewGeneration", "Prompt", "Rating", "Run", "Store", "new_id"]
