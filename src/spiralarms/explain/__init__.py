"""Explanations of a trained classifier (paper section 5.3) and how faithful they are.

Notebook API (images are ``(N, C, H, W)`` or ``(C, H, W)`` tensors in [0, 1]; maps come
back as NumPy arrays; the class explained defaults to the predicted one)::

    from spiralarms.explain import gradcam_pp, smoothgrad, feature_maps
    cams = gradcam_pp(model, images)                  # (N, H, W) in [0, 1]
    grads = smoothgrad(model, images, noise=0.1, samples=25)
    layers = feature_maps(model, images[0])           # {layer name: (C, h, w)}
    mask_energy_fraction(cams, galaxy_mask)           # share of the map on the galaxy
    deletion_curve(model, images[0], cams[0]).auc     # lower = more faithful

:func:`explain_run` does it all for a run folder (``spiralarms explain``).
"""

from spiralarms.explain.faithfulness import DeletionCurve, deletion_curve, mask_energy_fraction
from spiralarms.explain.galleries import select_gallery, validation_predictions
from spiralarms.explain.layers import feature_layers, last_conv_stage
from spiralarms.explain.maps import feature_maps, gradcam_pp, smoothgrad
from spiralarms.explain.run import explain_run, run_masks

__all__ = [
    "gradcam_pp",
    "smoothgrad",
    "feature_maps",
    "mask_energy_fraction",
    "deletion_curve",
    "DeletionCurve",
    "last_conv_stage",
    "feature_layers",
    "select_gallery",
    "validation_predictions",
    "explain_run",
    "run_masks",
]
