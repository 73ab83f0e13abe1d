"""Scaling laws: loss law, Chinchilla-style and inference-aware optimal models, Eq. 4 fitter.

numpy/scipy only; importable without torch."""
