"""The soak's pure decisions: the seeded fault schedule, the block ledger's verdicts, the
figures."""

from __future__ import annotations

import itertools
import math

import pytest
from bench.soak_plan import (
    BlockLedger,
    FaultKind,
    Length,
    ProcessSample,
    Targets,
    UnknownFaultKind,
    choose_kinds,
    parse_process_sample,
    percentile,
    rss_trend,
    schedule,
    slope_per_hour,
)

TARGETS = Targets(vms=("vm1", "vm2"), sticks=("AAA1", "AAA2"), attachments=("a1", "a2"),
                  crowded_vm="vm2")


def test_the_same_seed_replays_the_same_faults_and_another_seed_does_not() -> None:
    first = list(itertools.islice(schedule(7, TARGETS), 40))
    again = list(itertools.islice(schedule(7, TARGETS), 40))
    other = list(itertools.islice(schedule(8, TARGETS), 40))
    assert first == again
    assert first != other


def test_every_kind_comes_once_in_each_round_with_a_target_where_it_needs_one() -> None:
    faults = list(itertools.islice(schedule(1, TARGETS), 2 * len(FaultKind)))
    for round_ in (faults[:len(FaultKind)], faults[len(FaultKind):]):
        assert sorted(f.kind for f in round_) == sorted(FaultKind)
    for fault in faults:
        if fault.kind is FaultKind.VM_RESTART:
            assert fault.target in TARGETS.vms
        elif fault.kind in (FaultKind.REPLUG, FaultKind.MOVE_PORT):
            assert fault.target in TARGETS.sticks
        elif fault.kind is FaultKind.RECREATE:
            assert fault.target in TARGETS.attachments
        elif fault.kind is FaultKind.FIFTH_DEVICE:
            assert fault.target == "vm2"
        else:
            assert fault.target == ""
        assert 3.0 <= fault.pause_after <= 10.0
    assert [f.index for f in faults] == list(range(len(faults)))


def test_a_run_chooses_its_fault_kinds_by_name() -> None:
    assert choose_kinds() == tuple(FaultKind)
    assert choose_kinds(only=["replug", "api-cut"]) == (FaultKind.API_CUT, FaultKind.REPLUG)
    without = choose_kinds(without=["agent-kill", "leader-kill", "worker-kill"])
    assert set(without) == set(FaultKind) - {FaultKind.AGENT_KILL, FaultKind.LEADER_KILL,
                                             FaultKind.WORKER_KILL}
    assert choose_kinds(only=["replug", "api-cut"], without=["api-cut"]) == (FaultKind.REPLUG,)


def test_an_unknown_fault_kind_is_named_with_the_kinds_there_are() -> None:
    with pytest.raises(UnknownFaultKind) as caught:
        choose_kinds(without=["agent-kil", "replug"])
    assert str(caught.value) == (
        "unknown fault kind agent-kil; the kinds are " + ", ".join(k.value for k in FaultKind))


def test_leaving_every_kind_out_is_refused() -> None:
    with pytest.raises(UnknownFaultKind, match="no fault kind left to inject; the kinds are "
                                               "agent-kill, "):
        choose_kinds(only=["replug"], without=["replug"])


def test_a_schedule_of_chosen_kinds_injects_only_those() -> None:
    kinds = (FaultKind.REPLUG, FaultKind.API_CUT)
    faults = list(itertools.islice(schedule(3, TARGETS, kinds=kinds), 10))
    assert {f.kind for f in faults} == set(kinds)


def test_faults_go_on_past_the_minutes_until_enough_have_recovered() -> None:
    length = Length.of(minutes=3, min_faults=3, per_fault=300)
    assert length.cap_seconds == 180 + 900
    assert length.keep_injecting(elapsed=100, recovered=5)
    assert length.keep_injecting(elapsed=200, recovered=2)
    assert not length.keep_injecting(elapsed=200, recovered=3)
    assert length.shortfall(recovered=3) is None


def test_a_run_that_reaches_the_hard_cap_stops_and_says_it_is_incomplete() -> None:
    length = Length.of(minutes=3, min_faults=3, per_fault=300)
    assert not length.keep_injecting(elapsed=1080, recovered=2)
    assert length.shortfall(recovered=2) == (
        "only 2 of the 3 faults asked for (--min-faults) recovered within the hard cap of "
        "18 minutes")


def test_without_min_faults_the_minutes_alone_decide() -> None:
    length = Length.of(minutes=30, min_faults=0, per_fault=300)
    assert length.keep_injecting(elapsed=1799, recovered=0)
    assert not length.keep_injecting(elapsed=1800, recovered=0)
    assert length.shortfall(recovered=0) is None


