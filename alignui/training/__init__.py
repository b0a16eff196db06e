"""Training: LoRA adapters from preference snapshots, run as `python -m alignui train <method>` subprocesses.

Modules: config (TrainConfig base, presets, --set), methods (name -> config class + job), registry (the run
directory layout), common (device/dtype, loading, LoRA), preflight, metrics (TrainerCallback), job (the
envelope around a method: cancel, resume, failures), evaluation (verdict, watch-outs, samples), dpo, runner
(the app side: subprocesses, queue, index), panel (the Train tab's data), hub (push with a model card),
synthetic (checkable preference data for tests and benchmarks); reward, rlhf, sft: the RLHF methods.
Importing this package imports nothing heavy; torch/trl load inside the job functions.
"""
