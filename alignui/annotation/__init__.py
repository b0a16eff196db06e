"""Annotation: the workspace flow of one browser session, saved pairs and verdicts, generation prefs, the
prompt pool, guidelines, overlap assignment, curation of stored comparisons and the live counters.
Modules: pairs, workspace, prefs, pool, guidelines, overlap, curation, stats.
"""
