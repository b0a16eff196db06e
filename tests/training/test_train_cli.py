"""`python -m alignui train dpo` refusals: one `error:` line, a non-zero exit, nothing created."""

import pytest

from alignui.training.synthetic import closer_snapshot
from cli.test_cli import run_cli


@pytest.mark.parametrize("args, fragment", [
    (["--set", "betta=0.2"], "error: unknown setting 'betta' (did you mean 'beta'?)"),
    (["--set", "beta"], "error: --set takes key=value"),
    (["--preset", "nope"], "error: no preset 'nope'"),
    (["--snapshot", "missing"], "error: no snapshot 'missing'"),
    (["--set", "load_in_4bit=true"], "error: pre-flight refused the run: 4-bit loading needs a CUDA GPU"),
    (["--resume"], "error: --resume needs --run-id"),
])
def test_train_refusals_are_one_line_and_leave_nothing_behind(storage, args, fragment):
    closer_snapshot(storage, "s", train_rows=8, test_rows=2)
    out = run_cli("train", "dpo", "--set", "base_model=demo", *args, storage=storage)
    assert out.returncode == 2 and out.stdout == "", out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1].startswith(fragment)
    assert not (storage / "runs").exists() or not any((storage / "runs").iterdir())
    assert not (storage / "alignui.duckdb").exists()
