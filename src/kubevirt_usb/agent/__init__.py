"""The node agent: publishes the node's USB devices as USBDevice objects (scan, hot-plug, identity,
heartbeat), with health and metrics endpoints. `kubevirt-usb agent` runs it."""
