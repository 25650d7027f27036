"""The `nnsim` command: the TUI by default, and the subcommands of the `COMMANDS` table.

A subcommand is one `Command` entry at the end of this file: its name, one line of help,
a function adding its arguments to a parser and a function running it.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import os
import re
import shutil
import signal
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Sequence

from nnsim import __version__
from nnsim.errors import ConfigError, NnsimError, cap

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_DIVERGED, EXIT_PLUGIN = 0, 1, 2, 3, 4


class UsageError(Exception):
    """Bad command-line usage, reported as one line with exit code 2."""


#: the longest error line printed: a value the user gave (a 100 KB argument) is echoed
#: only in part, head and tail
MAX_LINE = 1000


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def _print_message(self, message: str, file=None) -> None:
        """--help and --version: a failed write is a write error (argparse ignores it)."""
        if message:
            (file or sys.stderr).write(message)


@dataclass(frozen=True)
class Command:
    """One subcommand: `nnsim NAME ...` parses with `add_arguments` and calls `run`."""

    name: str
    help: str
    add_arguments: Callable[[Parser], None]
    run: Callable[[argparse.Namespace], int]
    #: arguments the parser does not know go to `args.rest` instead of being an error
    #: (`nnsim serve` passes them on to the sessions it starts)
    pass_rest: bool = False
    usage: str | None = None


def command_parser(command: Command) -> Parser:
    parser = Parser(prog=f"nnsim {command.name}", description=command.help,
                    usage=command.usage, allow_abbrev=not command.pass_rest)
    command.add_arguments(parser)
    return parser


def parse(command: Command, argv: Sequence[str]) -> argparse.Namespace:
    parser = command_parser(command)
    if not command.pass_rest:
        return parser.parse_args(argv)
    args, rest = parser.parse_known_args(argv)
    args.rest = rest
    return args


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", metavar="CONFIG.toml",
                   help="experiment config (defaults when left out)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, value read as TOML (e.g. model.activation=relu, "
                        "'model.hidden=[64,64]'); repeatable")
    p.add_argument("--seed", type=int, help="random seed (same as --set seed=S)")


def build_tui_parser() -> Parser:
    """`nnsim [CONFIG.toml] [--set ...]`: the TUI; the subcommands are listed in its help."""
    width = max(len(c.name) for c in COMMANDS)
    listing = "\n".join(f"  {c.name:<{width}}  {re.split(r'[.;] ', c.help)[0].rstrip('.')}"
                        for c in COMMANDS)
    tui = Parser(prog="nnsim", formatter_class=argparse.RawDescriptionHelpFormatter,
                 description="Watch a deep network train, live, layer by layer.",
                 epilog=f"commands (nnsim COMMAND --help):\n{listing}")
    _config_args(tui)
    tui.add_argument("--paused", action="store_true", help="open paused")
    tui.add_argument("--version", action="version", version=f"nnsim {__version__}")
    return tui


def _args_run(run: Parser) -> None:
    _config_args(run)
    run.add_argument("--steps", type=int, metavar="N", help="steps to run (default train.steps)")
    run.add_argument("--every", type=int, metavar="K",
                     help="write every K-th record (and the last); default 1, and for "
                          "--format table the spacing that gives 20 to 50 rows")
    run.add_argument("--format", choices=("jsonl", "csv", "table"),
                     help="output format (default: table on a terminal, else jsonl)")
    run.add_argument("--out", metavar="FILE", help="write records here instead of stdout")
    run.add_argument("--on-divergence", choices=("stop", "continue"), default="stop",
                     help="what to do at the first non-finite loss, activation, gradient or "
                          "parameter (exit code 3 either way)")
    run.add_argument("--no-telemetry", action="store_true",
                     help="global numbers only, no per-layer statistics (faster)")
    run.add_argument("--checkpoint", metavar="DIR",
                     help="save a checkpoint in DIR at the end (and every --checkpoint-every)")
    run.add_argument("--snapshot-every", type=int, metavar="N",
                     help="with --checkpoint: keep a snapshot every N steps (default 100; "
                          "within 4 MB, thinned as the run grows) that --from-step can "
                          "branch from")
    run.add_argument("--from-step", type=int, metavar="K",
                     help="with --resume: branch from the snapshot kept at step K, with the "
                          "--set changes (any that keep the network's layout)")
    run.add_argument("--checkpoint-every", type=int, metavar="N",
                     help="also save the checkpoint every N steps")
    run.add_argument("--resume", metavar="DIR",
                     help="continue the run saved in DIR for --steps more steps")


def _args_plugins(plugins: Parser) -> None:
    plugins.add_argument("--json", action="store_true", help="machine-readable output")


def _args_check_plugin(check: Parser) -> None:
    check.add_argument("names", nargs="+", metavar="NAME",
                       help="a plugin (entry-point name, or 'built-in' for all built-ins), a "
                            "component name, or FAMILY:NAME")


def _args_lessons(lessons: Parser) -> None:
    lessons.add_argument("names", nargs="*", metavar="NAME",
                         help="with --verify: only these lessons (default: all)")
    lessons.add_argument("--json", action="store_true", help="machine-readable output")
    lessons.add_argument("--verify", action="store_true",
                         help="run every lesson and its control at each of --seeds and print "
                              "a margin table; exit 1 unless every lesson passes and every "
                              "control fails at every seed")
    lessons.add_argument("--seeds", default="0-9", metavar="SEEDS",
                         help="with --verify: seeds as 0-9 or 0,3,5 (default 0-9)")
    lessons.add_argument("-j", "--jobs", type=int, default=1, metavar="JOBS",
                         help="with --verify: worker processes (default 1)")


def _args_lesson(lesson: Parser) -> None:
    lesson.add_argument("name", metavar="NAME", help="a lesson (see nnsim lessons)")
    lesson.add_argument("--headless", action="store_true",
                        help="run every configuration, print the check's numbers, exit 0 on "
                             "pass and 1 on fail")
    lesson.add_argument("--seed", type=int, help="seed of every run (default: the config's, 0)")
    lesson.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key in every run of the lesson (repeatable)")
    lesson.add_argument("--control", action="store_true",
                        help="run the lesson's control instead: the same check with the "
                             "claimed cause removed, which must fail")
    lesson.add_argument("--paused", action="store_true", help="open paused")


def _args_compare(compare: Parser) -> None:
    _config_args(compare)
    compare.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2",
                         help="a setting to vary, with its values (repeatable: every "
                              "combination runs)")
    compare.add_argument("--steps", type=int, metavar="N",
                         help="steps per run (default train.steps)")
    compare.add_argument("--json", action="store_true", help="every run's last record as JSON")
    compare.add_argument("--tui", action="store_true",
                         help="watch the runs side by side, live, instead of printing a table")
    compare.add_argument("--paused", action="store_true", help="with --tui: open paused")


def _args_sweep(sweep: Parser) -> None:
    _config_args(sweep)
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                       help="a setting and its values (repeatable: the grid is every "
                            "combination)")
    sweep.add_argument("--steps", type=int, metavar="N", help="steps per run")
    sweep.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="JOBS",
                       help="worker processes (default: one per core)")
    sweep.add_argument("--out", default="sweep", metavar="DIR",
                       help="folder for the runs' JSONL and summary.csv (default: sweep)")
    sweep.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="run on an existing Dask cluster instead (pip install "
                            "'nnsim[dask]')")


def _args_landscape(land: Parser) -> None:
    land.add_argument("surface", nargs="?", default="quadratic",
                      help="quadratic (default), rosenbrock, saddle or noisy_quadratic")
    land.add_argument("--optimizer", dest="optimizers", action="append", default=[],
                      metavar="SPEC", help="an optimizer plugin, by name or as a TOML table "
                      "'{name=\"adam\", lr=0.1}' (repeatable; default sgd, momentum, "
                      "nesterov, adam)")
    land.add_argument("--lr", type=float, help="learning rate for every optimizer without "
                                               "its own (default: the surface's)")
    land.add_argument("--condition", type=float, help="κ of the quadratics (default 20; 5 "
                                                      "when noisy)")
    land.add_argument("--noise", type=float, help="gradient noise of noisy_quadratic")
    land.add_argument("--steps", type=int, default=5000, help="at most this many steps")
    land.add_argument("--seed", type=int, default=0, help="seed of the gradient noise")
    land.add_argument("--headless", action="store_true",
                      help="print the steps each optimizer needs to converge")
    land.add_argument("--paused", action="store_true", help="open paused")


SERVED_COMMANDS = ("lesson", "landscape", "compare")  # TUI commands a browser tab can run


def _args_serve(serve: Parser) -> None:
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--public-url", metavar="URL",
                       help="the address browsers use, behind a reverse proxy (default: "
                            "the address of each request)")


def build_serve_parser() -> Parser:
    return command_parser(command("serve"))


def _args_doctor(doctor: Parser) -> None:
    _config_args(doctor)
    doctor.add_argument("--steps", type=int, metavar="N",
                        help="steps to train before the diagnosis (default 1000)")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")


def _args_config(config: Parser) -> None:
    _config_args(config)
    config.add_argument("--config", dest="config_file", metavar="FILE",
                        help="the same as CONFIG.toml")


def _args_new_plugin(parser: Parser) -> None:
    _scaffold().add_arguments(parser)


def _scaffold() -> Any:
    """nnsim.scaffold, imported when `nnsim new-plugin` runs; one line where it is missing."""
    import importlib

    try:
        scaffold = importlib.import_module("nnsim.scaffold")
    except ModuleNotFoundError as exc:
        if exc.name != "nnsim.scaffold":
            raise
        raise UsageError("nnsim new-plugin: not available in this installation (the module "
                         "nnsim.scaffold is missing); reinstall nnsim") from None
    return scaffold


def cmd_new_plugin(args) -> int:
    return _scaffold().run(args)


def cmd_config(args) -> int:
    """Print the effective config as TOML: what `nnsim CONFIG.toml` would run."""
    if args.config and args.config_file:
        raise UsageError("nnsim config: give the file once, as CONFIG.toml or --config FILE")
    args.config = args.config or args.config_file
    sys.stdout.write(_load_config(args).to_toml())
    return EXIT_OK


def cmd_doctor(args) -> int:
    from nnsim.doctor import diagnose_simulation
    from nnsim.engine.simulation import Simulation

    steps = 1000 if args.steps is None else args.steps
    if steps < 1:
        raise UsageError(f"nnsim doctor: --steps must be 1 or more, got {steps}")
    sim = Simulation(_load_config(args))
    for failure in sim.registry.failures:
        _err(f"nnsim: warning: plugin {failure}")
    records = sim.run(steps)
    found = diagnose_simulation(sim, records)
    if args.json:
        print(json.dumps({"steps": sim.step_count, "findings": [f.to_dict() for f in found]},
                         indent=1))
        return EXIT_FAIL if found else EXIT_OK
    if not found:
        print(f"healthy after {sim.step_count:,} steps: nothing the doctor checks for")
        return EXIT_OK
    for f in found:
        where = f" · layers {', '.join(map(str, f.layers))}" if f.layers else ""
        print(f"{f.title}  [{f.sureness}]")
        print(f"    evidence: {f.evidence} (steps {f.steps[0]:,}–{f.steps[1]:,}{where})")
        print(f"    remedy:   {f.remedy}"
              + (f"  (--set {' --set '.join(f'{k}={_toml(v)}' for k, v in f.fix)})"
                 if f.fix else ""))
        print(f"    lecture:  {f.section}")
    return EXIT_FAIL


def _toml(value) -> str:
    from nnsim.config import _toml_value

    return value if isinstance(value, str) else _toml_value(value)


def _err(message: str) -> None:
    try:
        print(message, file=sys.stderr)
    except (OSError, ValueError):  # stderr full or gone: the exit status still says why
        sys.stderr = open(os.devnull, "w", encoding="utf-8")


def _load_config(args):
    from nnsim.config import load

    sets = list(args.sets)
    if args.seed is not None:
        sets.append(f"seed={args.seed}")
    return load(args.config, sets)



def _grid_config(args, grid: Sequence[str], option: str):
    """For compare and sweep: (the base config, the `--set` overrides to apply with each
    run's varied values, the runs' configs as `compare.variants` gives them). The `--set`
    values go into the base when they fit it; otherwise into every run, so that a
    hyperparameter of a component only the varied values choose is accepted
    (`--set model.activation.slope=0.3 --vary model.activation=leaky_relu,prelu`), and a
    value that fits no run is refused naming the run's component."""
    from nnsim import compare as cmp
    from nnsim.config import load, parse_set

    varied = cmp.parse_vary(grid, option)
    try:
        base, fixed = _load_config(args), []
    except ConfigError:
        sets = list(args.sets) + ([f"seed={args.seed}"] if args.seed is not None else [])
        base, fixed = load(args.config), [parse_set(item) for item in sets]
    return base, fixed, cmp.variants(base, varied, fixed=fixed)


