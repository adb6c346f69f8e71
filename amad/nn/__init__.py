"""The AMAD network in pure PyTorch: layers, the model and its losses.

Imports torch and ``amad.config`` only: no files, no logging set-up, no device calls.
"""
