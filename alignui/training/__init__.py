"""Training: LoRA adapters from preference snapshots, run as `python -m alignui train <method>` subprocesses.

Modules: config (TrainConfig base, presets, --set), methods (name -> config class + job), registry (the run
directory layout), common (device/dtype, loading, LoRA), preflight, metrics (TrainerCallback), job (the
envelope around a method), evaluation (verdict, watch-outs, samples), dpo, runner (the app side), hub.
Importing this package imports nothing heavy; torch/trl load inside the job functions.
"""
