"""Incoming telemetry: the contract, the Great Expectations suite, the validation report,
ingest, the versioned dataset, DVC versioning and the named corruptions.

Never imports ``nn`` or ``detector``.
"""
