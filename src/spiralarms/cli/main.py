"""The ``spiralarms`` application: every command group assembled, and the one error handler.

Every command takes ``--help``; bad input ends in a one-line ``error: ...`` on
standard error and exit status 1 (typer's own usage errors exit with 2). The
handler sits in :class:`SpiralArmsGroup`, around every command the group invokes,
so the command functions stay plain and can be tested on their own.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from spiralarms import __version__
from spiralarms.cli import data, demo, explain, predict, reproduce, science, train
from spiralarms.errors import SpiralArmsError
from spiralarms.runtime import Terminated, exit_description, launcher_rank, stop_on_sigterm

__all__ = ["SpiralArmsGroup", "app", "run"]


def _fail(message: str) -> None:
    """Print a one-line error to stderr and exit with status 1."""
    message = " ".join(str(message).split())  # one line, whatever the exception held
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


#: What torch.distributed says on the other ranks when one process of a run ends
#: (gloo: "Connection closed by peer"; NCCL: "remote process exited").
_PEER_GONE = ("Connection closed by peer", "remote worker crash", "Connection reset by peer", "remote process exited")


def _peer_gone(exc: RuntimeError) -> bool:
    """Whether ``exc`` is a distributed call failing because another rank of the run ended."""
    distributed = type(exc).__name__ in ("DistBackendError", "DistNetworkError", "DistStoreError")
    return launcher_rank() is not None and (distributed or any(s in str(exc) for s in _PEER_GONE))


def _spawned_failure(exc: BaseException) -> str | None:
    """The line for a failed process of a ``ddp_spawn`` run (torch.multiprocessing's errors), else None.

    The spawning process receives the child's whole traceback as text; the user gets
    its last line, or what a :class:`SpiralArmsError` in the child said.
    """
    if type(exc).__module__ != "torch.multiprocessing.spawn":
        return None
    number = getattr(exc, "error_index", "?")
    if type(exc).__name__ == "ProcessExitedException":
        how = exit_description(int(getattr(exc, "exit_code", 1)))
        return f"process {number} of this run {how}, so the run stops; run the same command again to resume"
    lines = [line.strip() for line in str(getattr(exc, "msg", exc)).splitlines() if line.strip()]
    last = lines[-1] if lines else type(exc).__name__
    if any(s in last for s in _PEER_GONE):
        return f"process {number} of this run stopped because another process of it ended"
    if "SpiralArmsError: " in last:
        return last.split("SpiralArmsError: ", 1)[1]
    return f"process {number} of this run failed: {last}"


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as one line, ``warning: ...``, without the source line."""
    return "warning: " + " ".join(str(message).split()) + "\n"


class SpiralArmsGroup(TyperGroup):
    """The command group that turns the errors a user can cause into one line and exit 1.

    :class:`~spiralarms.errors.SpiralArmsError` and the filesystem's refusals (no
    such file, permission denied, disk full) become ``error: <message>``; Ctrl-C
    becomes ``interrupted`` and exit status 130, SIGTERM ``terminated`` and 143,
    both with finished work kept. Warnings print as one line.
    """

    def invoke(self, ctx: Any) -> Any:
        """Run the chosen command under the error handler."""
        warnings.formatwarning = _one_line_warning
        try:
            with stop_on_sigterm():
                return super().invoke(ctx)
        except SpiralArmsError as exc:
            _fail(str(exc))
        except BrokenPipeError:
            # The reader went away (`spiralarms ... | head`): stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(code=141) from None
        except FileNotFoundError as exc:
            _fail(f"{exc.filename or exc}: no such file or directory")
        except PermissionError as exc:
            _fail(f"{exc.filename or exc}: permission denied")
        except FileExistsError as exc:  # mkdir of an output folder where a file stands
            _fail(f"{exc.filename or exc}: exists and is not a folder")
        except OSError as exc:  # the filesystem said no: full disk, not a folder, read-only, ...
            where = exc.filename or "output"
            if exc.errno == 28:
                _fail(f"{where}: no space left on the device")
            _fail(f"{where}: {exc.strerror or exc}")
        except Terminated:
            typer.echo("terminated", err=True)
            raise typer.Exit(code=143) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(code=130) from None
        except Exception as exc:
            line = _spawned_failure(exc)
            if line is not None:
                _fail(line)
            if not isinstance(exc, RuntimeError) or not _peer_gone(exc):
                raise
            # Under DDP, when one rank stops (bad input, a held output), the others fail
            # in their next collective call: the first rank's line says why.
            _fail(f"rank {launcher_rank()}: stopped because another process of this run ended (its error is above)")


app = typer.Typer(
    name="spiralarms",
    cls=SpiralArmsGroup,
    help="Classify spiral galaxies by their number of spiral arms (Lee, Soo & Sharoni).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"spiralarms {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Classify spiral galaxies by their number of spiral arms (Lee, Soo & Sharoni)."""


# In the order of the data flow: data -> training -> predictions -> explanations -> science.
app.command()(data.synth)
app.command()(data.select)
app.command()(train.train)
app.command()(demo.demo)
app.command()(predict.evaluate)
app.command()(predict.predict)
app.command()(predict.export)
app.add_typer(
    data.data_app,
    name="data",
    help="Fetch and index real data: GZ2 (Willett 2013 or Hart 2016 votes + Zenodo images) or Kaggle.",
)
app.command()(data.prepare)
app.command("explain")(explain.explain)
app.command("reproduce")(reproduce.reproduce)
app.command("mass")(science.mass)
app.command("fetch-mpajhu")(science.fetch_mpajhu)


def run() -> None:  # pragma: no cover - entry point for python -m spiralarms
    """Run the command line as ``spiralarms``."""
    app(prog_name="spiralarms")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
