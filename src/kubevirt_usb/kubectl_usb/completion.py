"""Shell completion: `kubectl usb completion bash|zsh|fish` prints a script for the `kubectl-usb`
command, and `kubectl_complete-usb` answers kubectl's own plugin completion (kubectl 1.26+ runs
it with the words after `kubectl usb`, the last one being completed, and reads one candidate per
line, then `:<directive>` as Cobra defines it)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

import click
from click.shell_completion import CompletionItem, get_completion_class

NO_FILE_COMPLETION = 4  # Cobra's ShellCompDirectiveNoFileComp
DEFAULT_COMPLETION = 0  # Cobra's ShellCompDirectiveDefault: the shell completes file names


def cobra_lines(items: Iterable[CompletionItem]) -> list[str]:
    """Candidates as kubectl's plugin completion reads them: `value<TAB>help` lines, then the
    directive (file names for path options, none otherwise)."""
    lines, directive = [], NO_FILE_COMPLETION
    for item in items:
        if item.type in ("file", "dir"):
            directive = DEFAULT_COMPLETION
            continue
        lines.append(f"{item.value}\t{item.help}" if item.help else str(item.value))
    return [*lines, f":{directive}"]


def completions(command: click.Command, words: Sequence[str]) -> list[CompletionItem]:
    """What completes the last of `words` after `kubectl usb`."""
    from click.shell_completion import ShellComplete

    from kubevirt_usb.kubectl_usb.cli import COMPLETE_VAR

    args, incomplete = list(words[:-1]), (words[-1] if words else "")
    completer = ShellComplete(command, {}, "kubectl-usb", COMPLETE_VAR)
    return completer.get_completions(args, incomplete)


def main() -> None:
    """`kubectl_complete-usb WORD...`: kubectl's plugin completion."""
    from kubevirt_usb.kubectl_usb.cli import cli

    try:
        lines = cobra_lines(completions(cli, sys.argv[1:]))
    except Exception:  # never break the user's shell
        lines = [f":{NO_FILE_COMPLETION}"]
    sys.stdout.write("\n".join(lines) + "\n")


@click.command(short_help="Print a shell completion script.")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for kubectl-usb.

    \b
    bash:  source <(kubectl-usb completion bash)      (add it to ~/.bashrc)
    zsh:   source <(kubectl-usb completion zsh)       (add it to ~/.zshrc)
    fish:  kubectl-usb completion fish | source
    `kubectl usb <TAB>` itself is completed by kubectl (1.26+) through the kubectl_complete-usb
    program on PATH.
    """
    from kubevirt_usb.kubectl_usb.cli import COMPLETE_VAR, cli

    cls = get_completion_class(shell)
    if cls is None:
        raise click.UsageError(f"no completion for {shell}")
    click.echo(cls(cli, {}, "kubectl-usb", COMPLETE_VAR).source(), nl=False)


if __name__ == "__main__":
    main()
