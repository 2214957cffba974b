"""Images, synthetic galaxies, transforms, splits, datasets and prepared stores.

The names below are the ones the docs show; each is imported on first use.
"""

from spiralarms._lazy import lazy_exports

#: Public name -> the module that defines it.
_EXPORTS = {
    "load_image": "spiralarms.data.images",
    "scan_images": "spiralarms.data.images",
    "synthesize_dataset": "spiralarms.data.synthetic",
    "build_train_transform": "spiralarms.data.transforms",
    "build_eval_transform": "spiralarms.data.transforms",
    "split_catalog": "spiralarms.data.splits",
    "GalaxyDataset": "spiralarms.data.dataset",
    "PreparedStore": "spiralarms.data.store",
    "prepare_store": "spiralarms.data.store",
    "is_prepared_store": "spiralarms.data.store",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