def command(name: str) -> Command:
    """The table entry of a subcommand."""
    return next(c for c in COMMANDS if c.name == name)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # a stream closed at start (`2>&-`) is None: messages to a closed stderr are dropped
    # (not printed to stdout instead), output to a closed stdout fails as a write error
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")
    if sys.stdout is None:
        sys.stdout = _ClosedStream()
    from nnsim.engine.memory import tune_allocator

    tune_allocator()
    try:
        names = [c.name for c in COMMANDS]
        if argv and argv[0] in names:
            chosen = command(argv[0])
            return chosen.run(parse(chosen, argv[1:]))
        first = argv[0] if argv else ""
        if first and not first.startswith("-") and not first.endswith(".toml") \
                and not os.path.exists(first):
            from nnsim.errors import did_you_mean

            raise UsageError(f"nnsim: unknown command or config file {first!r}"
                             f"{did_you_mean(first, names)}; commands: {', '.join(names)}")
        return cmd_tui(build_tui_parser().parse_args(argv))
    except UsageError as exc:
        _err(cap(str(exc), MAX_LINE))
        return EXIT_USAGE
    except NnsimError as exc:
        from nnsim.errors import PluginError

        _err(cap(f"nnsim: error: {exc}", MAX_LINE))
        return EXIT_PLUGIN if isinstance(exc, PluginError) else EXIT_USAGE
    except KeyboardInterrupt:
        _err("nnsim: interrupted")
        return 130
    except BrokenPipeError:
        # `nnsim plugins | head`: the reader left; one line, no traceback
        _quiet_stdout()
        _err("nnsim: error: cannot write to stdout (broken pipe: its reader has closed it)")
        return EXIT_WRITE
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG, errno.EBADF):
            raise
        _quiet_stdout()
        _err(f"nnsim: error: cannot write the output ({exc.strerror or exc})")
        return EXIT_WRITE


