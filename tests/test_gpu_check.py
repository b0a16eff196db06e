"""scripts/gpu-check.sh on a machine without a GPU: it runs to completion, skips every GPU part, says so, and
writes its one JSON report (on a GPU machine the script itself is the check: run it there directly)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: run scripts/gpu-check.sh itself there")
def test_gpu_check_without_a_gpu_skips_every_gpu_part_and_says_so(tmp_path):
    out = tmp_path / "report"
    done = subprocess.run([str(REPO / "scripts" / "gpu-check.sh"), str(out)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "ALIGNUI_WHEELS": str(tmp_path / "no-wheels")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no CUDA GPU visible: every GPU part is skipped" in done.stdout
    report = json.loads((out / "gpu-check.json").read_text())
    assert report["ok"] is True and report["machine"]["cuda"] is False
    assert report["summary"] == "all GPU parts skipped: no CUDA GPU visible on this machine"
    assert {k: p["status"] for k, p in report["parts"].items()} == {
        "install": "skipped", "install_qlora": "skipped", "gpu_tests": "skipped", "bench_dpo_overhead": "skipped",
        "bench_serving": "skipped"}
    assert report["parts"]["install_qlora"]["reason"] == "no CUDA GPU visible on this machine"
    assert not (out / "gpu-tests.log").exists()  # nothing GPU-bound was started


def test_the_serving_bench_of_the_gpu_check_runs_without_duckdb_or_gradio():
    """The GPU machine has neither (nor gradio_client): bench/concurrent_annotators.py --in-process, which the
    script runs there, must import and run without them (here on the demo model, one pair)."""
    blocked = "import runpy, sys; [sys.modules.__setitem__(m, None) for m in ('duckdb', 'gradio', 'gradio_client')]; "
    run = ("sys.argv = ['concurrent_annotators.py', '--in-process', '--ns', '1', '--pairs-each', '1', '--paths', "
           "'shared', '--json']; runpy.run_path('bench/concurrent_annotators.py', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", blocked + run], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["shared"][0]["pairs"] == 1 and results["shared"][0]["errors"] == 0
