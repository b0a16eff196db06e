"""The app side of training: what runs inside the web process (it may use the database and knows
the job runner), never inside a training job. Modules: runner (subprocesses, queue, index), panel (the
Train tab's data), rlhf_plan (RLHF as one queued action), rlhf_view (the RLHF panel's data).
"""
