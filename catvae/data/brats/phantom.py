"""The embedded default dataset: a BraTS 2020-layout phantom cohort, offline.

Real anatomy comes from the MNI ICBM152 2009 template (T1 and grey/white-matter probability maps) that ships
inside the nilearn wheel, so the demo runs without downloading anything. Each subject is the template under
its own smooth deformation, with four MR contrasts mixed from the tissue maps, a simulated glioma labelled
as in BraTS (1 necrotic core, 2 edema, 4 enhancing), a bias field and Rician noise. Files follow BraTS 2020:
`<out_dir>/<ID>/<ID>_{flair,t1,t1ce,t2,seg}.nii.gz`, int16, skull-stripped (background 0).

Per-subject random streams come from `(seed, subject index)`, so a cohort is byte-identical whatever the
number of worker processes.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation
from threadpoolctl import threadpool_limits

from catvae.data.brats.discover import MODALITIES  # the four sequences of the BraTS layout the cohort is written in
from catvae.data.brats.phantom_tumor import (
    TumorMaps,
    low_frequency_field,
    render_tumor,
    sample_tumor_spec,
)
from catvae.data.brats.slicing import PLANE_AXES  # the slicer's plane -> axis convention, shared
from catvae.errors import CatvaeError
from catvae.io import atomic_path

log = logging.getLogger("catvae.data.brats.phantom")

BRATS_SHAPE: tuple[int, int, int] = (240, 240, 155)
# BraTS volumes are 240 x 240 x 155 voxels of 1 mm; other shapes keep that field of view with larger voxels.
_FOV_MM = np.array([240.0, 240.0, 155.0])
_MIN_SIDE = 8  # as catvae/schemas/config.schema.yaml allows; below that there is no anatomy left

# Mean signal per tissue and sequence (arbitrary units of BraTS-like magnitude). Columns: CSF, GM, WM,
# edema, enhancing rim, necrotic / non-enhancing core. The orderings are the textbook ones: FLAIR suppresses
# CSF and shows edema bright; T1 has WM > GM > CSF; T2 has CSF brightest; T1ce = T1 plus a bright rim.
_CONTRAST: dict[str, tuple[float, float, float, float, float, float]] = {
    "flair": (70.0, 430.0, 330.0, 760.0, 580.0, 300.0),
    "t1": (180.0, 420.0, 620.0, 370.0, 400.0, 200.0),
    "t1ce": (180.0, 430.0, 630.0, 380.0, 1150.0, 190.0),
    "t2": (1500.0, 700.0, 480.0, 1150.0, 800.0, 1400.0),
}
_NOISE_SD = 0.03  # Rician noise SD as a fraction of the sequence's WM signal
_BIAS_SD = 0.12  # SD of the log bias field
_DEFORM_SD_MM = 3.0  # SD of the smooth displacement field
_EDEMA_TISSUE_SHARE = 0.3  # infiltrative edema keeps some of the underlying tissue contrast


@dataclass(frozen=True)
class _Template:
    """Tissue maps resampled onto one output grid, plus that grid's geometry."""

    maps: np.ndarray  # [3, X, Y, Z]: CSF, GM, WM probabilities (their sum is the soft brain mask)
    spacing: np.ndarray  # output voxel size, mm
    affine: np.ndarray  # output affine (MNI mm, RAS)


def _native_tissue_maps() -> tuple[np.ndarray, np.ndarray]:
    """CSF, GM and WM maps on the 1 mm template grid, from nilearn's bundled ICBM152 2009 files.

    The bundled files hold T1, GM and WM only; CSF is what the skull-stripped brain leaves once GM and WM
    are taken, split by T1 darkness (bright leftovers such as the brainstem go back to WM/GM by T1
    intensity). The three maps sum to the brain mask, so background stays exactly 0.
    """
    from nilearn import datasets  # heavy import, and only this module needs it

    t1_img = datasets.load_mni152_template(resolution=1)
    t1 = np.asarray(t1_img.dataobj, dtype=np.float32)
    gm = np.asarray(datasets.load_mni152_gm_template(resolution=1).dataobj, dtype=np.float32)
    wm = np.asarray(datasets.load_mni152_wm_template(resolution=1).dataobj, dtype=np.float32)
    brain = (t1 > 0).astype(np.float32)
    wm = np.minimum(wm, 1.0) * brain
    gm = np.minimum(gm, brain - wm)
    rest = brain - gm - wm
    csf = rest * np.clip((0.5 - t1) / 0.2, 0.0, 1.0)
    other = rest - csf
    to_wm = np.clip((t1 - 0.6) / 0.2, 0.0, 1.0)
    maps = np.stack([csf, gm + other * (1 - to_wm), wm + other * to_wm]).astype(np.float32)
    return maps, np.asarray(t1_img.affine)


