"""Multivariate series as numpy arrays: ``SeriesData``, the loaders (SMD, telemanom,
generic, synthetic), the seeded synthetic generator, splits, scaling and windows.

Imports numpy and ``amad.config``/``amad.errors``/``amad.files``; never torch.
"""
