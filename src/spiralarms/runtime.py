"""How work runs under Lightning, in one place for every command.

Trainers built with device errors as one line, the launcher's rank, Ctrl-C kept a
KeyboardInterrupt, Lightning's banners and harmless warnings off, progress bars.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator

__all__ = ["quiet_lightning", "harmless_warnings_off", "lightning_banners_off", "call_trainer", "build_trainer", "launcher_rank",
           "is_first_process", "Terminated", "stop_on_sigterm", "sigterm_handler", "exit_description", "LIGHTNING_LOGGERS", "HARMLESS_WARNINGS"]

#: Where launchers put a process's rank: torchrun, SLURM's srun, LSF's jsrun, Lightning's own DDP children.
_RANK_VARIABLES = ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK", "LOCAL_RANK")


def launcher_rank() -> str | None:
    """The rank a distributed launcher gave this process (from its environment), or None."""
    return next((os.environ[k] for k in _RANK_VARIABLES if k in os.environ), None)


def is_first_process() -> bool:
    """Whether this process is rank 0 of a distributed run, or runs alone.

    Read from the launcher's environment, as Lightning itself does at import, rather
    than from Lightning's process-wide ``rank_zero_only.rank``: a Trainer made earlier
    in the same process (a DDP test, a notebook) leaves its rank there.
    """
    rank = launcher_rank()
    return rank is None or (rank == "0" and os.environ.get("NODE_RANK", "0") == "0")


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler's time limit, ``docker stop``), raised in the main thread.

    A KeyboardInterrupt, so that a polite stop ends a run exactly as Ctrl-C does:
    Lightning tears its loop down, finished parts and checkpoints stay, temporary
    files are removed on the way out, and a rerun resumes.
    """


def sigterm_handler(before: Callable[[int], None] | None = None) -> Callable:
    """A SIGTERM handler that raises :class:`Terminated` on the first signal and ignores the rest.

    ``before(signum)``, when given, runs first (e.g. to pass the signal on to child
    processes). Used by :func:`stop_on_sigterm` and by :class:`spiralarms.stopping.StopTogether`.
    """
    received = []

    def raise_terminated(signum, frame):
        if received:  # a second SIGTERM during the clean-up
            return
        received.append(signum)
        if before is not None:
            before(signum)
        raise Terminated

    return raise_terminated


def exit_description(code: int) -> str:
    """How a child process ended, from its exit status: ``was killed by SIGKILL`` for -9."""
    if code >= 0:
        return f"ended with status {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:  # real-time signals have no name in the enum
        return f"was killed by signal {-code}"


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` instead of ending the process at once.

    Python's default for SIGTERM kills the process where it stands: no ``finally``
    runs, so temporary files stay behind; and Lightning's own handler only sets a
    flag that its prediction loop never reads, so ``spiralarms predict`` ran on to
    the end. Only the first SIGTERM raises (a second one, during the clean-up, is
    ignored; SIGKILL still ends everything). Outside the main thread, where Python
    cannot set signal handlers, this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, sigterm_handler())
    try:
        yield
    finally:
        # None: a handler set outside Python, which cannot be put back; the default then.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


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


def call_trainer(method, *args, **kwargs):
    """Call a Trainer entry point (``trainer.fit``, ``trainer.predict``) so that Ctrl-C stays Ctrl-C.

    On a KeyboardInterrupt Lightning tears the run down, ignores SIGINT from then on
    and calls ``sys.exit(1)``: a Python caller would lose its process, and the
    command line would end silently with status 1 instead of ``interrupted`` and 130.
    Here the exit becomes the KeyboardInterrupt again and SIGINT's handler is put
    back; finished parts and checkpoints stay, as Lightning's teardown leaves them.

    Parameters
    ----------
    method : bound method of lightning.Trainer
        ``trainer.fit`` or ``trainer.predict`` (or another entry point).
    *args, **kwargs
        Passed to ``method``.

    Returns
    -------
    object
        What ``method`` returns.

    Raises
    ------
    KeyboardInterrupt
        Where Lightning, interrupted by Ctrl-C, would exit the process;
        :class:`Terminated` where the interruption was a SIGTERM.
    """
    trainer = method.__self__
    main_thread = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        return method(*args, **kwargs)
    except SystemExit as exc:
        if not trainer.interrupted:
            raise
        if main_thread and handler is not None:
            signal.signal(signal.SIGINT, handler)
        # Lightning exits inside its `except KeyboardInterrupt`: the context is what it caught.
        raise (Terminated if isinstance(exc.__context__, Terminated) else KeyboardInterrupt) from None


#: Environment variables by which a process learns it is one node of several (Lightning's
#: own environment; SLURM and torchrun are detected by Lightning itself).
_NODE_VARIABLES = ("NODE_RANK", "MASTER_ADDR", "GROUP_RANK")


def build_trainer(**options):
    """A ``lightning.Trainer``, with the device settings it refuses turned into one-line errors.

    Parameters
    ----------
    **options
        Passed to ``lightning.Trainer``; :class:`spiralarms.stopping.StopTogether` is
        added to its callbacks, so that every process of a run stops when one does.

    Returns
    -------
    lightning.Trainer

    Raises
    ------
    SpiralArmsError
        If Lightning refuses ``accelerator``, ``devices``, ``strategy`` or
        ``num_nodes`` (e.g. ``gpu`` on a machine without one), or if several nodes
        are asked for in a process that no cluster launcher started: it would wait
        for the other nodes for ever.
    """
    import lightning as L
    import torch
    from lightning.fabric.plugins.environments import LightningEnvironment
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from spiralarms.errors import SpiralArmsError, first_line

    named = ", ".join(
        f"{key} {options[key]!r}" for key in ("accelerator", "devices", "strategy", "num_nodes") if key in options
    )
    from spiralarms.stopping import StopTogether

    options = {**options, "callbacks": [*(options.get("callbacks") or ()), StopTogether()]}
    try:
        trainer = L.Trainer(**options)
    except (MisconfigurationException, ValueError, TypeError, RuntimeError) as exc:
        reason = first_line(exc)
        if "gpu backend" in reason.lower() or ("cuda" in reason.lower() and not torch.cuda.is_available()):
            reason = "no GPU is visible to PyTorch here (torch.cuda.is_available() is False); use accelerator cpu or auto"
        raise SpiralArmsError(f"device settings ({named}): {reason}") from None
    environment = getattr(trainer.strategy, "cluster_environment", None)  # single-device strategies have none
    if trainer.num_nodes > 1 and isinstance(environment, LightningEnvironment):
        if not any(name in os.environ for name in _NODE_VARIABLES):
            raise SpiralArmsError(
                f"num_nodes {trainer.num_nodes}: no cluster launcher started this process (SLURM srun, torchrun, "
                "or NODE_RANK and MASTER_ADDR set on each node), so it would wait for the other nodes for ever; "
                "see docs/predict.md"
            )
    return trainer


def lightning_banners_off() -> None:
    """Raise Lightning's loggers to WARNING for the rest of the process.

    The command line calls this once per command: start-up tips and "GPU available"
    lines stay off the terminal, warnings and errors still show.
    """
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def harmless_warnings_off() -> Iterator[None]:
    """Drop :data:`HARMLESS_WARNINGS` for the block; other warnings still show."""
    with warnings.catch_warnings():
        for message in HARMLESS_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        yield


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
        with harmless_warnings_off():
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
