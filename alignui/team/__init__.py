"""Teams: who is acting and what they may do (identity, roles), per-user limits, the Admin tab's actions,
and running as a Hugging Face Space (persistence, backups).
Modules: identity, admin, limits, spaces.
"""
