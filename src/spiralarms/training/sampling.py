"""Epoch-indexed randomness: shuffling and augmentation as functions of (seed, epoch, item).

Every random draw of training is a pure function of the run's seed, the epoch and
the item, never of a generator's history. Hence:

- a run resumed from ``last.ckpt`` sees the same batches and augmentations as an
  uninterrupted one (Lightning does not restore global random states);
- the number of loader workers does not change results;
- the embedding cache can reproduce exactly the augmented view that the uncached
  path draws for an image at a given epoch (view ``v`` = epoch ``v``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, RandomSampler, Sampler

from spiralarms.errors import SpiralArmsError

__all__ = ["derive_seed", "EpochShuffleSampler", "EpochBalancedSampler", "SeededAugmentation", "SAMPLERS"]

#: Training samplers of ``train.sampler``: a shuffle per epoch, or class-balanced draws.
SAMPLERS = ("shuffle", "balanced")


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (``derive_seed(seed, "augment", epoch, index)``).

    Stable across processes and platforms (BLAKE2b of the parts' ``repr``), unlike
    Python's salted ``hash``.
    """
    digest = hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class EpochShuffleSampler(RandomSampler):
    """A random permutation per epoch, seeded by ``(seed, epoch)``.

    Lightning calls :meth:`set_epoch` before every training epoch. Being a
    ``RandomSampler``, it is replaced by Lightning's seeded ``DistributedSampler``
    under DDP, which shuffles by epoch the same way.

    Parameters
    ----------
    data_source : Dataset
        Anything with a length.
    seed : int, default 0
    """

    def __init__(self, data_source, seed: int = 0):
        super().__init__(data_source)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the permutation of ``epoch``."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(derive_seed(self.seed, "shuffle", self.epoch))
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


class EpochBalancedSampler(Sampler[int]):
    """Class-balanced draws per epoch: every class equally likely, seeded by ``(seed, epoch)``.

    Each epoch draws as many items as there are, with replacement, each with
    probability proportional to ``1 / n_class`` (torch's ``multinomial``): rare classes
    are seen as often as common ones, and no galaxy is thrown away (the paper's
    answer to imbalance is down-sampling instead). A custom sampler, so Lightning
    wraps it in its ``DistributedSamplerWrapper`` under DDP.

    Parameters
    ----------
    labels : sequence of int
        Class index of every training item.
    seed : int, default 0
    """

    def __init__(self, labels, seed: int = 0):
        labels = torch.as_tensor(labels, dtype=torch.int64).cpu()
        if labels.ndim != 1 or len(labels) == 0:
            raise SpiralArmsError("balanced sampler: needs one class index per training item")
        counts = torch.bincount(labels)
        self.weights = (1.0 / counts.clamp(min=1).double())[labels]
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the draws of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(derive_seed(self.seed, "balanced", self.epoch))
        yield from torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator).tolist()


class SeededAugmentation(Dataset):
    """Wrap a dataset whose transform draws from torch's global generator.

    Item ``i`` at epoch ``e`` is produced with torch's CPU generator seeded by
    ``derive_seed(seed, "augment", e, i)`` inside :func:`torch.random.fork_rng`, so
    the draw does not depend on what ran before, and the caller's random state is
    left untouched.

    Parameters
    ----------
    dataset : Dataset
        Items whose randomness comes from torch's global CPU generator (the
        transforms of :mod:`spiralarms.data.transforms` do).
    seed : int, default 0
    """

    def __init__(self, dataset: Dataset, seed: int = 0):
        self.dataset = dataset
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the augmentations of ``epoch`` from now on."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(derive_seed(self.seed, "augment", self.epoch, int(index)))
            return self.dataset[index]

    def __repr__(self) -> str:
        return f"SeededAugmentation({self.dataset!r}, seed={self.seed}, epoch={self.epoch})"
