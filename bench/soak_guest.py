"""The chaos soak's workloads inside the VM guests (busybox sh: dd, sha256sum, stty, timeout),
and what their lines say.

A stick's workload writes self-describing blocks ("kvu SERIAL SLOT GEN" repeated) round-robin
into `slots` slots of its stick with O_DIRECT and fsync, reads each back with O_DIRECT (no page
cache) and compares checksums, then audits an older slot; every step is one line, read by
`bench.soak_plan.BlockLedger`. The serial adapter's workload sends a random line to the
adapter's tty and expects it back: the adapter's far end is a loopback plug on the node (QEMU's
pipe chardev on a FIFO, `DeviceSpec.echo`), so what the VM writes to /dev/ttyUSBn comes back
through the agent's stream.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

_FIND = r"""
find_usb() {  # $1: a /sys path under a USB device; prints the USB device's serial
  p=$(readlink -f "$1")
  while [ -n "$p" ] && [ "$p" != /sys ]; do
    [ -f "$p/idVendor" ] && { cat "$p/serial" 2>/dev/null; return 0; }
    p=${p%/*}
  done
  return 1
}
"""

_HEAL = r"""
heal() {  # a write to /dev/X while X was unplugged created a regular file there, which would
  # hide the device node when the device comes back (devtmpfs does not replace files)
  for f in /dev/sd* /dev/ttyUSB*; do [ -f "$f" ] && rm -f "$f"; done
}
"""

BLOCK_SCRIPT = _FIND + _HEAL + r"""
serial=$1; bs=$2; slots=$3; c=$4
w=/tmp/soak-$serial
dev_of() {
  for b in /sys/block/sd*; do
    [ -e "$b/device" ] || continue
    [ "$(find_usb "$b/device")" = "$serial" ] && { echo "${b##*/}"; return 0; }
  done
  return 1
}
blk() { yes "kvu $serial $1 $2" | head -c "$bs"; }
sum() { s=$(sha256sum < "$1"); echo "${s%% *}"; }
while :; do
  heal
  d=$(dev_of) && [ -b /dev/$d ] || { echo N; sleep 1; continue; }
  i=$((c % slots))
  blk $i $c > $w.blk
  want=$(sum $w.blk)
  echo "T $i $c"
  if dd if=$w.blk of=/dev/$d bs=$bs seek=$i count=1 oflag=direct conv=fsync,notrunc \
      2>$w.err && [ -b /dev/$d ]; then
    echo "A $i $c"
    if dd if=/dev/$d of=$w.rd bs=$bs skip=$i count=1 iflag=direct 2>$w.err; then
      [ "$(sum $w.rd)" = "$want" ] && echo "V $i $c ok" || echo "V $i $c bad"
    else
      echo "R $i $c $(tail -n 1 $w.err)"
    fi
  else
    echo "F $i $c $(tail -n 1 $w.err)"
    usleep 500000
  fi
  j=$(( (c * 7 + 3) % slots ))
  if dd if=/dev/$d of=$w.rd bs=$bs skip=$j count=1 iflag=direct 2>$w.err; then
    h=$(head -c 64 $w.rd | head -n 1 | tr -d '\000')
    case "$h" in
      "kvu $serial $j "*)
        g=${h##* }
        [ "$(blk $j $g | sha256sum | cut -d' ' -f1)" = "$(sum $w.rd)" ] \
          && echo "C $j $g ok" || echo "C $j $g bad" ;;
      "") [ -z "$(tr -d '\000' < $w.rd | head -c 1)" ] && echo "C $j - empty" \
          || echo "C $j - bad" ;;
      *) echo "C $j - bad" ;;
    esac
  fi
  c=$((c + 1))
done
"""

SERIAL_SCRIPT = _FIND + _HEAL + r"""
serial=$1; c=$2
tty_of() {
  for t in /sys/bus/usb-serial/devices/ttyUSB*; do
    [ -e "$t" ] || continue
    [ "$(find_usb "$t")" = "$serial" ] && { echo "${t##*/}"; return 0; }
  done
  return 1
}
while :; do
  heal
  t=$(tty_of) && [ -c /dev/$t ] || { echo N; sleep 1; continue; }
  stty -F /dev/$t raw -echo clocal 2>/tmp/soak-stty.err \
    || { echo "E $c stty $t $(tail -n 1 /tmp/soak-stty.err)"; sleep 1; continue; }
  timeout 1 cat /dev/$t > /dev/null 2>&1  # whatever an interrupted round left behind
  p="kvu-serial-$c-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
  timeout 5 head -n 1 /dev/$t > /tmp/soak-serial.in 2>/dev/null &
  r=$!
  usleep 300000
  echo "$p" > /dev/$t 2>/dev/null || echo "E $c write"
  wait $r
  got=$(cat /tmp/soak-serial.in)
  if [ "$got" = "$p" ]; then echo "S $c ok ${#p}"
  elif [ -z "$got" ]; then echo "S $c lost"
  else echo "S $c garbled"; fi
  c=$((c + 1))
done
"""


def block_command(*, serial: str, block_bytes: int, slots: int, start: int) -> str:
    """The guest command running a stick's workload (starting at generation `start`)."""
    return (f"sh -c {shlex.quote(BLOCK_SCRIPT)} soak {shlex.quote(serial)} {block_bytes} "
            f"{slots} {start}")


def serial_command(*, serial: str, start: int) -> str:
    return f"sh -c {shlex.quote(SERIAL_SCRIPT)} soak {shlex.quote(serial)} {start}"


def log_path(serial: str) -> str:
    return f"/tmp/soak-{serial}.log"


def is_progress(line: str) -> bool:
    """A line that proves the workload's I/O works: a verified block or an echoed line."""
    parts = line.split()
    return (len(parts) >= 4 and parts[0] == "V" and parts[3] == "ok") or \
        (len(parts) >= 3 and parts[0] == "S" and parts[2] == "ok")


def is_failed_write(line: str) -> bool:
    return line.startswith("F ")


@dataclass
class SerialTally:
    """The serial adapter's round trips: echoed intact, lost (nothing came back: the device
    was away), garbled (something else came back)."""

    ok: int = 0
    lost: int = 0
    garbled: int = 0
    bytes_echoed: int = 0
    highest: int = -1

    def feed(self, line: str) -> None:
        parts = line.split()
        if len(parts) < 3 or parts[0] != "S" or not parts[1].isdigit():
            return
        self.highest = max(self.highest, int(parts[1]))
        if parts[2] == "ok":
            self.ok += 1
            self.bytes_echoed += int(parts[3]) + 1 if len(parts) > 3 and parts[3].isdigit() \
                else 0
        elif parts[2] == "lost":
            self.lost += 1
        else:
            self.garbled += 1


def complete_lines(text: str) -> tuple[list[str], int]:
    """The complete lines of a log chunk and how many bytes they take (a last line without
    its newline is still being written: read it next time)."""
    end = text.rfind("\n") + 1
    return text[:end].splitlines(), len(text[:end].encode())
