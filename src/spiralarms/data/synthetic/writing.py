"""A synthetic data set on disk: JPEG cutouts and a GZ2-schema catalogue."""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from spiralarms.catalog.classes import ARM_CLASSES
from spiralarms.catalog.schema import GZ2_ID
from spiralarms.data.synthetic.parameters import (
    GZ2_IMAGE_SIZE,
    _check_size,
    galaxy_class,
    get_preset,
    galaxy_rng,
    sample_galaxy_params,
)
from spiralarms.data.synthetic.render import LUPTON_Q, LUPTON_STRETCH, render_galaxy
from spiralarms.data.synthetic.sky import list_sky_cutouts, load_sky, sky_rng
from spiralarms.data.synthetic.votes import simulate_gz2_votes
from spiralarms.errors import SpiralArmsError
from spiralarms.io.atomic import write_bytes

#: First synthetic ``dr7objid``; galaxy ``i`` gets ``SYNTHETIC_ID_BASE + i``.
SYNTHETIC_ID_BASE = 587_700_000_000_000_000


def galaxy_id(index: int) -> int:
    """The ``dr7objid`` of synthetic galaxy ``index`` (deterministic, unique)."""
    return SYNTHETIC_ID_BASE + int(index)


def make_galaxy(index: int, seed: int = 0, size: int = GZ2_IMAGE_SIZE, preset: str | None = None,
                sky_files: Sequence[str] | None = None):
    """Parameters, image, masks and catalogue row of synthetic galaxy ``index``.

    Parameters
    ----------
    index : int
        Position in the data set (its class is ``galaxy_class(index)``).
    seed : int, default 0
        Data set seed.
    size : int, default 424
        Image side in pixels.
    preset : str, optional
        Renderer preset (:data:`~spiralarms.data.synthetic.PRESETS`); default
        :data:`~spiralarms.data.synthetic.DEFAULT_PRESET`. A catalogue row's
        ``preset`` column names the one that drew it.
    sky_files : sequence of str, optional
        Survey cutouts (:func:`~spiralarms.data.synthetic.sky.list_sky_cutouts`) whose
        sky the galaxy is drawn on, one picked per galaxy from its own stream
        (``sdss`` preset); the row's ``sky_file`` names it.

    Returns
    -------
    params : GalaxyParams
    image : numpy.ndarray of uint8, shape (size, size, 3)
    masks : GalaxyMasks
    row : dict
        The catalogue row (id, file, votes, truth and rendering parameters).
    """
    if index < 0:
        raise SpiralArmsError(f"index {index}: give a non-negative galaxy index")
    rng = galaxy_rng(seed, index)
    params = sample_galaxy_params(galaxy_class(index), rng, size, preset=preset)
    sky_file = None
    if sky_files:
        sky_file = sky_files[int(sky_rng(seed, index).integers(len(sky_files)))]
        sky = load_sky(sky_file, size, LUPTON_STRETCH, LUPTON_Q)
        image, masks = render_galaxy(params, sky=sky)
    else:
        image, masks = render_galaxy(params)
    objid = galaxy_id(index)
    row: dict[str, object] = {GZ2_ID: objid, "file": f"images/{objid}.jpg"}
    row.update(simulate_gz2_votes(params, rng))
    row.update(
        {
            "true_class": params.true_class,
            "true_arms": params.true_arms,
            "n_arms_rendered": params.n_arms,
            "cant_tell_reason": params.cant_tell_reason or "none",
            "pitch_deg": round(params.pitch_deg, 3),
            "inclination_deg": round(params.inclination_deg, 3),
            "position_angle_deg": round(params.position_angle_deg, 3),
            "centre_x_px": round(params.centre_x, 3),
            "centre_y_px": round(params.centre_y, 3),
            "disc_scale_px": round(params.disc_scale_px, 3),
            "disc_radius_px": round(params.disc_radius_px, 3),
            "bulge_fraction": round(params.bulge_fraction, 4),
            "sersic_n": round(params.sersic_n, 3),
            "bar_strength": round(params.bar_strength, 3),
            "arm_contrast": round(params.arm_contrast, 4),
            "arm_width": round(params.arm_width, 4),
            "arm_phase_deg": round(params.arm_phase_deg, 3),
            "flocculence": round(params.flocculence, 3),
            "psf_sigma_px": round(params.psf_sigma_px, 3),
            "pixel_scale_arcsec": round(params.pixel_scale_arcsec, 4),
            "noise_correlation_px": round(params.noise_correlation_px, 3),
            "noise_sigma": round(params.noise_sigma, 5),
            "has_companion": params.has_companion,
            "n_stars": params.n_stars,
            "n_neighbours": params.n_neighbours,
            "preset": params.preset,
            "image_size": size,
            "seed": int(seed),
            "galaxy_seed": params.seed,
        }
    )
    if sky_file is not None:
        # The field is the donor's: none of the rendered stars or neighbours was drawn.
        row.update({"n_stars": 0, "n_neighbours": 0, "sky_file": sky_file})
    return params, image, masks, row


