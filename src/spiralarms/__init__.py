"""spiralarms: classify spiral galaxies by their number of spiral arms.

Data flows one way: catalogue -> selection -> dataset -> model -> predictions ->
metrics, figures and science. The main steps, as functions (each documented in
NumPy style; imported on first use, so that ``import spiralarms`` stays fast):

- :func:`select_clean_sample`: the paper's clean-sample cuts on a catalogue table;
  :func:`read_clean_sample` reads a catalogue file, cuts it and finds the images;
- :func:`synthesize_dataset`: synthetic galaxies with a known arm number;
- :func:`train`: a classifier into a run folder;
- :func:`load_model` and :func:`predict`: arm-number probabilities for any cutouts;
- :func:`evaluate_run`: a run's validation metrics and confusion matrices;
- :func:`explain_run`: feature maps, Grad-CAM++ and SmoothGrad, faithfulness;
- :func:`run_mass`: stellar mass against arm number (Table 4, Figures 11 and 12).

See ``spiralarms --help``, the README and docs/.
"""

from importlib.metadata import PackageNotFoundError, version

from spiralarms._lazy import lazy_exports

try:
    __version__ = version("spiralarms")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

#: Public name -> the module that defines it.
_EXPORTS = {
    "select_clean_sample": "spiralarms.catalog.selection",
    "read_clean_sample": "spiralarms.catalog.selection",
    "synthesize_dataset": "spiralarms.data.synthetic",
    "train": "spiralarms.training.train",
    "load_model": "spiralarms.models.loading",
    "predict": "spiralarms.predictions.engine",
    "evaluate_run": "spiralarms.evaluation.evaluate",
    "explain_run": "spiralarms.explain.run",
    "run_mass": "spiralarms.science.mass",
}

__all__ = ["__version__", *_EXPORTS]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
