"""Training in rounds (iterative, on-policy DPO): pairs generated from the newest adapter, voted, exported as a
snapshot whose lineage names that run, and the next run started from its adapter.

    plan.py      the round's options, the parent run (checked before anything is written), lineage labels
    generate.py  pairs from the parent adapter (two seeds, or adapter vs base) queued for annotation
    oracle.py    the admin-only synthetic oracle judge for tests and demos (not a human vote)
    export.py    the round's snapshot (lineage in its manifest), optionally mixed with the parent's snapshot
"""