@functools.lru_cache(maxsize=2)
def _template(shape: tuple[int, int, int]) -> _Template:
    """The template on one output grid, brain centred as in BraTS (cached: a cohort's subjects share it).

    Resampling once per shape keeps the per-subject deformation a lookup in a small, cache-friendly array.
    """
    native, native_affine = _native_tissue_maps()
    spacing = _FOV_MM / np.asarray(shape)
    # Anti-alias before sampling a coarser grid; at BraTS' 1 mm nothing is filtered.
    sigma = [0.0] + [0.42 * s if s > 1.0 else 0.0 for s in spacing]
    if max(sigma) > 0:
        native = ndimage.gaussian_filter(native, sigma=sigma)
    idx = np.argwhere(native.sum(0) > 0.5)
    center = (idx.min(0) + idx.max(0)) / 2.0  # brain bounding-box centre goes to the volume centre
    half = (np.asarray(shape) - 1) / 2.0
    axes = [center[a] + (np.arange(shape[a]) - half[a]) * spacing[a] for a in range(3)]
    coords = np.stack(np.meshgrid(*axes, indexing="ij")).astype(np.float32)
    maps = np.stack([ndimage.map_coordinates(m, coords, order=1, output=np.float32) for m in native])
    world_center = native_affine[:3, :3] @ center + native_affine[:3, 3]
    affine = np.eye(4)
    affine[:3, :3] = np.diag(spacing)
    affine[:3, 3] = world_center - spacing * half
    return _Template(maps, spacing, affine)


def simulate_subject(
    index: int, shape: tuple[int, int, int] = BRATS_SHAPE, seed: int = 0, return_tissue: bool = False
) -> dict[str, np.ndarray]:
    """One phantom subject in memory: `{"flair", "t1", "t1ce", "t2", "seg"}` -> int16 arrays of `shape`.

    Deterministic in `(index, shape, seed)`. With `return_tissue`, also the subject's ground-truth tissue
    probabilities `"csf"`, `"gm"`, `"wm"` (float32), e.g. to check contrasts or score a segmenter.
    """
    shape = _check_shape(shape)
    seed = _check_seed(seed)
    with threadpool_limits(limits=1):  # single-threaded BLAS: identical bits whatever the machine's cores
        return _simulate(index, shape, seed, return_tissue)


