"""Metrics on per-step scores (AUC, VUS, F1 families) and the champion/challenger decision.

Pure numpy; never imports ``nn`` or ``detector``.
"""
