"""The local development stack: SeaweedFS on 127.0.0.1 and the Prefect server.

Only ``amad.cli``, ``amad.stages`` and ``flows`` import it.
"""
