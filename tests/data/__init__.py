"""Tests of catvae/data/ (one file per module, named after it)."""