# ---------------------------------------------------------------- nnsim (TUI)

def _run_app(app, command: str, instead: str) -> int:
    """Run a Textual app on this terminal. With stdout not a terminal (redirected to a file
    or a pipe) it would write screen codes there until killed: refused, saying `instead`.
    An app given a driver of its own (`nnsim serve`'s browser) runs anywhere."""
    if not os.environ.get("TEXTUAL_DRIVER") and not sys.stdout.isatty():
        raise UsageError(f"{command}: the screen needs a terminal and stdout is not one "
                         f"(redirected?); {instead}")
    app.run()
    return app.return_code or EXIT_OK


def cmd_tui(args) -> int:
    config = _load_config(args)
    from nnsim.tui.app import make_app

    return _run_app(make_app(config, paused=args.paused), "nnsim",
                    "for records without a screen, use nnsim run")


# ---------------------------------------------------------------- nnsim serve

def cmd_serve(args) -> int:
    nnsim_args = args.rest
    # the nnsim arguments are checked once here rather than failing in every browser tab
    if nnsim_args and nnsim_args[0] in SERVED_COMMANDS:
        parse(command(nnsim_args[0]), nnsim_args[1:])
    else:
        _load_config(build_tui_parser().parse_args(nnsim_args))
    from nnsim.serve import serve

    return serve(nnsim_args, host=args.host, port=args.port, public_url=args.public_url)


# ---------------------------------------------------------------- nnsim run

def table_every(steps: int) -> int:
    """The spacing of a table's rows: the smallest of 1, 2, 5, 10, 20, 50, 100, ... that
    keeps `steps` to 50 rows at most, so 20 to 50 of them from 20 steps on (and the last)."""
    every = 1
    while steps > 50 * every:
        every = every * 5 // 2 if str(every)[0] == "2" else every * 2
    return every


class Progress:
    """A one-line progress bar on stderr, redrawn a few times a second; a line shorter than
    the one before is padded over it, so no character of the old one is left."""

    def __init__(self, total: int, stream: IO[str]) -> None:
        self.total, self.stream = total, stream
        self.start = self.last = time.perf_counter()
        self.width = 0

    def update(self, record, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        done = record.step
        width = 30
        filled = int(width * min(done / max(self.total, 1), 1.0))
        rate = done / max(now - self.start, 1e-9)
        from nnsim.formatting import human

        line = (f"[{'#' * filled}{'.' * (width - filled)}] {done:,}/{self.total:,} "
                f"loss {human(record.loss)}  {human(round(rate))} steps/s")
        self.stream.write(f"\r{line}{' ' * (self.width - len(line))}")
        self.width = len(line)
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


#: exit code of a run whose records could not be written (sysexits' EX_IOERR)
EXIT_WRITE = 74
#: exit codes of a run stopped by a signal: 128 + the signal's number
EXIT_SIGNAL: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}


