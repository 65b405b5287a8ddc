"""Tests of catvae/report/ (one file per module, named after it)."""
