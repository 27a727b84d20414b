"""The ``nnjoules`` command line. Tables on stdout, logs and progress on stderr.

Exit codes: 0 ok, 1 failure (e.g. a layer that cannot be mapped), 2 bad usage or input,
including an output that cannot be written (read-only folder, full disk).
Each subcommand lives in :mod:`nnjoules.commands` and registers itself in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from nnjoules.errors import NNJoulesError

# Modules under nnjoules.commands, each with ``register(subparsers)``.
COMMANDS = ("estimate", "compare", "sweep", "train", "prune", "demo")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * args.verbose, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args))
    except NNJoulesError as err:
        # one line, even when a library's text inside the message has several
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        print(f"nnjoules: error: {message}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # a folder or file that cannot be created: as a bad path, exit 2
        from nnjoules.io import os_error_message

        print(f"nnjoules: error: {os_error_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nnjoules: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    from nnjoules.version import __version__

    parser = _OneLineErrors(prog="nnjoules", description=(
        "Estimate where a neural network's energy goes on an Eyeriss-like accelerator."))
    parser.add_argument("--version", action="version", version=f"nnjoules {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_SubParser)
    for name in COMMANDS:
        importlib.import_module(f"nnjoules.commands.{name}").register(sub)
    return parser


class _OneLineErrors(argparse.ArgumentParser):
    """A usage error is one line (what is wrong, and where the help is), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class _SubParser(_OneLineErrors):
    """Subcommand parsers show every option's default in ``--help``."""

    def __init__(self, **kwargs: Any) -> None:
        from nnjoules.commands.helpformat import DefaultsHelpFormatter

        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(**kwargs)


if __name__ == "__main__":
    raise SystemExit(main())
