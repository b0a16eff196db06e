"""Serving: model loading (device, dtype, 4-bit, the offline demo model), paired generation, LoRA adapters
hot-swapped on the one loaded base, reward models as scorers, truncation reports.
Modules: loading, generation, adapters, cpu_decode, demo_model, demo_corpus, reward_model, truncation.
"""
