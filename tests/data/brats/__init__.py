"""Tests of catvae/data/brats/ (one file per module, named after it)."""
