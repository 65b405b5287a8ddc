"""Tests of catvae/classifier/ (one file per module, named after it)."""
