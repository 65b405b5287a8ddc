"""Tests of catvae/generators/ (one file per module, named after it)."""