def synthesize_dataset(
    out: str | Path,
    n_per_class: int,
    seed: int = 0,
    size: int = GZ2_IMAGE_SIZE,
    write_masks: bool = False,
    progress: bool = True,
    preset: str | None = None,
    workers: int | None = None,
    sky_from: str | Path | None = None,
) -> pd.DataFrame:
    """Render a synthetic data set: JPEG cutouts and a GZ2-schema catalogue.

    Writes ``out/images/<dr7objid>.jpg`` (at the preset's JPEG quality: 75 for
    ``sdss``, as the SDSS cutouts, 90 for ``crisp``), ``out/catalog.csv`` and,
    with ``write_masks``, ``out/masks/<dr7objid>.npz`` (boolean ``galaxy`` and
    ``arms``). Galaxies are rendered in class-interleaved order (1, 2, 3, 4, 5+, ?,
    1, ...), each from its own generator (see :func:`galaxy_rng`), so the same seed
    gives the same bytes and a larger ``n_per_class`` only appends galaxies.

    Parameters
    ----------
    out : str or Path
        Output folder (created; existing files of the same names are overwritten).
    n_per_class : int
        Galaxies per T11 class; ``6 * n_per_class`` in all.
    seed : int, default 0
        Random seed (non-negative).
    size : int, default 424
        Image side in pixels (GZ2 cutouts are 424).
    write_masks : bool, default False
        Also write the galaxy and arm masks.
    progress : bool, default True
        Show a progress bar on standard error.
    preset : str, optional
        Renderer preset (:data:`~spiralarms.data.synthetic.PRESETS`); default
        :data:`~spiralarms.data.synthetic.DEFAULT_PRESET` (``sdss``).
    workers : int, optional
        Processes that render; default one per core (up to 8), one for fewer than 64
        galaxies. The files do not depend on it.
    sky_from : str or Path, optional
        A folder of real survey cutouts (JPEG or PNG, ``size`` x ``size``, SDSS colour
        composites) on whose sky the galaxies are drawn, ``sdss`` preset only: each
        galaxy gets the corners of one of them, picked from its own stream, in place
        of the rendered sky and field (:mod:`~spiralarms.data.synthetic.sky`); the
        catalogue's ``sky_file`` column names it.

    Returns
    -------
    pandas.DataFrame
        The catalogue as written: ``dr7objid``, ``file``, the GZ2 vote columns,
        ``true_class``, ``true_arms`` (0 for ``?``), ``cant_tell_reason`` (``faint``,
        ``flocculent``, ``small``, or ``none`` for countable arms), the rendering
        parameters (lengths in pixels of the written images) and ``preset``.

    Raises
    ------
    SpiralArmsError
        If ``n_per_class < 1``, ``seed < 0``, ``size < 32``, the preset is unknown,
        ``out`` is a file, or ``sky_from`` is not a folder of readable colour cutouts
        of ``size`` pixels (naming the file) or is given with the ``crisp`` preset.
    """
    from spiralarms.runtime import progress_bar

    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise SpiralArmsError(f"n_per_class {n_per_class!r}: give an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpiralArmsError(f"seed {seed!r}: give a non-negative integer")
    size = _check_size(size)
    n_total = int(n_per_class) * len(ARM_CLASSES)
    workers = _synthesis_workers(workers, n_total)
    quality = get_preset(preset).jpeg_quality
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SpiralArmsError(f"{out}: exists and is not a folder")
    if (out / "catalog.csv").is_file() and not _is_synthetic_catalog(out / "catalog.csv"):
        raise SpiralArmsError(
            f"{out / 'catalog.csv'}: exists and is not a synthetic catalogue; give a new or empty folder"
        )
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir = out / "masks"
    if write_masks:
        mask_dir.mkdir(exist_ok=True)

    sky_files = None
    if sky_from is not None:
        if get_preset(preset).name == "crisp":
            raise SpiralArmsError("--sky-from needs the sdss preset: its display is the SDSS composite "
                                  "that the real sky is read back through")
        sky_files = list_sky_cutouts(sky_from, size)
    render = partial(_render_and_write, out=out, seed=int(seed), size=size, preset=preset, quality=quality,
                     mask_dir=mask_dir if write_masks else None, sky_files=sky_files)
    bar = partial(progress_bar, total=n_total, enabled=progress, desc="synth", unit="img")
    if workers == 1:
        rows = list(bar(map(render, range(n_total))))
    else:
        # Each galaxy has its own generator, so the bytes do not depend on the workers.
        # multiprocessing.Pool rather than concurrent.futures: leaving its block on an
        # interruption terminates the workers at once (they ignore Ctrl-C themselves).
        with multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_signals) as pool:
            rows = list(bar(pool.imap(render, range(n_total), chunksize=8)))
            # Finished: let the workers exit on their own. The block's terminate()
            # would send SIGTERM to workers already shutting down, whose handler then
            # prints an "Exception ignored" traceback.
            pool.close()
            pool.join()
    catalog = pd.DataFrame(rows)
    write_bytes(out / "catalog.csv", catalog.to_csv(index=False).encode())
    return catalog


