"""A prepared image store: every selected galaxy decoded and cropped once, for fast training.

Decoding a 424 x 424 JPEG costs more than a training step of a frozen backbone needs,
and it is repeated every epoch. :func:`prepare_store` runs the clean-sample selection,
then decodes, centre-crops and (optionally) greys every selected image once, into::

    OUT/images.npy     uint8 array (N, crop, crop, C), C = 1 (grey) or 3, NumPy .npy
    OUT/index.parquet  row, id, label, label_index, file, ok, error
    OUT/store.json     settings (crop, grey, classes, merge, shape, dtype, layout),
                       source catalogue (path, size, mtime, sha256), created, version
    OUT/report.csv     the rows that could not be read, with the reason

Choices:

- One memory-mapped ``.npy`` file rather than WebDataset tar shards: training
  shuffles, and a memory map gives O(1) random access to any row without reading
  anything else, zero-copy, from one file whose header (:mod:`numpy.lib.format`)
  records shape and dtype. 11,718 greyscale 224 x 224 crops are 588 MB and fit in
  the page cache. WebDataset shards suit streaming from object stores to many
  nodes, where sequential reads win; :class:`PreparedStore` rows could be written to
  shards (one ``.npy`` or PNG per row plus its label) by iterating over
  :meth:`PreparedStore.image`, if that is ever needed.
- Rows are (H, W, C), the layout :func:`~spiralarms.data.images.load_image_uint8`
  decodes to and that the transforms of :mod:`spiralarms.data.transforms` take as
  input: writing a row is a plain copy, and :meth:`PreparedStore.as_dataset` hands
  the transform exactly what :class:`~spiralarms.data.dataset.GalaxyDataset` does.
- uint8: the JPEGs hold 8-bit samples, so nothing is lost, at a quarter of float32.

The crop is a parameter. The paper's pre-processing is the 224 centre crop of the 424
frame; but training augmentation that rotates and zooms the 424 frame before cropping
(:func:`~spiralarms.data.transforms.build_train_transform`, ``augment_before_crop``)
needs the pixels around the crop. Store a larger crop for that (``crop=400`` holds
every pixel that a 224 output can sample at rotation up to 180 degrees and zoom 0.8:
``112 * sqrt(2) / 0.8 = 198`` px from the centre), and re-crop to the model's input
in the transform. Augmentation then acts on the stored crop. Centre crops compose
exactly (the same pixels as cropping the original) when ``424 - crop`` and
``crop - model_crop`` are even.

Preparation runs in parallel over chunks of rows (``concurrent.futures``, one process
per core): each worker decodes its chunk and writes the rows straight into the
memory-mapped file, so memory stays bounded by one image per worker. After each
chunk the main process writes a done-marker (``OUT/chunks/<k>.json``, with the chunk's
unreadable rows); a rerun after a kill processes only the chunks without a marker,
and a finished store is left as it is. An unreadable or missing image is recorded
with its reason (``ok = False`` in the index, listed in ``report.csv``), its row is
zero-filled, and :meth:`PreparedStore.as_dataset` never serves it.

The package splits by concern: :mod:`~spiralarms.data.store.layout` names the files
and the format, :mod:`~spiralarms.data.store.building` writes a store
(:func:`prepare_store`, :func:`build_store`) and :mod:`~spiralarms.data.store.reading`
reads one (:class:`PreparedStore`, :class:`StoreDataset`, :func:`is_prepared_store`).
"""

from spiralarms.data.store.building import build_store, prepare_store
from spiralarms.data.store.layout import STORE_FORMAT, STORE_VERSION
from spiralarms.data.store.reading import PreparedStore, StoreDataset, is_prepared_store

__all__ = [
    "PreparedStore",
    "StoreDataset",
    "build_store",
    "is_prepared_store",
    "prepare_store",
    "STORE_FORMAT",
    "STORE_VERSION",
]