class _Signals:
    """While training: the first Ctrl-C or SIGTERM asks the run to stop after the step in
    progress (so the final checkpoint holds a whole step); a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._saved: dict[int, Any] = {}

    @property
    def noting(self) -> bool:
        """Whether a Ctrl-C now would only be noted (no KeyboardInterrupt): one raised
        meanwhile came from a plugin (`pluginmanager.plugin_failure`)."""
        return self.received is None

    def __enter__(self) -> _Signals:
        try:
            for sig in EXIT_SIGNAL:
                self._saved[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: leave the defaults
            pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


class _TermAsInterrupt:
    """SIGTERM handled as Ctrl-C is (KeyboardInterrupt in the main thread), so that the same
    cleanup runs: worker processes stopped, finished results kept. `code()` is then 143."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._saved: Any = None

    def __enter__(self) -> _TermAsInterrupt:
        try:
            self._saved = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: leave the default
            pass
        return self

    def _handle(self, signum, frame) -> None:
        self.received = signum
        raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            signal.signal(signal.SIGTERM, self._saved)

    @property
    def what(self) -> str:
        return "terminated (SIGTERM)" if self.received else "interrupted"

    def code(self) -> int:
        return EXIT_SIGNAL[signal.SIGTERM] if self.received else EXIT_SIGNAL[signal.SIGINT]


def _resume_sets(sets: Sequence[str]) -> list[tuple[str, object]]:
    """--set on a resumed run: optimizer hyperparameters only (e.g. a lower lr), as
    (hyperparameter, value) pairs for `Simulation.set_hyper`."""
    from nnsim.config import parse_set

    pairs = []
    for item in sets:
        key, value = parse_set(item)
        parts = key.split(".")
        if len(parts) != 2 or parts[0] != "optimizer" or parts[1] == "name":
            raise UsageError(f"nnsim run: --resume takes --set only for optimizer "
                             f"hyperparameters (e.g. --set optimizer.lr=0.01), got {key[:80]!r}")
        pairs.append((parts[1], value))
    return pairs


class _ClosedStream(io.TextIOBase):
    """Standard output closed when nnsim started: every write fails with EBADF."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "stdout is closed")

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "stdout is closed")


def _quiet_stdout() -> None:
    """After stdout failed (broken pipe, closed): send what is left to /dev/null, so the
    interpreter's final flush does not print a second error."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _branch_from(args):
    """--resume DIR --from-step K [--set ...]: the snapshot kept at step K, with the changes;
    the kept records up to K come along."""
    from nnsim.config import parse_set
    from nnsim.engine import checkpoint
    from nnsim.engine.rewind import branch

    snap = checkpoint.load_snapshot(args.resume, args.from_step)
    try:
        changes = [parse_set(item) for item in args.sets]
    except NnsimError as exc:
        raise UsageError(f"nnsim run: --set: {exc}") from None
    sim = branch(snap, snap.config.with_overrides(changes) if changes else snap.config)
    _, history = checkpoint.load(args.resume)
    kept = [r for r in history if r.step <= args.from_step]
    sim.last = kept[-1] if kept else None
    return sim, kept


def _not_another_runs(args, target: Path) -> None:
    """--checkpoint DIR may replace only the checkpoint of the run it continues (--resume of
    the same folder, not a branch of it): another run's is never lost to a typo or a
    rerun."""
    if not target.exists():
        return
    if args.resume and args.from_step is None:
        from nnsim.engine import checkpoint

        if _same_file(str(checkpoint.checkpoint_path(args.resume)), target):
            return
    raise UsageError(f"nnsim run: --checkpoint {args.checkpoint} already holds the checkpoint "
                     f"of another run; continue that one with --resume {args.checkpoint}, or "
                     f"give a new folder (or remove {target} first)")


def _same_file(a: str, b: Path) -> bool:
    """Whether paths `a` and `b` name one file (either may not exist yet)."""
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (OSError, RuntimeError):
        return False


def cmd_run(args) -> int:
    with contextlib.ExitStack() as held:  # the checkpoint's lock, while the run saves to it
        return _run(args, held)


