"""A loopback Kubernetes API server that keeps the real semantics kubevirt-usb relies on."""
