"""DPO on 2 CPU processes (accelerate launch, DDP over gloo) on the demo model: the effect, and the job envelope.

- from the CLI: `--set num_processes=2` with half the per-device batch (the same effective batch of 8 as the
  one-process cpu-demo run in test_train_dpo.py) writes ONE adapter and reaches the same effect on held-out
  prompts (the polite closer: < 20% of base samples -> > 60% of adapter samples); with the same seed, 2 x 4
  trains the same adapter as 1 x 8 (to float noise);
- from the app's runner: cancel stops every rank at one step with a checkpoint, resume continues from it,
  SIGKILL of one rank marks the job failed within seconds and leaves no rank running, and a last resume
  finishes the run.
"""

import json
import os
import random
import shutil
import signal
import time

import psutil
import pytest

from alignui.team.identity import Identity
from alignui.training.dpo import DPOTrainConfig
from alignui.training.synthetic import closer_snapshot, split_prompts
from conftest import job_runner, wait_for
from training.test_train_dpo import HELD_OUT, closer_rate, run_train

pytestmark = pytest.mark.slow
ADMIN = Identity("ada", "admin")


@pytest.fixture(scope="module")
def trained2(tmp_path_factory, demo_model_dir):
    storage = tmp_path_factory.mktemp("train2") / "storage"
    shutil.copytree(demo_model_dir, storage / "models" / "demo")
    closer_snapshot(storage, "closer", train_rows=400, test_rows=40, held_out=HELD_OUT, seed=0)
    started = time.monotonic()
    out = run_train(storage, "--snapshot", "closer", "--preset", "cpu-demo", "--set", "seed=42", "--set", "beta=0.1",
                    "--set", "num_processes=2", "--set", "per_device_train_batch_size=4")
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"2-process cpu-demo run: {time.monotonic() - started:.0f} s wall, train {summary['train']}")
    return storage, summary


def test_two_processes_write_one_run_and_one_adapter(trained2):
    storage, summary = trained2
    run = storage / "runs" / summary["run"]
    assert summary["status"] == "done" and summary["steps"] == 80 and summary["adapter"] == str(run / "adapter")
    assert (run / "adapter" / "adapter_model.safetensors").is_file()
    assert not list((run / "ranks").rglob("adapter_model.safetensors"))  # rank 1 wrote no adapter
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "done" and status["num_processes"] == 2
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert logged == sorted(set(logged)) and logged[-1] == 80  # rank 0 alone writes metrics
    preflight = json.loads((run / "preflight.json").read_text())
    assert preflight["num_processes"] == 2 and preflight["effective_batch"] == 8 and preflight["engine"] == "DDP"
    log = (run / "log.txt").read_text()
    assert log.count("step 80/80") == 1 and "accelerate.commands.launch --num_processes 2" in log
    assert summary["eval"]["eval_rewards/accuracies"] > 0.8 and summary["params_moved"] > 0.01


def test_two_process_adapter_has_the_one_process_effect(trained2, demo_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    storage, summary = trained2
    _, held = split_prompts(random.Random(0), HELD_OUT)
    prompts = [q for q, _ in held]
    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir)
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir, dtype=torch.float32).eval()
    torch.set_num_threads(1)
    before = closer_rate(base, tokenizer, prompts)
    after = closer_rate(PeftModel.from_pretrained(base, summary["adapter"]).eval(), tokenizer, prompts)
    print(f"2 processes: closer at the end of held-out samples: base {before:.1%} -> adapter {after:.1%}")
    assert before < 0.2 and after > 0.6 and after > 3 * before


def test_two_processes_of_4_train_the_adapter_one_process_of_8_trains(trained2):
    """The same 8 pairs make each optimiser step (accelerate hands rank k every other batch of 4 from the same
    seeded order), so DDP's averaged gradient is the one-process gradient: the adapters agree to float noise."""
    from safetensors.torch import load_file

    storage, _ = trained2
    adapters = []
    for n in (1, 2):
        out = run_train(storage, "--snapshot", "closer", "--preset", "cpu-demo", "--set", "max_steps=10",
                        "--set", "sample_prompts=0", "--set", f"num_processes={n}",
                        "--set", f"per_device_train_batch_size={8 // n}")
        assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        adapters.append(load_file(f"{summary['adapter']}/adapter_model.safetensors"))
    one, two = adapters
    assert one.keys() == two.keys()
    assert max(float((one[k] - two[k]).abs().max()) for k in one) < 1e-5
    assert max(float(one[k].abs().max()) for k in one if "lora_B" in k) > 1e-3  # and training did move them


