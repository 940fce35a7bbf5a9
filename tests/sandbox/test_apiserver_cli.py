"""`kubevirt-usb sandbox apiserver`: options that cannot work are refused before it serves."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from kubevirt_usb.cli import cli


def _apiserver(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["sandbox", "apiserver", "--listen", "127.0.0.1:0", *args])
    return result.exit_code, result.output


def test_a_kubeconfig_path_that_is_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    code, output = _apiserver("--kubeconfig", str(tmp_path))
    assert code == 2
    assert f"Invalid value for '--kubeconfig': File '{tmp_path}' is a directory." in output
    assert list(tmp_path.iterdir()) == []  # no certificates, no half-written kubeconfig


def test_files_that_are_not_text_are_one_line_errors(tmp_path: Path) -> None:
    binary = tmp_path / "binary"
    binary.write_bytes(b"\x00\xff\xfe")
    kubeconfig = tmp_path / "out" / "kubeconfig"
    assert _apiserver("--kubeconfig", str(kubeconfig), "--token-file", str(binary)) == (
        1, f"Error: {binary} is not a text file\n")
    assert _apiserver("--kubeconfig", str(kubeconfig), "--rbac-file", str(binary)) == (
        1, f"Error: cannot read {binary}: it is not a text file\n")
    assert not (tmp_path / "out").exists()
