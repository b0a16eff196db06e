"""Training: LoRA adapters from preference snapshots, run as `python -m alignui train <method>` subprocesses.

Modules: config (TrainConfig base, presets, --set), methods (name -> config class + job), common
(device/dtype, loading, LoRA), preflight, metrics (TrainerCallback), job (the envelope around a method:
cancel, resume, failures), evaluation (verdict, watch-outs, samples), dpo, push (the adapter to the hub with
a model card), synthetic (checkable preference data for tests and benchmarks); reward, rlhf, rlhf_eval, sft:
the RLHF methods. The run directory layout is alignui.runs (shared with the arena's judges); the command
line is alignui.cli.train; the app side (runner, Train tab data) is the subpackage training.app.
Importing this package imports nothing heavy; torch/trl load inside the job functions.
"""
