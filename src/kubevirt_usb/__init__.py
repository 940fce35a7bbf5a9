"""kubevirt-usb: USB devices on Kubernetes nodes, into KubeVirt VMs."""

__version__ = "0.1.0"
