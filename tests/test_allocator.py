"""glibc's mmap threshold: fixed, big buffers stay out of the main heap; an administrator's own
setting wins."""

from __future__ import annotations

import pytest

from kubevirt_usb.allocator import (
    M_MMAP_THRESHOLD,
    M_TRIM_THRESHOLD,
    MMAP_THRESHOLD,
    fix_mmap_threshold,
    glibc_mallopt,
)
from tests.heapprobe import where_a_big_buffer_goes

glibc_only = pytest.mark.skipif(glibc_mallopt() is None, reason="needs glibc's malloc")


@glibc_only
def test_a_fixed_threshold_keeps_big_buffers_out_of_the_main_heap() -> None:
    assert where_a_big_buffer_goes("") == "main heap"
    assert where_a_big_buffer_goes("""
        from kubevirt_usb.allocator import fix_mmap_threshold, glibc_mallopt
        fix_mmap_threshold(mallopt=glibc_mallopt(), environ={})
    """) == "mmapped"


def test_sets_the_threshold_with_mallopt() -> None:
    calls: list[tuple[int, int]] = []

    def mallopt(param: int, value: int) -> int:
        calls.append((param, value))
        return 1

    assert fix_mmap_threshold(mallopt=mallopt, environ={}) is True
    assert calls == [(M_TRIM_THRESHOLD, MMAP_THRESHOLD), (M_MMAP_THRESHOLD, MMAP_THRESHOLD)]


def test_an_administrators_setting_wins() -> None:
    calls: list[tuple[int, int]] = []

    def mallopt(param: int, value: int) -> int:
        calls.append((param, value))
        return 1

    both = "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=4096"
    for environ in ({"MALLOC_MMAP_THRESHOLD_": "1048576"}, {"MALLOC_TRIM_THRESHOLD_": "0"},
                    {"GLIBC_TUNABLES": both}, {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}):
        assert fix_mmap_threshold(mallopt=mallopt, environ=environ) is False
    assert calls == []
    assert fix_mmap_threshold(mallopt=mallopt,
                              environ={"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}) is True


def test_without_glibc_nothing_is_changed() -> None:
    assert fix_mmap_threshold(mallopt=None, environ={}) is False


def test_a_refused_setting_is_reported() -> None:
    assert fix_mmap_threshold(mallopt=lambda param, value: 0, environ={}) is False
