"""The API emulator fixture `cluster` for this package's tests."""

from tests.kube.emulator import cluster as cluster