def _run(args, held: contextlib.ExitStack) -> int:
    from nnsim.engine import Simulation, checkpoint
    from nnsim.engine.history import History
    from nnsim.engine.writers import WRITERS
    from nnsim.formatting import RecordTable

    for option, value in (("--resume", args.resume), ("--checkpoint", args.checkpoint),
                          ("--out", args.out)):
        if value is not None and not value.strip():
            raise UsageError(f"nnsim run: {option} needs a path, got an empty one")
    if args.out:  # the records must not land on a checkpoint
        for option, where in (("--checkpoint", args.checkpoint), ("--resume", args.resume)):
            if where and _same_file(args.out, checkpoint.checkpoint_path(where)):
                raise UsageError(f"nnsim run: --out {args.out} is the checkpoint of {option} "
                                 f"{where}; write the records to another file")
    if args.resume:
        if args.config or args.seed is not None:
            raise UsageError("nnsim run: --resume continues a saved run with its own config; "
                             "leave out CONFIG and --seed (--set may change optimizer "
                             "hyperparameters)")
        if args.from_step is not None:
            sim, kept = _branch_from(args)
            hypers = []
        else:
            hypers = _resume_sets(args.sets)
            sim, kept = checkpoint.load(args.resume)
        if args.no_telemetry and sim.telemetry is not None:
            raise UsageError("nnsim run: --no-telemetry cannot change a resumed run")
        for key, value in hypers:
            sim.set_hyper(key, value)
        steps = sim.config.train.steps if args.steps is None else args.steps
    else:
        if args.from_step is not None:
            raise UsageError("nnsim run: --from-step K branches a saved run: give --resume DIR")
        config = _load_config(args)
        steps = config.train.steps if args.steps is None else args.steps
        sim, kept = None, []
    if steps < 0:
        raise UsageError(f"nnsim run: --steps must be 0 or more, got {steps}")
    if args.every is not None and args.every < 1:
        raise UsageError(f"nnsim run: --every must be 1 or more, got {args.every}")
    if args.checkpoint_every is not None and (args.checkpoint_every < 1 or not args.checkpoint):
        raise UsageError("nnsim run: --checkpoint-every N needs N >= 1 and --checkpoint DIR")
    if args.snapshot_every is not None and not args.checkpoint:
        raise UsageError("nnsim run: --snapshot-every N keeps snapshots in a checkpoint: give "
                         "--checkpoint DIR too")
    if args.checkpoint:
        checkpoint.check_writable(args.checkpoint)  # before training, not after it
        held.enter_context(checkpoint.writer_lock(args.checkpoint))
        _not_another_runs(args, checkpoint.checkpoint_path(args.checkpoint))
    if not args.out and isinstance(sys.stdout, _ClosedStream):
        raise UsageError("nnsim run: stdout is closed; give --out FILE for the records")
    if sim is None:
        sim = Simulation(config, telemetry=not args.no_telemetry)
    stuck = sim.divergence is not None and bool(args.resume) and args.from_step is None
    if sim.divergence is not None and args.on_divergence == "stop":
        steps = 0  # a checkpoint saved at a divergence: nothing more to step
    for failure in sim.registry.failures:
        _err(f"nnsim: warning: plugin {failure}")
    history = History(timeline=False)
    history.extend(kept)
    snapshots = None
    if args.checkpoint:
        from nnsim.engine.rewind import SnapshotStore

        every = 100 if args.snapshot_every is None else args.snapshot_every
        if every < 1:
            raise UsageError(f"nnsim run: --snapshot-every must be 1 or more, got {every}")
        snapshots = SnapshotStore(budget=4 * 2**20, interval=every)
        if args.resume:  # the earlier part's snapshots (a branch: those before it) stay
            snapshots.adopt(checkpoint.load_snapshots(args.resume, sim.step_count,
                                                      sim.registry))
        snapshots.keep(sim)  # due at step 0 and every N steps after

    out: IO[str]
    if args.out:
        try:
            out = open(args.out, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise UsageError(f"nnsim run: cannot write --out {args.out!r}: {exc.strerror}")
    else:
        out = sys.stdout
    where = args.out or "stdout"
    fmt = args.format or ("table" if out is sys.stdout and sys.stdout.isatty() else "jsonl")
    if args.every is None:
        args.every = table_every(steps) if fmt == "table" else 1
    writer: Any = {**WRITERS, "table": RecordTable}[fmt](out)
    last_step = sim.step_count + steps
    progress = Progress(last_step, sys.stderr) if sys.stderr.isatty() else None
    record = None
    diverged_here = False
    write_error: OSError | None = None

    def write(rec) -> None:
        nonlocal write_error
        if write_error is None:
            try:
                writer.write(rec)
            except OSError as exc:  # disk full, EIO, broken pipe, closed stdout
                write_error = exc

    if args.checkpoint_every and args.checkpoint_every <= checkpoint.KEEP_COUNTS_EVERY \
            and sim.telemetry is not None:
        sim.telemetry.keep_counts(args.checkpoint_every)  # a periodic save's histograms
    with _Signals() as signals:
        try:
            for record in sim.steps(steps, stop_on_divergence=args.on_divergence == "stop",
                                     every=args.every):
                history.append(record)
                if snapshots is not None:
                    snapshots.keep(sim)
                # the step that diverged is always written; with --on-divergence continue
                # the non-finite steps after it follow --every like any other
                diverged_here = record.nonfinite is not None and sim.divergence is not None \
                    and record.step == sim.divergence.step
                if record.step % args.every == 0 or record.step == last_step or diverged_here:
                    write(record)
                if progress:
                    progress.update(record)
                if args.checkpoint_every and record.step % args.checkpoint_every == 0:
                    checkpoint.save(sim, args.checkpoint, history.snapshot(), durable=False,
                                    snapshots=snapshots, compact=False)
                if write_error is not None or signals.received is not None:
                    break
            if record is not None and record.step % args.every and not diverged_here \
                    and record.step != last_step:
                write(record)  # the last record, when stopped early between K-steps
        finally:
            if progress and record is not None:
                progress.update(record, force=True)
                progress.close()
            try:
                writer.close()
                if out is not sys.stdout:
                    out.close()
            except OSError as exc:
                write_error = write_error or exc
            if write_error is not None and out is sys.stdout:
                _quiet_stdout()
    if args.checkpoint:
        # the final checkpoint: after the last step, a write error or a signal alike
        checkpoint.save(sim, args.checkpoint, history.snapshot(), snapshots=snapshots)
    saved = (f"; checkpoint at step {sim.step_count} in {args.checkpoint} (continue with "
             f"nnsim run --resume {args.checkpoint})" if args.checkpoint else "")
    if write_error is not None:
        why = write_error.strerror or write_error.__class__.__name__
        if isinstance(write_error, BrokenPipeError):
            why = "broken pipe: its reader has closed it"
        _err(f"nnsim: error: cannot write the records to {where} ({why}); stopped at step "
             f"{sim.step_count}{saved}")
        return EXIT_WRITE
    if signals.received is not None:
        name = "SIGTERM" if signals.received == signal.SIGTERM else "interrupted (Ctrl-C)"
        _err(f"nnsim: {name} at step {sim.step_count}{saved}")
        return EXIT_SIGNAL[signals.received]
    if sim.stopped:
        _err(f"nnsim: {sim.stopped}")
    if sim.divergence is not None:
        _err(f"nnsim: {sim.divergence}" + (_before_divergence(args.resume, sim.divergence.step)
                                           if stuck else ""))
        return EXIT_DIVERGED
    return EXIT_OK


def _before_divergence(where: str, step: int) -> str:
    """What to do with a checkpoint saved at a divergence: branch from before it."""
    from nnsim.engine import checkpoint

    try:
        kept = [s for s in checkpoint.snapshot_steps(where) if s < step]
    except NnsimError:
        kept = []
    if not kept:
        return ("; the checkpoint was saved at it, so there is nothing to continue (no "
                "snapshot before it to branch from)")
    return (f"; the checkpoint was saved at it, so there is nothing to continue: branch from "
            f"before it with --from-step {kept[-1]} (kept: {', '.join(map(str, kept[-5:]))}) "
            f"and --set, e.g. a lower optimizer.lr")


# ---------------------------------------------------------------- nnsim plugins

def plugins_report(registry) -> dict:
    from nnsim.config import expected

    families = {}
    for family, table in registry.families.items():
        families[family] = [{
            "name": name,
            "source": entry.source,
            "plugin": entry.plugin,
            "summary": entry.cls.summary(),
            "hyperparameters": {
                key: {"type": h.kind.__name__, "default": h.default, "range": expected(h),
                      "learnable": h.learnable, "help": h.help}
                for key, h in entry.cls.hyperparameters.items()},
        } for name, entry in table.items()]
    failures = [{"plugin": f.plugin, "source": f.source, "stage": f.stage, "error": f.error}
                for f in registry.failures]
    loaded = [{"plugin": plugin, "source": source} for plugin, source in registry.plugins]
    return {"families": families, "plugins": loaded, "failures": failures}


def cmd_plugins(args) -> int:
    from nnsim.pluginmanager import default_registry

    registry = default_registry()
    report = plugins_report(registry)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for family, entries in report["families"].items():
            print(f"{family}s:")
            for e in entries:
                print(f"  {e['name']:<16} {e['summary']}  [{e['source']}]")
                for key, h in e["hyperparameters"].items():
                    learn = ", learnable" if h["learnable"] else ""
                    print(f"      {key} = {h['default']!r}  ({h['range']}{learn}) {h['help']}")
            print()
        if report["failures"]:
            print("failed plugins:")
            for f in report["failures"]:
                print(f"  {f['plugin']} ({f['source']}) at {f['stage']}: {f['error']}")
    return EXIT_OK


# ---------------------------------------------------------------- nnsim check-plugin

def select_components(registry, names: Sequence[str]) -> list:
    """Component classes for plugin names, component names or FAMILY:NAME."""
    from nnsim.errors import did_you_mean
    from nnsim.pluginmanager import BUILTIN

    chosen = []
    entries = [(family, name, entry) for family, table in registry.families.items()
               for name, entry in table.items()]
    for wanted in names:
        family, _, name = wanted.rpartition(":")
        found = [e.cls for f, n, e in entries
                 if (family and f == family and n == name)
                 or (not family and (n == wanted or e.plugin == wanted
                                     or e.source.rsplit(" ", 1)[0] == wanted
                                     or (wanted == BUILTIN and e.source == BUILTIN)))]
        if not found:
            options = sorted({n for _, n, _ in entries} | {e.plugin for _, _, e in entries})
            raise UsageError(f"nnsim check-plugin: no plugin or component {wanted!r}"
                             f"{did_you_mean(wanted, options)}; see nnsim plugins")
        chosen += [cls for cls in found if cls not in chosen]
    return chosen


def cmd_check_plugin(args) -> int:
    from nnsim.pluginmanager import default_registry
    from nnsim.testing import check_component, failure_check, load_problems

    registry = default_registry()
    results = [failure_check(f) for f in load_problems(registry, args.names)]
    for check in results:  # a plugin that failed to load fails its check
        print(check, flush=True)
    chosen: list = []
    for name in args.names:
        try:
            chosen += [cls for cls in select_components(registry, [name]) if cls not in chosen]
        except UsageError:
            if not load_problems(registry, [name]):
                raise
    for cls in chosen:
        for check in check_component(cls):
            results.append(check)
            print(check, flush=True)
    failed = sum(not c.passed for c in results)
    print(f"\n{len(results) - failed} checks passed, {failed} failed")
    return EXIT_OK if failed == 0 else EXIT_FAIL


# ---------------------------------------------------------------- nnsim lessons / lesson

def _lesson_entry(name: str, cls) -> dict:
    return {"name": name, "title": cls.title, "section": cls.section,
            "explanation": cls.explanation, "watch": cls.watch, "runs": list(cls.runs),
            "steps": cls.steps, "control": {"note": cls.control_note, "runs": cls.control}}


def cmd_lessons(args) -> int:
    from nnsim.pluginmanager import default_registry

    registry = default_registry()
    entries = registry.families["lesson"]
    if args.verify:
        return _verify_lessons(args, registry)
    if args.names:
        raise UsageError("nnsim lessons: lesson names go with --verify")
    if args.json:
        print(json.dumps([{**_lesson_entry(name, e.cls), "source": e.source}
                          for name, e in entries.items()], indent=2, default=str))
        return EXIT_OK
    width = max((len(n) for n in entries), default=0)
    # on a terminal, long lines wrap under their own text (they wrapped to column 0)
    columns = shutil.get_terminal_size().columns if sys.stdout.isatty() else 0

    def say(head: str, text: str, label: str = "") -> None:
        line = f"{head:<{width}}  {label}{text}"
        if columns > width + 30:
            line = textwrap.fill(line, columns - 1, subsequent_indent=" " * (width + 2
                                                                              + len(label)))
        print(line)

    for name, entry in entries.items():
        cls: Any = entry.cls
        say(name, cls.title)
        if cls.section:
            say("", cls.section, "lecture: ")
        say("", ", ".join(cls.runs), "runs: ")
        if cls.control_note:
            say("", cls.control_note, "control: ")
    return EXIT_OK


def _verify_lessons(args, registry) -> int:
    from nnsim.errors import did_you_mean
    from nnsim.lessons import margin_table, parse_seeds, verify

    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        raise UsageError(f"nnsim lessons: --seeds: {exc}") from None
    if args.jobs < 1:
        raise UsageError(f"nnsim lessons: -j must be 1 or more, got {args.jobs}")
    known = registry.names("lesson")
    for name in args.names:
        if name not in known:
            raise UsageError(f"nnsim lessons: no lesson {name!r}{did_you_mean(name, known)}")
    names = args.names or known

    def progress(m) -> None:
        what = f"{m.name} control" if m.control else m.name
        ok = (len(m.verdicts) - m.passes) if m.control else m.passes
        _err(f"{what}: {ok}/{len(m.verdicts)} as expected")

    try:
        with _TermAsInterrupt() as term:
            rows = verify(names, seeds, jobs=args.jobs, progress=progress)
    except KeyboardInterrupt:
        _err(f"nnsim: {term.what}: the lessons' check stopped before it finished")
        return term.code()
    print(f"seeds {args.seeds}; margin = ln(measured / threshold), > 0 where a condition "
          f"holds; a lesson's margin is its tightest condition's")
    print(margin_table(rows, registry))
    good = all(lesson.passes == len(seeds) and control.passes == 0 for lesson, control in rows)
    return EXIT_OK if good else EXIT_FAIL


def _lesson(name: str):
    from nnsim.errors import did_you_mean
    from nnsim.pluginmanager import default_registry

    registry = default_registry()
    names = registry.names("lesson")
    if name not in names:
        raise UsageError(f"nnsim lesson: no lesson {name!r}{did_you_mean(name, names)}; "
                         f"see nnsim lessons")
    return registry.get("lesson", name)(), registry


def cmd_lesson(args) -> int:
    lesson, registry = _lesson(args.name)
    from nnsim.lessons import run_config

    if args.control and not lesson.control:
        raise UsageError(f"nnsim lesson: {lesson.name} declares no control")
    first = next(iter(lesson.runs))
    # a bad --set or --seed is refused before anything trains
    run_config(lesson, first, registry, seed=args.seed, overrides=args.sets,
               control=args.control)
    if not args.headless:
        from nnsim.tui.app import make_app

        app = make_app(run_config(lesson, first, registry, seed=args.seed,
                                  overrides=args.sets, control=args.control),
                       paused=args.paused, registry=registry, lesson=lesson,
                       lesson_overrides=args.sets, control=args.control)
        return _run_app(app, "nnsim lesson", "add --headless for the check without a screen")
    from nnsim.lessons import run_lesson

    what = "control" if args.control else "lesson"
    _err(f"nnsim: {lesson.title} ({what}): {len(lesson.runs)} runs of {lesson.steps:,} steps")
    if args.control:
        _err(f"nnsim: control: {lesson.control_note}")
    results, verdict = run_lesson(lesson, registry, seed=args.seed, overrides=args.sets,
                                  control=args.control)
    from nnsim.formatting import human

    for label, result in results.items():
        last = result.last
        acc = "" if last.accuracy is None else f"  accuracy {last.accuracy:.3f}"
        print(f"{label:<20} step {human(last.step):>6}  loss {human(last.loss)}{acc}"
              + (f"  (diverged: {last.nonfinite})" if last.nonfinite else ""))
    from nnsim.lessons import format_margin

    tail = f"  [margin {format_margin(verdict.margin)}]" if verdict.margins else ""
    print(f"{'PASS' if verdict.passed else 'FAIL'}: {verdict.numbers}{tail}")
    return EXIT_OK if verdict.passed else EXIT_FAIL


# ---------------------------------------------------------------- nnsim compare

def cmd_compare(args) -> int:
    from nnsim import compare as cmp

    if not args.vary:
        raise UsageError("nnsim compare: give at least one --vary KEY=V1,V2 "
                         "(e.g. --vary optimizer.name=sgd,momentum)")
    _, _, runs = _grid_config(args, args.vary, "--vary")
    config = runs[0][1]
    if len(runs) < 2:
        raise UsageError("nnsim compare: --vary needs two or more values to compare")
    if args.tui:
        from nnsim.engine.lockstep import Lockstep
        from nnsim.tui.compare import CompareApp

        if args.json:
            raise UsageError("nnsim compare: --json prints the table's numbers; it does not go "
                             "with --tui")
        return _run_app(CompareApp(Lockstep(runs, paused=args.paused)), "nnsim compare --tui",
                        "leave out --tui for the table")
    if args.paused:
        raise UsageError("nnsim compare: --paused starts the screen paused; it goes with --tui")
    steps = config.train.steps if args.steps is None else args.steps
    if steps < 1:
        raise UsageError(f"nnsim compare: --steps must be 1 or more, got {steps}")
    _err(f"nnsim: {len(runs)} runs in lockstep, {steps:,} steps each")
    result = cmp.compare(runs, steps)
    if args.json:
        print(json.dumps({label: recs[-1].to_dict() if recs else None
                          for label, recs in result.records.items()}))
    else:
        print(cmp.table(result))
    return EXIT_OK


# ---------------------------------------------------------------- nnsim sweep

def cmd_sweep(args) -> int:
    from nnsim import sweep as sw

    if not args.grid:
        raise UsageError("nnsim sweep: give at least one --grid KEY=V1,V2 "
                         "(e.g. --grid model.activation=sigmoid,tanh,relu)")
    if args.jobs < 1:
        raise UsageError(f"nnsim sweep: -j must be 1 or more, got {args.jobs}")
    config, fixed, runs = _grid_config(args, args.grid, "--grid")
    steps = runs[0][1].train.steps if args.steps is None else args.steps
    if steps < 1:
        raise UsageError(f"nnsim sweep: --steps must be 1 or more, got {steps}")

    from nnsim.formatting import human

    def progress(done: int, total: int, summary) -> None:
        how = "done earlier" if summary.skipped else f"{summary.seconds:.1f} s"
        _err(f"[{done}/{total}] {summary.run}: loss {human(summary.loss)}, {summary.outcome} "
             f"({how})")

    client = sw.dask_client(args.scheduler) if args.scheduler else None
    try:
        with _TermAsInterrupt() as term:
            summaries = sw.sweep(config, args.grid, steps, args.out, fixed=fixed,
                                 executor=client.get_executor() if client else None,
                                 jobs=args.jobs, progress=progress)
    except sw.SweepInterrupted as stop:
        _err(f"nnsim: {term.what}: {stop.done} of {stop.total} runs finished and kept in "
             f"{args.out} (summary.csv); run the same command again to finish the rest")
        return term.code()
    finally:
        if client is not None:
            client.close()
    print(sw.summary_table(summaries))
    failed = [s for s in summaries if sw.failed(s.outcome)]
    kept = [s.kept for s in summaries if s.kept]
    if kept:
        _err(f"nnsim: {len(kept)} earlier run(s) of other settings kept beside the new ones: "
             + ", ".join(kept[:3]) + (", …" if len(kept) > 3 else "") + f" (see {sw.MANIFEST})")
    _err(f"nnsim: runs and summary.csv in {args.out}"
         + (f"; {len(failed)} of {len(summaries)} runs failed (see outcome)" if failed else ""))
    if any(s.outcome.startswith("plugin error") for s in failed):
        return EXIT_PLUGIN
    return EXIT_USAGE if failed else EXIT_OK


# ---------------------------------------------------------------- nnsim landscape

def cmd_landscape(args) -> int:
    from nnsim.config import parse_set
    from nnsim.landscape import Landscape

    try:
        specs = [parse_set(f"o={text}")[1] for text in args.optimizers] or \
            ["sgd", "momentum", "nesterov", "adam"]
    except ConfigError as exc:
        raise ConfigError("--optimizer", exc.message) from None
    params = {}
    if args.condition is not None:
        if not args.condition >= 1:
            raise UsageError(f"nnsim landscape: --condition must be 1 or more, got "
                             f"{args.condition}")
        params["condition"] = args.condition
    if args.noise is not None:
        if not args.noise >= 0:
            raise UsageError(f"nnsim landscape: --noise must be 0 or more, got {args.noise}")
        params["noise"] = args.noise
    if args.lr is not None and not 0 < args.lr <= 10:
        raise UsageError(f"nnsim landscape: --lr must be in (0, 10], got {args.lr}")
    if args.steps < 1:
        raise UsageError(f"nnsim landscape: --steps must be 1 or more, got {args.steps}")
    land = Landscape(args.surface, specs, lr=args.lr, seed=args.seed, **params)
    if args.headless:
        land.run(args.steps)
        print(land.report())
        return EXIT_OK
    from nnsim.tui.landscape import LandscapeApp

    return _run_app(LandscapeApp(land, paused=args.paused), "nnsim landscape",
                    "add --headless for the report without a screen")


# ---------------------------------------------------------------- the subcommands

COMMANDS: tuple[Command, ...] = (
    Command("run", "Train headless and write one record per step.", _args_run, cmd_run),
    Command("compare", "Runs that differ in chosen settings, in lockstep from one seed; "
                       "prints final and per-layer statistics side by side.",
            _args_compare, cmd_compare),
    Command("sweep", "Every combination of a grid of settings, in worker processes; one JSONL "
                     "per run, a summary table and summary.csv. Run it again to finish an "
                     "interrupted sweep.", _args_sweep, cmd_sweep),
    Command("landscape", "Optimizers on a two-parameter loss surface; their paths over the "
                         "contour map, live, or, headless, the steps each needs.",
            _args_landscape, cmd_landscape),
    Command("plugins", "List components and failed plugins.", _args_plugins, cmd_plugins),
    Command("check-plugin", "Check plugins against the conformance kit; every component of "
                            "the named plugins, or the named components.",
            _args_check_plugin, cmd_check_plugin),
    Command("lessons", "List the lessons; with --verify, check every lesson and its control "
                       "at several seeds.", _args_lessons, cmd_lessons),
    Command("lesson", "Open the TUI on a lesson, or check it.", _args_lesson, cmd_lesson),
    Command("serve", "Serve the TUI to web browsers (textual-serve); every tab gets its own "
                     "nnsim session, run as `python -m nnsim [nnsim arguments]`; e.g. nnsim "
                     "serve --port 8000 --paused, nnsim serve lesson dead_relu. Binding to "
                     "another host than 127.0.0.1 (e.g. 0.0.0.0) gives anyone who can reach "
                     "the port a full nnsim session that can write files here.",
            _args_serve, cmd_serve, pass_rest=True,
            usage="nnsim serve [--host H] [--port P] [--public-url URL] [nnsim arguments]"),
    Command("doctor", "Train headless, then name what is wrong with the run; one line per "
                      "finding (evidence, where, how sure, the lecture's remedy); exit 0 when "
                      "healthy, 1 with findings.", _args_doctor, cmd_doctor),
    Command("config", "Print the effective config as TOML; the defaults with CONFIG.toml and "
                      "--set applied (loading what it prints gives the same config).",
            _args_config, cmd_config),
    Command("new-plugin", "Write a new plugin distribution to start from; pyproject with the "
                          "entry point, components, tests using the conformance kit.",
            _args_new_plugin, cmd_new_plugin),
)
