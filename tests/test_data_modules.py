"""One home per job in catvae/data/: a dataset kind's module never imports another kind's module.

What the kinds share (the manifest format, image conversion, atomic publishing and the summary) lives in shared
modules, so a change to one kind cannot break another through an import.
"""

from __future__ import annotations

import ast
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "catvae" / "data"
KIND_MODULES = {"catvae.data.brats_extract", "catvae.data.folder", "catvae.data.medmnist"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_dataset_kind_imports_another_kind():
    for module in sorted(KIND_MODULES):
        path = DATA / f"{module.rsplit('.', 1)[1]}.py"
        assert path.is_file(), path
        others = _imports(path) & (KIND_MODULES - {module})
        assert not others, f"{path.name} imports {sorted(others)}; move what they share into a shared module"


def test_every_kind_returns_the_one_summary_type():
    import typing

    from catvae.data.brats_extract import extract_dataset
    from catvae.data.folder import prepare_folder_dataset
    from catvae.data.medmnist import prepare_medmnist_dataset
    from catvae.data.kinds import prepare_dataset
    from catvae.data.publish import PreparedDataset

    for function in (extract_dataset, prepare_folder_dataset, prepare_medmnist_dataset, prepare_dataset):
        assert typing.get_type_hints(function)["return"] is PreparedDataset, function.__qualname__
