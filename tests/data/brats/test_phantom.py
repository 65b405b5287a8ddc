"""The embedded phantom cohort: BraTS layout, determinism, plausible anatomy and tumours, offline."""

from __future__ import annotations

import socket

import nibabel as nib
import numpy as np
import pytest

from catvae.data.brats import phantom
from catvae.data.brats.phantom import (
    MODALITIES,
    central_slice_flags,
    central_slice_tumor_fraction,
    render_phantom_preview,
    simulate_subject,
    write_phantom_cohort,
)
from catvae.data.brats.phantom_tumor import low_frequency_field
from catvae.errors import CatvaeError

SHAPE = (48, 48, 32)
N = 20


@pytest.fixture(scope="module")
def offline():
    """Any socket connection fails: the template must come from the nilearn wheel, not the network."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        yield


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, offline):
    out = tmp_path_factory.mktemp("phantom")
    ids = write_phantom_cohort(out, N, shape=SHAPE, seed=0)
    return out, ids


def _load(folder, sid, name):
    img = nib.load(folder / sid / f"{sid}_{name}.nii.gz")
    return img, np.asarray(img.dataobj)


def test_files_names_dtype_shape_affine(cohort):
    out, ids = cohort
    assert ids[0] == "BraTS20_Training_001" and ids[-1] == f"BraTS20_Training_{N:03d}" and len(ids) == N
    assert sorted(p.name for p in out.iterdir()) == ids  # no temporary folders left behind
    for sid in ids[:3]:
        assert sorted(p.name for p in (out / sid).iterdir()) == sorted(
            f"{sid}_{m}.nii.gz" for m in (*MODALITIES, "seg")
        )
        for name in (*MODALITIES, "seg"):
            img, data = _load(out, sid, name)
            assert data.dtype == np.int16 and img.get_data_dtype() == np.int16
            assert data.shape == SHAPE
            # BraTS' 240 x 240 x 155 mm field of view, kept with larger voxels
            np.testing.assert_allclose(img.header.get_zooms(), (5.0, 5.0, 155 / 32))


def test_written_files_match_simulation_and_are_deterministic(cohort):
    out, ids = cohort
    again = simulate_subject(2, SHAPE, seed=0)
    for name, data in again.items():
        np.testing.assert_array_equal(_load(out, ids[2], name)[1], data)
    other = simulate_subject(2, SHAPE, seed=1)
    assert not np.array_equal(other["flair"], again["flair"])


def test_workers_do_not_change_results(cohort, tmp_path):
    out, ids = cohort
    write_phantom_cohort(tmp_path, 3, shape=SHAPE, seed=0, threads=2)
    for sid in ids[:3]:
        for name in ("flair", "seg"):
            np.testing.assert_array_equal(_load(tmp_path, sid, name)[1], _load(out, sid, name)[1])


def test_labels_and_tumour_inside_brain(cohort):
    out, ids = cohort
    seen = set()
    for sid in ids:
        seg = _load(out, sid, "seg")[1]
        values = set(np.unique(seg).tolist())
        assert values <= {0, 1, 2, 4}
        assert seg.any(), f"{sid} has no tumour"
        seen |= values
        brain = _load(out, sid, "flair")[1] > 0
        assert brain.mean() > 0.15  # a brain, not a speck
        assert not (seg > 0)[~brain].any(), f"{sid}: tumour outside the brain"
        for m in ("t1", "t1ce", "t2"):  # one skull-stripped mask shared by all sequences
            np.testing.assert_array_equal(_load(out, sid, m)[1] > 0, brain)
    assert seen == {0, 1, 2, 4}


def test_contrast_ordering_per_sequence(offline):
    # A finer grid than the cohort's so pure-tissue voxels exist; subject 0 has an enhancing tumour.
    v = simulate_subject(0, (80, 80, 52), seed=0, return_tissue=True)
    healthy = v["seg"] == 0
    wm = healthy & (v["wm"] > 0.8)
    gm = healthy & (v["gm"] > 0.7)
    csf = healthy & (v["csf"] > 0.7)
    edema, enhancing = v["seg"] == 2, v["seg"] == 4
    for region in (wm, gm, csf, edema, enhancing):
        assert region.sum() >= 20

    def mean(mod, region):
        return float(v[mod][region].mean())

    assert mean("flair", edema) > mean("flair", gm) > mean("flair", wm) > mean("flair", csf)
    assert mean("t1", wm) > mean("t1", gm) > mean("t1", csf)
    assert mean("t2", csf) > mean("t2", gm) > mean("t2", wm)
    assert mean("t2", edema) > mean("t2", wm)
    assert mean("t1ce", enhancing) > 1.5 * mean("t1", enhancing)
    assert mean("t1ce", enhancing) > mean("t1ce", wm)


def test_central_slice_tumour_fraction_near_brats(cohort):
    out, ids = cohort
    # BraTS 2020 under the paper's rule: 830 of 1,107 central slices show tumour (0.75).
    assert 0.6 <= central_slice_tumor_fraction(out) <= 0.9


def test_central_slice_flags_use_the_middle_index():
    seg = np.zeros((10, 12, 8), np.int16)
    seg[5, 0, 0] = 2  # on the central sagittal slice only
    assert central_slice_flags(seg) == {"sagittal": True, "coronal": False, "axial": False}
    seg[0, 6, 4] = 4
    assert central_slice_flags(seg) == {"sagittal": True, "coronal": True, "axial": True}


def test_interrupted_subject_leaves_nothing_complete_looking(tmp_path, monkeypatch, offline):
    calls = {"n": 0}
    real_save = nib.save

    def failing_save(img, path):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real_save(img, path)

    monkeypatch.setattr(phantom.nib, "save", failing_save)
    with pytest.raises(OSError):
        write_phantom_cohort(tmp_path, 2, shape=SHAPE, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_rerun_replaces_subject(tmp_path):
    write_phantom_cohort(tmp_path, 1, shape=SHAPE, seed=0)
    write_phantom_cohort(tmp_path, 1, shape=SHAPE, seed=5)
    seg = _load(tmp_path, "BraTS20_Training_001", "flair")[1]
    np.testing.assert_array_equal(seg, simulate_subject(0, SHAPE, seed=5)["flair"])
    assert [p.name for p in tmp_path.iterdir()] == ["BraTS20_Training_001"]


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_bad_n_subjects(tmp_path, bad):
    with pytest.raises(CatvaeError, match=r"dataset\.phantom\.n_subjects"):
        write_phantom_cohort(tmp_path, bad, shape=SHAPE)


@pytest.mark.parametrize("bad", [(48, 48), (48, 48, 7), (48.0, 48, 32), "abc", None, (48, 48, 32, 1)])
def test_bad_shape(tmp_path, bad):
    with pytest.raises(CatvaeError, match=r"dataset\.phantom\.shape"):
        write_phantom_cohort(tmp_path, 2, shape=bad)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [-1, 1.0, None])
def test_bad_seed(tmp_path, bad):
    with pytest.raises(CatvaeError, match=r"dataset\.phantom\.seed"):
        write_phantom_cohort(tmp_path, 1, shape=SHAPE, seed=bad)


def test_preview_figure(cohort, tmp_path):
    out, _ = cohort
    png = tmp_path / "preview.png"
    render_phantom_preview(out, png, n_subjects=2)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    with pytest.raises(CatvaeError, match="no subject folders"):
        render_phantom_preview(tmp_path / "nothing", png)


def test_low_frequency_field_is_smooth_and_seeded():
    a = low_frequency_field(np.random.default_rng(1), (40, 30, 20), channels=2)
    b = low_frequency_field(np.random.default_rng(1), (40, 30, 20), channels=2)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 40, 30, 20) and a.dtype == np.float32
    np.testing.assert_allclose(a.reshape(2, -1).std(axis=1), 1.0, rtol=1e-4)
    assert np.abs(np.diff(a, axis=1)).mean() < 0.2  # neighbours differ little: low frequency
