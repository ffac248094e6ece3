"""Write the command reference of docs/USAGE.md from the CLI's own --help texts.

    .venv/bin/python scripts/cli_reference.py          # rewrite the reference in docs/USAGE.md
    .venv/bin/python scripts/cli_reference.py --check  # exit 1 when it differs (tests/test_docs.py runs this)

The help texts are the one source: an option added to a command appears in the reference at the
next run, and a test fails until it does, so the reference cannot drift from the program. The
reference is the part of USAGE.md between the two markers below; the rest is written by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "docs" / "USAGE.md"
BEGIN = "<!-- command reference: written by scripts/cli_reference.py from --help; do not edit -->"
END = "<!-- end of the command reference -->"
WIDTH = 100  # the help texts' line width, fixed so the file does not depend on the terminal


def _help(command: click.Command, path: list[str]) -> str:
    ctx = click.Context(command, info_name=" ".join(path), terminal_width=WIDTH, max_content_width=WIDTH)
    return command.get_help(ctx)


def _walk(command: click.Command, path: list[str]):
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(click.Context(command))):
            yield from _walk(command.get_command(click.Context(command), name), [*path, name])


def reference() -> str:
    from sbsearch.cli import cli

    lines = [BEGIN, "## Command reference", "", "Every command's `--help`, as the program prints it.", ""]
    commands = list(_walk(cli, ["sbsearch"]))
    lines += [f"- [`{' '.join(path)}`](#{'-'.join(path)})" for path, _ in commands[1:]]
    for path, command in commands:
        lines += ["", f'<a id="{"-".join(path)}"></a>', "", f"### `{' '.join(path)}`", "", "```text",
                  _help(command, path).rstrip(), "```"]
    return "\n".join(lines + [END])


def with_reference(current: str) -> str:
    """USAGE.md's text with its reference part written anew (appended when it has none yet)."""
    if BEGIN in current and END in current:
        head, _, rest = current.partition(BEGIN)
        _, _, tail = rest.partition(END)
        return head + reference() + tail
    return current.rstrip("\n") + "\n\n" + reference() + "\n"


def main() -> int:
    current = OUT.read_text(encoding="utf-8") if OUT.exists() else "# Using sbsearch\n"
    text = with_reference(current)
    if "--check" in sys.argv[1:]:
        if text != current:
            print(f"the command reference in {OUT.relative_to(REPO)} is out of date: run "
                  "`.venv/bin/python scripts/cli_reference.py`", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
