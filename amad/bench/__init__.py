"""The benchmark: detectors behind one interface, baselines, the runner and its report.

Only ``amad.stages``, ``amad.cli`` and ``flows`` import it.
"""
