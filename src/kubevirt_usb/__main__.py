"""`python -m kubevirt_usb`."""

from kubevirt_usb.cli import main

main()
