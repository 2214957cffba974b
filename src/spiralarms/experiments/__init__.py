"""The experiments of sections 4 and 5 of the paper, and a one-command report.

- :mod:`~spiralarms.experiments.crop_sweep`: selection of the image size
  (section 4.2.1, Figure 5);
- :mod:`~spiralarms.experiments.downsampling`: all data against down-sampled data
  (section 4.2.2, Table 3);
- :mod:`~spiralarms.experiments.backbone_comparison`: B0 against V2M, or any backbones
  (section 5.1);
- :mod:`~spiralarms.experiments.class_configs`: all classes, ``3,4`` and ``4,5+``
  merged (section 5.2, Figure 7);
- :mod:`~spiralarms.experiments.runner`: training runs cached by the hash of their
  resolved configuration, and ``runs.csv``;
- :mod:`~spiralarms.experiments.reproduction_report`: ``report.md``, ``table3.csv``,
  ``figure5.png``, ``figure6.png``, ``figure7.png``, ``figure13.png``, the departures
  from the paper (:mod:`~spiralarms.experiments.protocol`: each table's protocol;
  :mod:`~spiralarms.experiments.figures`: Figures 6 and 13);
- :mod:`~spiralarms.experiments.paper`: the paper's published numbers;
- :mod:`~spiralarms.experiments.settings`: the reproduction's settings
  (``configs/reproduce-paper.yaml``, ``configs/reproduce-quick.yaml``).

:func:`run_reproduction` runs them all (``spiralarms reproduce``).
"""

from spiralarms.experiments.reproduce import ReproductionResult, run_reproduction
from spiralarms.experiments.settings import ReproduceConfig, load_reproduce_config

__all__ = ["ReproduceConfig", "ReproductionResult", "load_reproduce_config", "run_reproduction"]