def feed(ledger: BlockLedger, *lines: str) -> BlockLedger:
    for line in lines:
        ledger.feed(line)
    return ledger


def test_blocks_read_back_as_written_are_not_corrupt() -> None:
    ledger = feed(BlockLedger(), "T 0 0", "A 0 0", "V 0 0 ok", "C 3 - empty",
                  "T 1 1", "A 1 1", "V 1 1 ok", "C 0 0 ok", "T 0 2", "A 0 2", "C 0 2 ok")
    assert ledger.corrupt == []
    assert (ledger.writes, ledger.verified, ledger.audits) == (3, 2, 3)


def test_an_acknowledged_block_read_back_wrong_or_older_or_empty_is_corrupt() -> None:
    ledger = feed(BlockLedger(), "T 0 0", "A 0 0", "V 0 0 bad")
    assert len(ledger.corrupt) == 1
    ledger = feed(BlockLedger(), "T 0 0", "A 0 0", "T 0 4", "A 0 4", "C 0 0 ok")
    assert ledger.corrupt == ["C 0 0 ok (acknowledged generation 4)"]
    ledger = feed(BlockLedger(), "T 5 5", "A 5 5", "C 5 - empty")
    assert len(ledger.corrupt) == 1


def test_a_write_the_vm_was_not_told_of_may_leave_a_torn_block() -> None:
    ledger = feed(BlockLedger(), "T 0 0", "A 0 0", "T 0 4", "F 0 4 I/O error", "C 0 - bad",
                  "C 0 0 ok", "C 0 4 ok")
    assert ledger.corrupt == []
    feed(ledger, "T 0 8", "A 0 8", "C 0 4 ok")  # acknowledged again: certain again
    assert len(ledger.corrupt) == 1


def test_lines_that_are_not_steps_are_ignored() -> None:
    ledger = feed(BlockLedger(), "N", "", "dd: I/O error", "R 0 1 dd: error", "T x 1")
    assert ledger == BlockLedger()


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert math.isnan(percentile([], 50))


def test_rss_slope_is_per_hour_with_one_window_per_process_and_the_longest_named() -> None:
    assert slope_per_hour([(0.0, 100.0), (1800.0, 101.0), (3600.0, 102.0)]) == 2.0
    assert slope_per_hour([(0.0, 1.0)]) == 0.0
    trend = rss_trend([(0.0, 1, 50.0), (60.0, 1, 51.0), (60.0, 2, 40.0), (3600.0, 2, 40.0)],
                      warmup=0)
    assert trend is not None
    assert [(w.pid, w.start_mib, w.end_mib, w.seconds, w.samples) for w in trend.windows] == [
        (1, 50.0, 51.0, 60.0, 2), (2, 40.0, 40.0, 3540.0, 2)]
    assert trend.windows[0].slope_mib_per_hour == 60.0
    assert (trend.longest.pid, trend.longest.slope_mib_per_hour) == (2, 0.0)
    assert rss_trend([]) is None


def test_a_process_sampled_once_has_a_window_of_no_length() -> None:
    trend = rss_trend([(10.0, 3, 20.0)])
    assert trend is not None
    assert [(w.pid, w.seconds, w.samples, w.slope_mib_per_hour) for w in trend.windows] == [
        (3, 0.0, 1, 0.0)]


def test_a_process_still_starting_up_does_not_count_as_growing() -> None:
    samples = [(0.0, 7, 13.0), (30.0, 7, 40.0), (120.0, 7, 54.0), (1800.0, 7, 54.0),
               (3600.0, 7, 54.0)]
    trend = rss_trend(samples)
    assert trend is not None
    assert (trend.longest.start_mib, trend.longest.slope_mib_per_hour) == (54.0, 0.0)
    assert (trend.longest.seconds, trend.longest.samples) == (3480.0, 3)


def test_a_process_sample_reads_rss_and_threads_from_proc_status_beside_its_fds() -> None:
    status = ("Name:\tpython3\nVmPeak:\t  99999 kB\nVmRSS:\t   54784 kB\nRssAnon:\t 30000 kB\n"
              "Threads:\t3\nSigQ:\t0/7823\n")
    sample = parse_process_sample(status, fds=17)
    assert sample == ProcessSample(rss_mib=53.5, threads=3, fds=17)
    assert sample.describe() == "53.5 MiB, 17 fds, 3 threads"
    unlisted = parse_process_sample("VmRSS:\t1024 kB\n", fds=None)
    assert unlisted == ProcessSample(rss_mib=1.0, threads=None, fds=None)
    assert unlisted.describe() == "1.0 MiB"
    assert parse_process_sample("Name:\tkthreadd\nThreads:\t1\n", fds=0) is None  # gone, kernel
    assert parse_process_sample("", fds=None) is None
