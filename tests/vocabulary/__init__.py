"""Tests of catvae/vocabulary/ (one file per module, named after it)."""
