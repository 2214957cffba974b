"""spiralarms: classify spiral galaxies by their number of spiral arms.

Data flows one way: catalogue -> selection -> dataset -> model -> predictions ->
metrics, figures and science. See ``spiralarms --help`` and the README.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spiralarms")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