def _simulate(index: int, shape: tuple[int, int, int], seed: int, return_tissue: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    tpl = _template(shape)
    tissue = _deformed_tissue(rng, tpl)
    brain = np.minimum(tissue.sum(0), 1.0)
    spec = sample_tumor_spec(rng, tissue[2], tuple(tpl.spacing))
    tumor = render_tumor(rng, spec, brain, tissue[2], tuple(tpl.spacing))
    mask = brain > 0.5
    out = {m: _contrast(rng, m, tissue, tumor, mask) for m in MODALITIES}
    out["seg"] = tumor.labels
    if return_tissue:
        out.update(csf=tissue[0], gm=tissue[1], wm=tissue[2])
    return out


def _deformed_tissue(rng: np.random.Generator, tpl: _Template) -> np.ndarray:
    """Sample the template under a random global affine and smooth displacement (one interpolation)."""
    shape = tpl.maps.shape[1:]
    half = (np.asarray(shape) - 1) / 2.0
    # output voxel -> mm from the volume centre, 1-D per axis and broadcast below
    pos = [((np.arange(n) - half[a]) * tpl.spacing[a]).astype(np.float32) for a, n in enumerate(shape)]
    grids = np.meshgrid(*pos, indexing="ij", sparse=True)
    scale = np.exp(0.06 * rng.standard_normal(3))  # head size and shape vary by a few percent
    rot = Rotation.from_rotvec(np.deg2rad(4.0) * rng.standard_normal(3)).as_matrix()
    lin = rot * scale  # columns scaled
    disp = _DEFORM_SD_MM * low_frequency_field(rng, shape, n_modes=4, channels=3)
    coords = np.empty((3,) + shape, np.float32)
    for a in range(3):
        mm = lin[a, 0] * grids[0] + lin[a, 1] * grids[1] + lin[a, 2] * grids[2] + disp[a]
        coords[a] = half[a] + mm / tpl.spacing[a]
    return np.stack([ndimage.map_coordinates(m, coords, order=1, output=np.float32) for m in tpl.maps])


def _contrast(
    rng: np.random.Generator,
    modality: str,
    tissue: np.ndarray,
    tumor: TumorMaps,
    mask: np.ndarray,
) -> np.ndarray:
    """One MR sequence: tissue mixture, tumour compartments, bias field, Rician noise; 0 outside the brain."""
    csf_i, gm_i, wm_i, edema_i, rim_i, core_i = _CONTRAST[modality]
    csf, gm, wm = tissue
    signal = csf * csf_i + gm * gm_i + wm * wm_i
    edema, rim, core = tumor.edema, tumor.rim, tumor.core
    whole = edema + rim + core
    edema_signal = _EDEMA_TISSUE_SHARE * signal + (1 - _EDEMA_TISSUE_SHARE) * edema_i
    signal = signal * (1 - whole) + edema * edema_signal + rim * rim_i + core * core_i
    bias = np.exp(_BIAS_SD * low_frequency_field(rng, mask.shape, n_modes=3, channels=1)[0])
    signal *= bias * np.exp(0.1 * rng.standard_normal())  # scanner gain differs between sessions
    values = signal[mask]
    sd = _NOISE_SD * wm_i
    real = values + sd * rng.standard_normal(values.size, np.float32)
    noisy = np.hypot(real, sd * rng.standard_normal(values.size, np.float32))  # magnitude image: Rician
    volume = np.zeros(mask.shape, np.int16)
    volume[mask] = np.clip(np.rint(noisy), 1, np.iinfo(np.int16).max).astype(np.int16)  # brain is never 0
    return volume


def subject_ids(n_subjects: int, prefix: str = "BraTS20_Training") -> list[str]:
    """BraTS-style ids, 1-based and zero-padded: `BraTS20_Training_001`."""
    width = max(3, len(str(n_subjects)))
    return [f"{prefix}_{i:0{width}d}" for i in range(1, n_subjects + 1)]


def write_phantom_cohort(
    out_dir: str | os.PathLike,
    n_subjects: int,
    shape: tuple[int, int, int] = BRATS_SHAPE,
    seed: int = 0,
    threads: int = 1,
    prefix: str = "BraTS20_Training",
) -> list[str]:
    """Write `n_subjects` phantom subjects in BraTS 2020 layout under `out_dir`; return their ids.

    Each subject is written into a hidden temporary folder and renamed into place when all five files are
    done, so an interrupted run never leaves a subject folder that looks complete. `threads` worker
    processes share the work; results do not depend on it.
    """
    n_subjects = _check_n_subjects(n_subjects)
    shape = _check_shape(shape)
    seed = _check_seed(seed)
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise CatvaeError(f"'threads' must be a positive integer, got {threads!r}")
    if not prefix or "/" in prefix:
        raise CatvaeError(f"subject id prefix must be a non-empty name without '/', got {prefix!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = subject_ids(n_subjects, prefix)
    _template(shape)  # prepare once here: forked workers inherit the cache
    jobs = [(str(out), sid, i, shape, seed) for i, sid in enumerate(ids)]
    log.info("writing %d phantom subjects of shape %s to %s (%d worker(s))", n_subjects, shape, out, threads)
    if threads == 1 or n_subjects == 1:
        for k, job in enumerate(jobs, 1):
            _write_subject(*job)
            log.info("phantom subject %s done (%d/%d)", job[1], k, n_subjects)
    else:
        with ProcessPoolExecutor(max_workers=min(threads, n_subjects)) as pool:
            for k, sid in enumerate(pool.map(_write_subject, *zip(*jobs)), 1):
                log.info("phantom subject %s done (%d/%d)", sid, k, n_subjects)
    return ids


def _write_subject(out_dir: str, subject: str, index: int, shape: tuple[int, int, int], seed: int) -> str:
    volumes = simulate_subject(index, shape, seed)
    affine = _template(shape).affine
    final = Path(out_dir) / subject
    tmp = Path(tempfile.mkdtemp(prefix=f".{subject}.", suffix=".tmp", dir=out_dir))
    try:
        for name, data in volumes.items():
            img = nib.Nifti1Image(data, affine)
            img.header.set_data_dtype(np.int16)
            img.header.set_xyzt_units("mm")
            nib.save(img, tmp / f"{subject}_{name}.nii.gz")
        if final.exists():  # a re-run replaces the old subject as a whole
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return subject


def central_slice_flags(seg: np.ndarray) -> dict[str, bool]:
    """Whether the single central slice of each plane (index `n // 2`) holds any tumour voxel."""
    flags = {}
    for plane, axis in PLANE_AXES.items():
        flags[plane] = bool(np.take(seg, seg.shape[axis] // 2, axis=axis).any())
    return flags


def central_slice_tumor_fraction(cohort_dir: str | os.PathLike) -> float:
    """Share of central slices (3 per subject: our reading of the paper's 1,107 = 3 x 369) that are `Tumor`; BraTS 2020 gives 0.75."""
    segs = sorted(Path(cohort_dir).glob("*/*_seg.nii.gz"))
    if not segs:
        raise CatvaeError(f"no '*/*_seg.nii.gz' files under phantom cohort folder {cohort_dir}")
    hits = [v for p in segs for v in central_slice_flags(np.asarray(nib.load(p).dataobj)).values()]
    return float(np.mean(hits))


def render_phantom_preview(cohort_dir: str | os.PathLike, out_png: str | os.PathLike, n_subjects: int = 3) -> None:
    """Figure: for the first `n_subjects`, the central FLAIR slice of each plane with label outlines overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    folder = Path(cohort_dir)
    found = folder.iterdir() if folder.is_dir() else []
    subjects = sorted(p for p in found if p.is_dir() and not p.name.startswith("."))[:n_subjects]
    if not subjects:
        raise CatvaeError(f"no subject folders under phantom cohort folder {cohort_dir}")
    colors = {1: "#e41a1c", 2: "#4daf4a", 4: "#ffd92f"}
    fig, axes = plt.subplots(len(subjects), 3, figsize=(9, 3.1 * len(subjects)), squeeze=False)
    for row, folder in enumerate(subjects):
        sid = folder.name
        try:
            flair = np.asarray(nib.load(folder / f"{sid}_flair.nii.gz").dataobj, dtype=np.float32)
            seg = np.asarray(nib.load(folder / f"{sid}_seg.nii.gz").dataobj)
        except FileNotFoundError as err:
            raise CatvaeError(f"phantom subject {folder} lacks {Path(err.filename).name}") from err
        vmax = np.percentile(flair[flair > 0], 99.5) if (flair > 0).any() else 1.0
        for col, (plane, axis) in enumerate(PLANE_AXES.items()):
            k = flair.shape[axis] // 2
            img = np.take(flair, k, axis=axis).T
            lab = np.take(seg, k, axis=axis).T.astype(float)
            ax = axes[row, col]
            ax.imshow(img, cmap="gray", origin="lower", vmin=0, vmax=vmax, interpolation="nearest")
            for value, color in colors.items():  # outlines, so the FLAIR signal under them stays visible
                if (lab == value).any():
                    ax.contour(lab == value, levels=[0.5], colors=[color], linewidths=0.9)
            ax.set_title(f"{sid}\n{plane} {k} ({'Tumor' if lab.any() else 'NoTumor'})", fontsize=8)
            ax.axis("off")
    fig.legend(
        handles=[Patch(color=colors[v], label=f"{v}: {n}") for v, n in
                 [(1, "necrotic / non-enhancing core"), (2, "edema"), (4, "enhancing")]],
        loc="lower center", ncol=3, fontsize=8, frameon=False,
    )
    fig.suptitle("Phantom cohort: central FLAIR slices with BraTS labels", fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _check_n_subjects(n_subjects: object) -> int:
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, (int, np.integer)) or n_subjects < 1:
        raise CatvaeError(f"config key 'dataset.phantom.n_subjects' must be an integer >= 1, got {n_subjects!r}")
    return int(n_subjects)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CatvaeError(f"config key 'dataset.phantom.seed' must be an integer >= 0, got {seed!r}")
    return int(seed)


def _check_shape(shape: object) -> tuple[int, int, int]:
    try:
        dims = tuple(shape)  # type: ignore[arg-type]
    except TypeError:
        dims = ()
    if len(dims) != 3 or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < _MIN_SIDE for d in dims):
        raise CatvaeError(
            f"config key 'dataset.phantom.shape' must be 3 integers >= {_MIN_SIDE} (e.g. [240, 240, 155]), got {shape!r}"
        )
    return tuple(int(d) for d in dims)  # type: ignore[return-value]
