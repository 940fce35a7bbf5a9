#!/bin/busybox sh
# /init of the sandbox's QEMU guests (node and VM): busybox only, no udev.
# Kernel command line switches: kvu.host9p (mount the host's root read-only at /host),
# kvu.net (bring up eth0 as 10.0.2.15/24 with gateway 10.0.2.2).
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /run /host
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
# Commands run under `chroot /host` see /host/tmp here: writable, and no dconf/GLib noise.
export HOME=/tmp GSETTINGS_BACKEND=memory
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run

log() { echo "kvu-init: $*" > /dev/console; }
has_arg() { case " $(cat /proc/cmdline) " in *" $1 "*) return 0;; esac; return 1; }

for m in $(cat /etc/kvu-modules); do
  modprobe "$m" || log "modprobe $m failed"
done

ip link set lo up
if has_arg kvu.net; then
  ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 \
    || log "network setup failed"
fi

if has_arg kvu.host9p; then
  if mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 host /host; then
    mkdir -p /hostroot && mount -o bind /host /hostroot  # the host's /tmp, before it is hidden
    mount -t proc proc /host/proc
    mount -t sysfs sysfs /host/sys
    mount -t devtmpfs devtmpfs /host/dev
    mkdir -p /dev/shm /dev/pts
    mount -t tmpfs tmpfs /host/dev/shm
    mount -t tmpfs tmpfs /host/run
    mount -t tmpfs tmpfs /host/tmp
    # kvu.keep=<base64 of paths, one a line>: host directories under /tmp or /run that commands
    # run under `chroot /host` need (a project cloned into /tmp): bound back, read-only.
    keep=$(sed -n 's/.*kvu\.keep=\([^ ]*\).*/\1/p' /proc/cmdline)
    if [ -n "$keep" ]; then
      echo "$keep" | base64 -d | while IFS= read -r path || [ -n "$path" ]; do
        mkdir -p "/host$path" && mount -o bind "/hostroot$path" "/host$path" \
          || log "cannot make $path of the host visible"
      done
    fi
  else
    log "mounting the host root over 9p failed"
  fi
fi

# The command channel: a virtio-serial port named kvu.exec. Requests are lines
# "X <id> <base64 script>" (run) and "K <id>" (kill); each answer is one frame
# "@@KVU BEGIN <id>", the output as base64 lines, "@@KVU END <id> <exit code>".
# A single writer sends finished frames, so concurrent commands never interleave.
find_port() {
  for p in /sys/class/virtio-ports/*; do
    [ -e "$p/name" ] && [ "$(cat "$p/name")" = "$1" ] && { echo "/dev/${p##*/}"; return 0; }
  done
  return 1
}

run_one() {
  d=/run/kvu/$1
  mkdir -p "$d"
  echo "$2" | base64 -d > "$d/cmd"
  setsid sh "$d/cmd" < /dev/null > "$d/out" 2>&1 &
  echo $! > "$d/pid"
  wait $!
  rc=$?
  { echo "@@KVU BEGIN $1"; base64 "$d/out"; echo "@@KVU END $1 $rc"; } > "$d/frame"
  echo "$d" >&4
}

serve() {
  mkdir -p /run/kvu
  mkfifo /run/kvu/frames
  exec 3<> "$1"
  exec 4<> /run/kvu/frames
  ( while read -r d <&4; do cat "$d/frame" >&3; rm -rf "$d"; done ) &
  echo "@@KVU READY" >&3
  while true; do
    if read -r op id arg <&3; then
      case "$op" in
        X) run_one "$id" "$arg" & ;;
        K) [ -f "/run/kvu/$id/pid" ] && kill -9 "-$(cat "/run/kvu/$id/pid")" ;;
      esac
    else
      usleep 200000
    fi
  done
}

i=0
until port=$(find_port kvu.exec); do
  i=$((i + 1))
  [ $i -gt 100 ] && { log "no kvu.exec port"; exec sh; }
  usleep 100000
done
log "ready, command channel on $port"
serve "$port" < /dev/null
