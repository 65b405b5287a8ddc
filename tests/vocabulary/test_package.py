"""The vocabulary is torch-free: the Snakefile reads it when it plans the DAG."""

from __future__ import annotations

import subprocess
import sys


def test_the_vocabulary_imports_no_torch():
    """The Snakefile reads it when it plans the DAG."""
    code = "import sys, catvae.vocabulary.arms; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