def rank_processes(supervisor_pid: int) -> dict[int, psutil.Process]:
    """{rank: process} of the ranks under a supervisor (torch's agent starts them in their own sessions)."""
    found = {}
    for p in psutil.Process(supervisor_pid).children(recursive=True):
        try:
            env = p.environ()
        except psutil.Error:
            continue
        if "RANK" in env and "alignui" in " ".join(p.cmdline()):
            found[int(env["RANK"])] = p
    return found


FAST = dict(base_model="demo", device="cpu", cpu_threads=1, learning_rate=3e-4, max_steps=30, save_steps=3,
            save_total_limit=2, per_device_train_batch_size=2, max_length=128, max_prompt_length=64, lora_r=4,
            lora_alpha=8, logging_steps=1, sample_prompts=1, sample_max_new_tokens=8, num_processes=2)


def test_cancel_resume_rank_death_resume_through_the_runner(storage):
    with job_runner(storage, train_rows=120, test_rows=8) as runner:
        run = runner.start("dpo", "closer", DPOTrainConfig.from_mapping(FAST), ADMIN)
        wait_for(lambda: run.read_status().get("step", 0) >= 4, "training on 2 ranks", timeout=600)
        supervisor = run.read_status()["pid"]
        assert sorted(rank_processes(supervisor)) == [0, 1]
        runner.cancel(run.id, ADMIN)
        wait_for(lambda: runner.active_run() is None, "the cancel", timeout=300)
        assert run.state == "cancelled", run.read_status()
        cancelled_at = run.last_checkpoint().name
        assert not psutil.pid_exists(supervisor) or psutil.Process(supervisor).status() == psutil.STATUS_ZOMBIE

        runner.resume(run.id, ADMIN)
        wait_for(lambda: run.read_status().get("step", 0) >= int(cancelled_at.split("-")[1]) + 2, "resumed training",
                 timeout=600)
        supervisor = run.read_status()["pid"]
        ranks = rank_processes(supervisor)
        os.kill(ranks[1].pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: run.state == "failed", "the job to fail after a rank died", timeout=120)
        noticed = time.monotonic() - killed
        wait_for(lambda: runner.active_run() is None, "the supervisor to exit", timeout=60)
        print(f"rank 1 killed: status failed after {noticed:.1f} s; error: {run.read_status()['error'][:200]}")
        assert noticed < 30
        wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in ranks.values()),
                 "every rank to be gone", timeout=15)

        runner.resume(run.id, ADMIN)
        wait_for(lambda: run.state in ("done", "failed"), "the run to finish", timeout=900)
        assert run.state == "done", run.read_status()
        log = run.log_path.read_text()
        assert f"resuming from {cancelled_at}" in log and log.count("stop requested") >= 1
        logged = [m["step"] for m in run.read_metrics() if "loss" in m]
        assert logged == sorted(set(logged)) and logged[-1] == 30 and run.has_adapter


def start_cli(storage, *args):
    import subprocess
    import sys

    from conftest import REPO

    cmd = [sys.executable, "-m", "alignui", "train", "dpo", "--storage", str(storage), *args]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_ctrl_c_cancels_every_rank_and_a_killed_supervisor_takes_its_ranks_along(storage):
    """The CLI's own envelope: Ctrl-C on the command stops both ranks at one step with a checkpoint; SIGKILL of
    the supervisor alone (its ranks live in their own sessions) still ends every rank within seconds."""
    closer_snapshot(storage, "closer", train_rows=120, test_rows=8)
    settings = [f"--set={k}={v}" for k, v in {**FAST, "max_steps": 400}.items()]
    proc = start_cli(storage, "--snapshot", "closer", *settings)
    runs = storage / "runs"
    wait_for(lambda: any(json.loads((r / "status.json").read_text()).get("step", 0) >= 3
                         for r in runs.iterdir() if (r / "status.json").is_file()) if runs.is_dir() else False,
             "training on 2 ranks", timeout=600)
    run = next(runs.iterdir())
    ranks = rank_processes(proc.pid)
    assert sorted(ranks) == [0, 1]
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=120)[0]
    status = json.loads((run / "status.json").read_text())
    assert proc.returncode == 2 and status["state"] == "cancelled" and "checkpoint saved" in status["error"]
    assert f"checkpoint-{status['step']}" in os.listdir(run / "checkpoints"), output[-2000:]
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in ranks.values())

    proc = start_cli(storage, "--run-id", run.name, "--resume")
    wait_for(lambda: json.loads((run / "status.json").read_text()).get("step", 0) > status["step"] + 1,
             "resumed training", timeout=600)
    ranks = rank_processes(proc.pid)
    proc.kill()  # the supervisor alone, as `kill -9 PID` would
    killed = time.monotonic()
    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in ranks.values()),
             "every rank to exit", timeout=30)
    print(f"supervisor SIGKILLed: both ranks gone after {time.monotonic() - killed:.1f} s")
    assert time.monotonic() - killed < 10
    proc.communicate(timeout=10)
