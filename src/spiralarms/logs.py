"""Keeping library chatter off the terminal: Lightning's start-up banners and tips."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

__all__ = ["quiet_lightning", "lightning_banners_off", "LIGHTNING_LOGGERS", "HARMLESS_WARNINGS"]

#: Loggers through which Lightning prints "GPU available", tips and summaries.
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero")

#: Lightning warnings that say nothing a spiralarms user can act on (messages as regexes).
HARMLESS_WARNINGS = (
    r".*does not have many workers.*",  # workers are chosen on purpose (see the prediction settings)
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",  # Lightning vs torch internals
    r".*Couldn't infer the batch indices fetched from your dataloader.*",  # batches carry their row indices
    r".*Total length of .* across ranks is zero.*",  # a resumed run with nothing left to do
    r".*Your `IterableDataset` has `__len__` defined.*",  # the length is exact per rank
    r".*Checkpoint directory .* exists and is not empty.*",  # resumed training runs
    r".*module\(s\) in eval mode at the start of training.*",  # frozen backbones stay in eval mode
)


def lightning_banners_off() -> None:
    """Raise Lightning's loggers to WARNING for the rest of the process.

    The command line calls this once per command: start-up tips and "GPU available"
    lines stay off the terminal, warnings and errors still show.
    """
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Raise Lightning's loggers to WARNING and drop :data:`HARMLESS_WARNINGS` for the block.

    Other warnings and all errors still show.
    """
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message in HARMLESS_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs):
    """A tqdm progress bar, shown only where standard error is a terminal.

    Logs, pipes and batch-job output files get no bars (``disable=None``), so that
    an error stays the first line a person reads there.

    Parameters
    ----------
    iterable : iterable, optional
    enabled : bool, default True
        False hides the bar everywhere.
    **kwargs
        Passed to ``tqdm.auto.tqdm`` (``total``, ``desc``, ``unit``, ...).
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=None if enabled else True, **kwargs)
