"""The reporting stage: paper-shaped tables, figures and the run's provenance record.

Submodules are imported on use (``from catvae.report.tables import ...``) so that building a table
never pays for importing matplotlib. Only the subject bootstrap (`statistics`) imports torch, indirectly, when it
scores pooled predictions with :mod:`catvae.metrics.classification` (the `catvae.metrics` package imports its
torch-based modules eagerly).
"""
