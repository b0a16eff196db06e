"""Serving: model loading (device, dtype, 4-bit, the offline demo model), paired generation, LoRA adapters
hot-swapped on the one loaded base, OpenAI-compatible endpoints as generators, pairs across generators by
name, reward models as scorers, truncation reports.
Modules: loading, loader, hub, generation, scheduler and kv_batch (decode steps shared across requests),
decode_process (those steps in a child process), adapters, endpoints, remote, generators,
cpu_decode, demo_model, demo_corpus, reward_model, truncation.
"""
