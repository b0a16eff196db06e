"""Serving: model loading (device, dtype, 4-bit, the offline demo model), paired generation, LoRA adapters
hot-swapped on the one loaded base, OpenAI-compatible endpoints as generators, pairs across generators by
name, reward models as scorers, truncation reports.
Modules: loading, generation, adapters, endpoints, generators, cpu_decode, demo_model, demo_corpus, reward_model,
truncation.
"""
