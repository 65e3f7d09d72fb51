"""The `latentstudio` command line. Each subcommand lives in `latentstudio.commands.<module>` and provides
`register(subparsers)`; this file only wires them together and turns user errors into one line + exit 2."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .commands.common import ArgumentParser
from .errors import UserError
from .utils.memory import keep_freed_memory

# (command name, module) in the order `--help` lists them.
COMMANDS = (
    ("generate", "latentstudio.commands.generate"),
    ("info", "latentstudio.commands.info"),
    ("import", "latentstudio.commands.import_pkl"),
    ("init-model", "latentstudio.commands.init_model"),
    ("prepare", "latentstudio.commands.prepare"),
    ("metrics", "latentstudio.commands.metrics"),
    ("serve", "latentstudio.commands.serve"),
    ("walk", "latentstudio.commands.walk"),
    ("neighbours", "latentstudio.commands.neighbours"),
    ("render", "latentstudio.commands.render"),
    ("train", "latentstudio.commands.train"),
    ("project", "latentstudio.commands.project"),
    ("train-encoder", "latentstudio.commands.train_encoder"),
)


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and each command's parser by name."""
    parser = ArgumentParser(
        prog="latentstudio", description="A studio for GAN latent-space art: train StyleGAN2 on your images, "
        "walk its latent space, project drawings, run installations.",
        epilog="example: latentstudio generate --seeds 0-7 --out out/ --grid")
    parser.add_argument("--version", action="version", version=f"latentstudio {__version__}")
    # Every subcommand's parser is an ArgumentParser too (one-line errors naming the command).
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for _, module in COMMANDS:
        importlib.import_module(module).register(sub)
    return parser, sub.choices


def main(argv: list[str] | None = None) -> int:
    keep_freed_memory()  # before any tensor: fewer page faults in every command (utils/memory.py)
    parser, commands = _build()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the command's own parser, so the line names the command whose --help to read
        commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"latentstudio {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"latentstudio {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
