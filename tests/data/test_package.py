"""One home per job in catvae/data/: a dataset kind's module never imports another kind's module.

What the kinds share (the manifest format, image conversion, atomic publishing and the summary) lives in shared
modules, so a change to one kind cannot break another through an import.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

DATA = REPO / "catvae" / "data"
#: Each dataset kind's code: the BraTS-layout package (brats and the phantom) and one module per other kind.
KIND_MODULES = {"catvae.data.brats": DATA / "brats", "catvae.data.folder": DATA / "folder.py",
                "catvae.data.medmnist": DATA / "medmnist.py"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_dataset_kind_imports_another_kind():
    for module, where in sorted(KIND_MODULES.items()):
        assert where.exists(), where
        for path in sorted(where.glob("*.py")) if where.is_dir() else [where]:
            others = {name for name in _imports(path) for other in set(KIND_MODULES) - {module}
                      if name == other or name.startswith(other + ".")}
            assert not others, f"{path.name} imports {sorted(others)}; move what they share into a shared module"


def test_shared_modules_import_no_kind():
    """What every kind uses (catvae/data/*.py but the kinds' readers) imports no kind's reader at its top; the
    dispatcher, kinds.py, imports them inside its methods only."""
    for path in sorted(DATA.glob("*.py")):
        if path.name in ("folder.py", "medmnist.py"):
            continue
        top = {node.module for node in ast.parse(path.read_text()).body
               if isinstance(node, ast.ImportFrom) and node.module}
        kinds = {name for name in top for kind in KIND_MODULES if name == kind or name.startswith(kind + ".")}
        assert not kinds, f"{path.name} imports {sorted(kinds)} at its top"


def test_every_kind_returns_the_one_summary_type():
    import typing

    from catvae.data.brats.extract import extract_dataset
    from catvae.data.folder import prepare_folder_dataset
    from catvae.data.medmnist import prepare_medmnist_dataset
    from catvae.data.kinds import prepare_dataset
    from catvae.data.publish import PreparedDataset

    for function in (extract_dataset, prepare_folder_dataset, prepare_medmnist_dataset, prepare_dataset):
        assert typing.get_type_hints(function)["return"] is PreparedDataset, function.__qualname__
