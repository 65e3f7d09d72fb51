"""Helpers shared by subcommands: parser construction, common options, run records."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .. import __version__
from ..errors import UserError


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults next to every option and keeps the example in the epilog as written."""

    def _get_help_string(self, action):
        # A help text that already explains its default ("default: the built-in model") keeps its own words
        # instead of getting a second, less useful "(default: None)".
        if "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: `latentstudio CMD: error: ... (see latentstudio CMD --help)`, exit 2.
    argparse's own error() prints the whole usage block first, which buries the message; --help has it."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(str(message).split())} (see {self.prog} --help)\n")


def add_command(sub, name: str, help: str, example: str, description: str | None = None):
    return sub.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter,
                          epilog=f"example:\n  {example}")


def add_model_argument(parser) -> None:
    parser.add_argument("model", nargs="?", default=None, metavar="MODEL",
                        help="model directory or NVIDIA .pkl (default: the built-in model)")


def add_device_argument(parser) -> None:
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
    return value


def write_run_record(out_dir: str | Path, command: str, args: argparse.Namespace, extra: dict | None = None,
                     filename: str | None = None) -> Path:
    """Write the resolved settings of a run next to its outputs, so every result can be reproduced
    (as `<command>.json`, or `filename` when several runs share a folder, e.g. `walk.mp4.json`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}
    record = {"command": command, "argv": sys.argv[1:], "settings": settings, "latentstudio": __version__,
              "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    record.update(extra or {})
    path = out / (filename or f"{command}.json")
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path


def check_out_dir(path: str | Path) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    return out
