"""The command table: every entry imports, its summary matches, and --help imports none."""

from __future__ import annotations

import subprocess
import sys

from monitor.cli import COMMANDS, main


def test_every_command_loads_and_is_named_as_listed() -> None:
    import click

    context = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(context, name)
        assert command is not None, name
        assert command.name == name


def test_help_lists_every_command_without_importing_them() -> None:
    code = ("import sys; from monitor.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('monitor.cli.')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    for name in COMMANDS:
        assert f"  {name} " in run.stdout
    assert run.stdout.strip().splitlines()[-1] == "[]"
