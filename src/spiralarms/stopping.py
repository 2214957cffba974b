"""How the processes of one distributed run stop together, whichever of them is stopped.

Lightning's own SIGTERM handler broadcasts from rank 0 inside the handler, on every
rank that receives the signal. When only one rank other than 0 receives it (``kill``
of one process, an out-of-memory killer's polite first step), that rank waits in the
broadcast for a rank 0 that never joins, and rank 0 waits for it at its next
collective: the run hangs for good (seen with ``spiralarms predict --devices 2``).
And a rank that Lightning's launcher started on one machine, whose parent has been
killed, predicts on alone until its next collective fails.

:class:`StopTogether` (added to every Trainer by :func:`spiralarms.runtime.build_trainer`)
replaces that handler once Lightning has installed it: SIGTERM raises
:class:`~spiralarms.runtime.Terminated` at once on the rank that received it (rank 0
first passes it on to the processes its launcher started), with no collective inside a
signal handler. Between batches, rank 0 checks the processes its launcher started and
the others check that their launcher is still there, so when one process of a run ends,
the rest stop within a batch, with one line that says why; every part or checkpoint
already written stays, and the same command resumes. (Hand-written: Lightning offers no
option to leave SIGTERM alone, and watches its launched processes only at the end.)
"""

from __future__ import annotations

import os
import signal
import threading

from lightning.pytorch.callbacks import Callback

from spiralarms.errors import SpiralArmsError
from spiralarms.runtime import exit_description, sigterm_handler

__all__ = ["StopTogether"]


class StopTogether(Callback):
    """A Lightning callback: SIGTERM stops this rank at once, and no rank outlives its run.

    Notes
    -----
    Lightning installs its SIGTERM handler just before a stage runs and puts back the
    previous one when the Trainer tears down, so the handler is replaced in each
    stage's start hook and Lightning's teardown restores what the command line had.
    """

    def __init__(self) -> None:
        self._launcher_pid: int | None = None

    # Lightning has installed its handler by the time each stage starts.
    def on_train_start(self, trainer, pl_module) -> None:
        self._take_over_sigterm(trainer)

    def on_validation_start(self, trainer, pl_module) -> None:
        self._take_over_sigterm(trainer)

    def on_predict_start(self, trainer, pl_module) -> None:
        self._take_over_sigterm(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._check_the_others(trainer)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._check_the_others(trainer)

    def _take_over_sigterm(self, trainer) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if self._launcher_pid is None and trainer.world_size > 1:
            self._launcher_pid = os.getppid()

        def pass_on(signum):
            launcher = trainer.strategy.launcher
            if trainer.is_global_zero and launcher is not None:
                launcher.kill(signum)  # the processes Lightning's launcher started on this machine

        signal.signal(signal.SIGTERM, sigterm_handler(before=pass_on))

    def _check_the_others(self, trainer) -> None:
        if trainer.world_size < 2:
            return
        if trainer.is_global_zero:
            # Lightning's launcher on one machine keeps its processes (subprocess.Popen);
            # torchrun's and SLURM's stop the rest themselves when one exits non-zero.
            for number, process in enumerate(getattr(trainer.strategy.launcher, "procs", None) or (), start=1):
                code = process.poll() if hasattr(process, "poll") else None
                if code is not None:
                    raise SpiralArmsError(
                        f"process {number} of this run (pid {process.pid}) {exit_description(code)}, so every "
                        "process stops; what was finished is kept: run the same command again to resume"
                    )
        elif self._launcher_pid is not None and os.getppid() != self._launcher_pid:
            raise SpiralArmsError(
                f"rank {trainer.global_rank}: the process that started this one has gone, so it stops too; "
                "what was finished is kept"
            )

