"""glibc's malloc in a long-running process: a fixed mmap threshold.

glibc serves a request of 128 KiB or more that the heap's free memory cannot hold with its own
mmap, given back whole when freed. But each time such a block is freed it raises that threshold
to the block's size (up to 32 MiB), and the free memory it keeps at the top of the heap to twice
that. Python's imports free blocks of a few hundred KiB, so in the controller the threshold
ends at about 450 KiB; asyncio's receive buffer (every read of a socket, plain or TLS, is
`sock.recv(262144)`: a 256 KiB bytes object, then shrunk to what arrived) is then carved out of
the main heap, its rest handed to smaller objects, some of them long-lived. Every reconnect (a
TLS handshake, a list and a watch per informer) leaves the heap a little more fragmented: the
bytes in use stay flat while the heap grows (docs/benchmarks.md, "Memory over the run").

`fix_mmap_threshold` sets both back to glibc's initial 128 KiB with `mallopt` (M_TRIM_THRESHOLD,
M_MMAP_THRESHOLD), which also ends the raising: the top of the heap is trimmed above 128 KiB,
and a receive buffer that does not fit in the heap's free memory is mmapped instead of growing
it (what `MALLOC_MMAP_THRESHOLD_=131072` in the environment does from the start). An
administrator's own `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` or `GLIBC_TUNABLES`
setting of either wins; without glibc nothing is changed.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Mapping

M_TRIM_THRESHOLD = -1  # from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024
"""glibc's initial mmap and trim thresholds: asyncio's 256 KiB receive buffers are above."""
TUNED_BY = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
TUNABLES = ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold")

Mallopt = Callable[[int, int], int]
"""glibc's `int mallopt(int param, int value)`: 1 on success, 0 on error."""


def glibc_mallopt() -> Mallopt | None:
    """The C library's `mallopt` when it is glibc's (None elsewhere, e.g. musl or macOS)."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def fix_mmap_threshold(*, mallopt: Mallopt | None, environ: Mapping[str, str] = os.environ,
                       threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's trim and mmap thresholds at `threshold` bytes unless the environment already
    tunes either; whether both were set."""
    tunables = environ.get("GLIBC_TUNABLES", "")
    tuned = any(key in environ for key in TUNED_BY) or any(t in tunables for t in TUNABLES)
    if mallopt is None or tuned:
        return False
    return bool(mallopt(M_TRIM_THRESHOLD, threshold)) and bool(
        mallopt(M_MMAP_THRESHOLD, threshold))
