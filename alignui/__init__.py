"""alignui: collect preferences, export datasets, train adapters (DPO / RLHF), compare them blind."""

__version__ = "0.1.0"
