"""Small file helpers: atomic writes, so an interrupted rule never leaves output that looks complete."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Mapping

import pandas as pd


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            # mkstemp creates 0600 files; results are shared on clusters, so give them the usual umask mode.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically, with stable key order so diffs between runs are readable."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_csv(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    """Write a CSV atomically (no index column)."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _json_default(value: Any) -> Any:
    # NumPy scalars and paths show up in metrics; make them plain JSON.
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class JobFiles:
    """Base of the frozen dataclasses that name every file one job writes (each field a `Path`).

    In the workflow a rule names each path and the script hands them over (`of`), so file names are decided in the
    rules alone; `in_folder` gives the default names (`DEFAULT_NAMES`) for the CLI and the tests.
    """

    DEFAULT_NAMES: ClassVar[dict[str, str]] = {}

    @classmethod
    def in_folder(cls, folder: str | os.PathLike, omit: Iterable[str] = ()):
        out, skip = Path(folder), set(omit)
        return cls(**{name: out / file for name, file in cls.DEFAULT_NAMES.items() if name not in skip})

    @classmethod
    def of(cls, paths: Mapping[str, str | os.PathLike]):
        """From a mapping such as a rule's named outputs; a name that is not a field is an error."""
        from catvae.errors import CatvaeError

        names = {f.name for f in fields(cls)}
        unknown = sorted(set(paths) - names)
        if unknown:
            raise CatvaeError(f"unknown {cls.__name__} output name(s) {unknown}; expected {sorted(names)}")
        return cls(**{k: Path(v) for k, v in paths.items()})
