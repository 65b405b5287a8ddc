"""The reporting stage: paper-shaped tables, figures and the run's provenance record.

Submodules are imported on use (``from catvae.report.tables import ...``) so that building a table
never pays for importing matplotlib or torch.
"""
