"""Backbones, the paper's classifier head, model cards and loading.

The names below are the ones the docs show; each is imported on first use.
"""

from spiralarms._lazy import lazy_exports

#: Public name -> the module that defines it.
_EXPORTS = {
    "build_classifier": "spiralarms.models.backbones",
    "create_backbone": "spiralarms.models.backbones",
    "list_backbones": "spiralarms.models.backbones",
    "ModelCard": "spiralarms.models.card",
    "load_model": "spiralarms.models.loading",
    "export_model": "spiralarms.models.loading",
    "ArmClassifierModule": "spiralarms.models.module",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
