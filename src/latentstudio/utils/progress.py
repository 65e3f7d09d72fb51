"""Progress bars with ETA for long work (tqdm underneath; quiet when output is not a terminal and
LATENTSTUDIO_PROGRESS=0)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    return os.environ.get("LATENTSTUDIO_PROGRESS", "1") != "0"


def track(iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it") -> Iterator[T]:
    """Iterate with a progress bar showing rate and ETA."""
    from tqdm import tqdm

    yield from tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True, disable=not progress_enabled(),
                    leave=False)


def bar(total: float | None, desc: str = "", unit: str = "it", initial: float = 0, bar_format: str | None = None):
    """A manual progress bar (`.update(n)`, `.set_postfix(...)`, `.close()`), e.g. for kimg in training.
    `initial`: work done before (a resumed run), left out of the rate so the ETA stays right."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, initial=initial, bar_format=bar_format, dynamic_ncols=True,
                disable=not progress_enabled())
