"""A synthetic data set on disk: JPEG cutouts and a GZ2-schema catalogue."""

from __future__ import annotations

import io
import os
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
from spiralarms.data.synthetic.render import render_galaxy
from spiralarms.data.synthetic.votes import simulate_gz2_votes
from spiralarms.errors import SpiralArmsError

#: First synthetic ``dr7objid``; galaxy ``i`` gets ``SYNTHETIC_ID_BASE + i``.
SYNTHETIC_ID_BASE = 587_700_000_000_000_000


def galaxy_id(index: int) -> int:
    """The ``dr7objid`` of synthetic galaxy ``index`` (deterministic, unique)."""
    return SYNTHETIC_ID_BASE + int(index)


def make_galaxy(index: int, seed: int = 0, size: int = GZ2_IMAGE_SIZE, preset: str | None = None):
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
    return params, image, masks, row


def synthesize_dataset(
    out: str | Path,
    n_per_class: int,
    seed: int = 0,
    size: int = GZ2_IMAGE_SIZE,
    write_masks: bool = False,
    progress: bool = True,
    preset: str | None = None,
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
        :data:`~spiralarms.data.synthetic.DEFAULT_PRESET` (``crisp``).

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
        If ``n_per_class < 1``, ``seed < 0``, ``size < 32``, the preset is unknown or
        ``out`` is a file.
    """
    from PIL import Image
    from spiralarms.logs import progress_bar

    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise SpiralArmsError(f"n_per_class {n_per_class!r}: give an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpiralArmsError(f"seed {seed!r}: give a non-negative integer")
    size = _check_size(size)
    quality = get_preset(preset).jpeg_quality
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SpiralArmsError(f"{out}: exists and is not a folder")
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir = out / "masks"
    if write_masks:
        mask_dir.mkdir(exist_ok=True)

    rows = []
    n_total = int(n_per_class) * len(ARM_CLASSES)
    for index in progress_bar(range(n_total), enabled=progress, desc="synth", unit="img"):
        _, image, masks, row = make_galaxy(index, seed=int(seed), size=size, preset=preset)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        _write_whole(out / str(row["file"]), buffer.getvalue())
        if write_masks:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **masks.as_dict())
            _write_whole(mask_dir / f"{row[GZ2_ID]}.npz", buffer.getvalue())
        rows.append(row)
    catalog = pd.DataFrame(rows)
    _write_whole(out / "catalog.csv", catalog.to_csv(index=False).encode())
    return catalog


def _write_whole(path: Path, data: bytes) -> None:
    """Write a file under a temporary name and rename it when whole."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
