"""scripts/gpu-check.sh on a machine without a GPU: it runs to completion, skips every GPU part, says so, and
writes its one JSON report (on a GPU machine the script itself is the check: run it there directly)."""

import json
import os
import subprocess

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
