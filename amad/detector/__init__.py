"""The detector a pipeline ships: fit, score, thresholds, the bundle and the one training
recipe.

Imports ``nn``, ``series``, ``evaluation`` and the top-level modules.
"""