#: Columns that only a catalogue written by :func:`synthesize_dataset` has.
_SYNTHETIC_COLUMNS = frozenset({"true_class", "seed", "image_size"})


def _is_synthetic_catalog(path: Path) -> bool:
    """Whether ``path`` is a catalogue this module wrote (so a new set may replace it)."""
    try:
        return _SYNTHETIC_COLUMNS <= set(pd.read_csv(path, nrows=0).columns)
    except (ValueError, OSError, UnicodeDecodeError):
        return False


def synthetic_set_matches(
    catalog: str | Path, n_per_class: int, seed: int = 0, size: int = GZ2_IMAGE_SIZE, preset: str | None = None
) -> bool:
    """Whether ``catalog`` is the set :func:`synthesize_dataset` would write, with its images.

    Parameters
    ----------
    catalog : str or path-like
        ``OUT/catalog.csv`` of a synthetic set.
    n_per_class, seed, size, preset
        As :func:`synthesize_dataset` takes them.

    Returns
    -------
    bool
        False for a missing file, another table, a catalogue older than the
        ``preset`` column, other settings, galaxies drawn on a real sky
        (``sky_from``), or a missing image.
    """
    catalog = Path(catalog)
    if not catalog.is_file():
        return False
    try:
        if "sky_file" in pd.read_csv(catalog, nrows=0).columns:
            return False
        existing = pd.read_csv(catalog, usecols=["seed", "image_size", "file", "preset"])
    except ValueError:  # not a synthetic catalogue, or one older than the preset column
        return False
    if (len(existing) != 6 * n_per_class or set(existing["seed"]) != {seed}
            or set(existing["image_size"]) != {size} or set(existing["preset"]) != {get_preset(preset).name}):
        return False
    return all((catalog.parent / f).is_file() for f in existing["file"])


def _synthesis_workers(workers: int | None, n_total: int) -> int:
    """Processes that render: as given, else one per core (up to 8), one for a handful of galaxies."""
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise SpiralArmsError(f"workers {workers!r}: give an integer >= 1")
        return int(workers)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if n_total < 64 else max(1, min(cores, 8))


def _worker_signals() -> None:
    """Ctrl-C is the parent's to handle; termination exits cleanly (no temporary file left)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_term)


def _exit_on_term(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _render_and_write(index: int, *, out: Path, seed: int, size: int, preset: str | None, quality: int,
                      mask_dir: Path | None, sky_files: Sequence[str] | None = None) -> dict:
    """Render galaxy ``index``, write its JPEG (and masks) whole; return its catalogue row."""
    from PIL import Image

    _, image, masks, row = make_galaxy(index, seed=seed, size=size, preset=preset, sky_files=sky_files)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    # No fsync per image: the catalogue, written last with fsync, is what marks a set whole.
    write_bytes(out / str(row["file"]), buffer.getvalue(), fsync=False)
    if mask_dir is not None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **masks.as_dict())
        write_bytes(mask_dir / f"{row[GZ2_ID]}.npz", buffer.getvalue(), fsync=False)
    return row
