import json
import subprocess
import sys

import pytest

from conftest import REPO


def run_cli(*args, storage=None):
    cmd = [sys.executable, "-m", "alignui", *args] + (["--storage", str(storage)] if storage else [])
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_help_lists_every_contract_command():
    out = run_cli("--help")
    assert out.returncode == 0
    for name in ("serve", "import", "export", "train", "stats"):
        assert name in out.stdout


def test_bad_arguments_exit_non_zero_with_usage():
    out = run_cli("train", "ppo")
    assert out.returncode != 0 and "invalid choice" in out.stderr


def test_summary_is_json_on_the_last_line(monkeypatch, capsys):
    from alignui.cli import main as cli

    parser = cli.build_parser()
    args = parser.parse_args(["stats"])
    args.handler = lambda a: {"ok": True, "n": 1}
    monkeypatch.setattr(cli, "build_parser", lambda: _Fixed(parser, args))
    assert cli.main([]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"ok": True, "n": 1}


class _Fixed:
    def __init__(self, parser, args):
        self.parser, self.args = parser, args

    def parse_args(self, argv):
        return self.args


@pytest.mark.parametrize("argv", [["serve", "--port", "0"], ["serve", "--port", "x"]])
def test_serve_with_a_bad_port_is_one_line_error(argv, tmp_path):
    out = run_cli(*argv, storage=None)
    assert out.returncode == 2 and out.stderr.startswith("error: port must be") and out.stdout == ""
