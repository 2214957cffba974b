"""Synthetic spiral galaxies with a known number of arms: the embedded default data set.

Each galaxy is an exponential disc with a Sérsic bulge (and sometimes a bar), whose
light is modulated by ``m`` logarithmic spiral arms ``r = r0 exp(tan(p) (theta -
phi_k))``. The disc is inclined and rotated on the sky, blurred by a Gaussian point
spread function, and placed on a noisy sky with field stars and, sometimes, a
companion galaxy. Images are gri-like colour composites (bulge redder, arms bluer)
with an asinh stretch, framed like Galaxy Zoo 2 cutouts: 424 x 424 pixels with the
galaxy in the centre, its disc within the central 224 x 224 crop.

Class ``?`` (can't tell) galaxies have arms that are too faint, too flocculent (many
short arm segments) or on a disc too small to resolve them.

The catalogue follows the GZ2 schema (docs/catalogues.md); simulated volunteer votes
agree with the true class, with a spread of confidence, so that the paper's
clean-sample cuts keep most galaxies (about 80 %) and label them with their true class.

Every galaxy has its own random generator, derived from ``(seed, index)`` with
:class:`numpy.random.SeedSequence`: the same seed gives the same bytes, and a galaxy
does not depend on how many others are rendered.

Modules, by concern: :mod:`~spiralarms.data.synthetic.parameters` (what a galaxy is
and how it is drawn), :mod:`~spiralarms.data.synthetic.render` (its image and masks),
:mod:`~spiralarms.data.synthetic.sky` (real survey sky behind it, on request),
:mod:`~spiralarms.data.synthetic.votes` (simulated GZ2 votes) and
:mod:`~spiralarms.data.synthetic.writing` (a data set on disk).
"""

from spiralarms.data.synthetic.parameters import (
    CANT_TELL_REASONS,
    DEFAULT_PRESET,
    GZ2_IMAGE_SIZE,
    PRESETS,
    GalaxyParams,
    Preset,
    galaxy_class,
    galaxy_rng,
    get_preset,
    sample_galaxy_params,
)
from spiralarms.data.synthetic.render import GalaxyMasks, lupton_rgb, render_galaxy
from spiralarms.data.synthetic.votes import (
    EDGE_ON,
    NO_SPIRAL,
    SMOOTH,
    STAR_OR_ARTIFACT,
    simulate_gz2_votes,
)
from spiralarms.data.synthetic.writing import (
    SYNTHETIC_ID_BASE,
    galaxy_id,
    make_galaxy,
    synthesize_dataset,
    synthetic_set_matches,
)

__all__ = [
    "CANT_TELL_REASONS",
    "DEFAULT_PRESET",
    "PRESETS",
    "Preset",
    "get_preset",
    "lupton_rgb",
    "EDGE_ON",
    "GZ2_IMAGE_SIZE",
    "NO_SPIRAL",
    "SMOOTH",
    "STAR_OR_ARTIFACT",
    "SYNTHETIC_ID_BASE",
    "GalaxyMasks",
    "GalaxyParams",
    "galaxy_class",
    "galaxy_id",
    "galaxy_rng",
    "make_galaxy",
    "render_galaxy",
    "sample_galaxy_params",
    "simulate_gz2_votes",
    "synthesize_dataset",
    "synthetic_set_matches",
]
