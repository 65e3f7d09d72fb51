"""Progress bars with ETA for long work (tqdm underneath). They show when stderr is a terminal; logs and pipes
would fill with thousands of carriage-return updates, so they stay quiet there. LATENTSTUDIO_PROGRESS=1 shows
them anyway, LATENTSTUDIO_PROGRESS=0 never."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    flag = os.environ.get("LATENTSTUDIO_PROGRESS")
    if flag is not None:
        return flag != "0"
    return bool(getattr(sys.stderr, "isatty", None) and sys.stderr.isatty())


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
