"""The redirection engine: the exact physical device, opened by the agent itself and driven with
`libusbredirhost`, streamed to a VMI's usbredir slot.

- `lock`: the node-local exclusive lock on a USB port, taken before the device is touched;
- `checks`: is the device in the port now the bound one (pure);
- `libusb`, `usbredirhost`: ctypes bindings of the distro's C libraries;
- `protocol`, `worker`, `engine`: the per-device worker process that owns the libusb handle and
  the usbredir host, and the agent's side of it;
- `outcome`, `status`: what an attempt ended with, what to do next, and what users read (pure);
- `session`: one attempt, in the required order (lock, check, open, slot, stream).
"""
