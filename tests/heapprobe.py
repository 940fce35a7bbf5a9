"""Where glibc puts a big buffer in a fresh interpreter, after some setup code ran there.

The probe frees a 16 MiB block first (glibc then raises a threshold left alone to 16 MiB), then
asks for a buffer bigger than all the free memory the main heap holds: with the threshold fixed
lower it is mmapped; otherwise it grows the main heap. Nothing else decides it, whatever the
heap's state, so the answer is the same on every run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from kubevirt_usb.allocator import TUNED_BY

PROBE = textwrap.dedent("""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    big = bytearray(16 << 20)
    del big
    size = max(256 << 10, libc.mallinfo2().fordblks + (64 << 10))
    assert size < 16 << 20, size
    before = libc.mallinfo2().hblks
    buffer = bytes(size)
    print("mmapped" if libc.mallinfo2().hblks > before else "main heap")
""")


def where_a_big_buffer_goes(setup: str) -> str:
    """'mmapped' or 'main heap', in an environment without glibc malloc tuning of its own."""
    env = {key: value for key, value in os.environ.items()
           if key not in (*TUNED_BY, "GLIBC_TUNABLES")}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(setup) + PROBE],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def after_the_command(argv: list[str]) -> str:
    """Where the big buffer goes after `kubevirt-usb ARGV` ran and stopped at its missing
    kubeconfig (the command's start-up is what sets the allocator up)."""
    return where_a_big_buffer_goes(f"""
        from click.testing import CliRunner
        from kubevirt_usb.cli import cli
        result = CliRunner().invoke(cli, {argv!r})
        assert "kubeconfig" in result.output and result.exit_code == 1, result.output
    """)
