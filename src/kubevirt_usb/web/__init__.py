"""The web UI: devices by node, VMs and their attachments, policies and the audit trail, acting
with the signed-in user's own token (`kubevirt-usb web`)."""
