#!/usr/bin/env bash
# One command for the GPU evidence: every `gpu`-marked test and the GPU bench, one JSON report.
#
#   scripts/gpu-check.sh OUT_DIR            # writes OUT_DIR/gpu-check.json (+ the raw logs beside it)
#
# Made for a machine with one CUDA GPU and no network that has torch, transformers, peft and accelerate:
# what is missing (trl, datasets, liger-kernel, ...) is installed from a wheel directory, $ALIGNUI_WHEELS
# (default ./wheels; how to build it: docs/scale.md), with pip --no-index; pyarrow from its wheels/pyarrow/
# when the machine's is too old, bitsandbytes from the optional wheels/qlora/ (without it the QLoRA runs are
# skipped and the report says so). Without a GPU every GPU part is skipped, the report says so, and the
# script still exits 0 (its own tests run it here).
# Exit status: 0 when nothing that ran failed, 1 otherwise. Each part has its own time limit (10.5 min in all).
set -uo pipefail

OUT=${1:?usage: scripts/gpu-check.sh OUT_DIR}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WHEELS=${ALIGNUI_WHEELS:-$REPO/wheels}
PY=${PYTHON:-python}
TEST_LIMIT=${GPU_CHECK_TEST_S:-180}
BENCH_LIMIT=${GPU_CHECK_BENCH_S:-300}
SERVE_LIMIT=${GPU_CHECK_SERVE_S:-150}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False TOKENIZERS_PARALLELISM=false PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
cd "$REPO" || exit 1
STARTED=$(date -u +%FT%TZ)
say() { echo "gpu-check: $*"; }

# -- 1. what this machine has ------------------------------------------------------------------------------
"$PY" - >"$OUT/machine.json" <<'EOF'
import importlib.util, json
import torch
cuda = torch.cuda.is_available()
print(json.dumps({"cuda": cuda, "gpu": torch.cuda.get_device_name(0) if cuda else None,
                  "gpu_count": torch.cuda.device_count(), "torch": torch.__version__,
                  "missing": [m for m in ("trl", "datasets", "liger_kernel", "pytest", "pytest_timeout", "peft",
                                          "transformers", "accelerate") if importlib.util.find_spec(m) is None],
                  "bitsandbytes": importlib.util.find_spec("bitsandbytes") is not None}))
EOF
CUDA=$("$PY" -c "import json,sys; print(int(json.load(open(sys.argv[1]))['cuda']))" "$OUT/machine.json")
MISSING=$("$PY" -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))['missing']))" "$OUT/machine.json")
BNB=$("$PY" -c "import json,sys; print(int(json.load(open(sys.argv[1]))['bitsandbytes']))" "$OUT/machine.json")

# -- 2. missing packages from the wheel directory (no index) ---------------------------------------------------
INSTALL=skipped
if [ "$CUDA" = 1 ] && [ -n "$MISSING" ]; then  # without a GPU nothing would use them
  if [ -d "$WHEELS" ]; then
    say "installing ${MISSING//_/-} from $WHEELS (no index)"
    LINKS=(--find-links "$WHEELS")
    [ -d "$WHEELS/pyarrow" ] && LINKS+=(--find-links "$WHEELS/pyarrow")  # only used if the machine's is too old
    if "$PY" -m pip install --no-index "${LINKS[@]}" ${MISSING//_/-} >"$OUT/pip.log" 2>&1; then
      INSTALL=passed; else INSTALL=failed; fi
  else
    say "missing ${MISSING//_/-} and no wheel directory at $WHEELS (see docs/scale.md)"
    INSTALL=failed
  fi
fi
# bitsandbytes (43 MB) is an optional wheel set of its own: only the QLoRA runs need it
QLORA=skipped; QLORA_REASON="no CUDA GPU visible on this machine"
if [ "$CUDA" = 1 ] && [ "$BNB" = 1 ]; then
  QLORA=passed; QLORA_REASON="bitsandbytes already installed"
elif [ "$CUDA" = 1 ] && [ -d "$WHEELS/qlora" ]; then
  say "installing bitsandbytes from $WHEELS/qlora (no index)"
  if "$PY" -m pip install --no-index --find-links "$WHEELS/qlora" bitsandbytes >"$OUT/pip-qlora.log" 2>&1; then
    QLORA=passed; QLORA_REASON="installed from $WHEELS/qlora"; else QLORA=failed; QLORA_REASON="see pip-qlora.log"; fi
elif [ "$CUDA" = 1 ]; then
  QLORA_REASON="no bitsandbytes and no $WHEELS/qlora: the QLoRA runs of the bench and tests are skipped"
  say "$QLORA_REASON"
fi

# -- 3. gpu-marked tests and the GPU bench ------------------------------------------------------------------
TESTS=skipped; BENCH=skipped; SERVE=skipped
if [ "$CUDA" = 1 ]; then
  FILES=$(grep -rl "mark.gpu" tests --include='test_*.py' | sort | tr '\n' ' ')
  SELECT=(-m gpu)
  [ "$QLORA" = passed ] || SELECT=(-m gpu -k "not qlora")  # no bitsandbytes: the QLoRA tests are left out (said above)
  say "running the gpu-marked tests in: $FILES"
  timeout "$TEST_LIMIT" "$PY" -m pytest "${SELECT[@]}" -p no:cacheprovider --continue-on-collection-errors -q \
      --junitxml "$OUT/gpu-tests.xml" $FILES >"$OUT/gpu-tests.log" 2>&1
  case $? in 0) TESTS=passed ;; 124) TESTS=timeout ;; *) TESTS=failed ;; esac
  say "bench/dpo_overhead.py --gpu"
  timeout "$BENCH_LIMIT" "$PY" bench/dpo_overhead.py --gpu >"$OUT/bench-dpo-overhead.log" 2>&1
  case $? in 0) BENCH=passed ;; 124) BENCH=timeout ;; *) BENCH=failed ;; esac
  # the issue's "16 annotators >= 8x one" on a 0.5B-class model: the shared decode steps alone (no web server: this
  # machine has no gradio), batched and one at a time side by side
  say "bench/concurrent_annotators.py --in-process --model random-0.5b"
  timeout "$SERVE_LIMIT" "$PY" bench/concurrent_annotators.py --in-process --model random-0.5b --ns 1,16 \
      --pairs-each 1 --paths shared,single --json >"$OUT/bench-serving.log" 2>&1
  case $? in 0) SERVE=passed ;; 124) SERVE=timeout ;; *) SERVE=failed ;; esac
else
  say "no CUDA GPU visible: every GPU part is skipped (gpu-marked tests, bench/dpo_overhead.py --gpu," \
      "bench/concurrent_annotators.py on a 0.5B-class model)"
fi

# -- 4. the one report -----------------------------------------------------------------------------------------
"$PY" - "$OUT" "$STARTED" "$INSTALL" "$TESTS" "$BENCH" "$QLORA" "$QLORA_REASON" "$SERVE" <<'EOF'
import json, sys, xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

out, started, install, tests, bench, qlora, qlora_reason, serve = Path(sys.argv[1]), *sys.argv[2:]
machine = json.loads((out / "machine.json").read_text())
skip = None if machine["cuda"] else "no CUDA GPU visible on this machine"
report = {"started_at": started, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
          "machine": machine, "skipped_reason": skip,
          "parts": {"install": {"status": install, "log": "pip.log" if install != "skipped" else None},
                    "install_qlora": {"status": qlora, "reason": qlora_reason,
                                      "log": "pip-qlora.log" if (out / "pip-qlora.log").is_file() else None}}}
part = {"status": tests, "log": "gpu-tests.log", "reason": skip}
if (out / "gpu-tests.xml").is_file():
    suite = ET.parse(out / "gpu-tests.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    part.update({k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")})
    part["cases"] = [{"name": c.get("classname", "") + "::" + c.get("name", ""), "seconds": float(c.get("time", 0)),
                      "outcome": "failed" if c.find("failure") is not None or c.find("error") is not None
                      else "skipped" if c.find("skipped") is not None else "passed"} for c in suite.iter("testcase")]
report["parts"]["gpu_tests"] = part
def bench_part(status: str, name: str) -> dict:
    """A bench's part: its status, log, and the JSON line it ends with (its results), when it wrote one."""
    part, log = {"status": status, "log": name, "reason": skip}, out / name
    if log.is_file():
        lines = [l for l in log.read_text(errors="replace").splitlines() if l.startswith("{")]
        try:
            part["results"] = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            part["results"] = None
    return part


report["parts"]["bench_dpo_overhead"] = bench_part(bench, "bench-dpo-overhead.log")  # tokens/s, memory, ratios
serving = report["parts"]["bench_serving"] = bench_part(serve, "bench-serving.log")  # pairs/s, first token, per N
rows = serving.get("results") or {}
if rows.get("shared") and rows.get("single"):  # pairs/s(N) / pairs/s(1), and batched / one at a time, per N
    one = rows["shared"][0]["pairs_s"]
    serving["ratios"] = [{"n": b["n"], "x_one": round(b["pairs_s"] / one, 2),
                          "x_one_at_a_time": round(b["pairs_s"] / s["pairs_s"], 2), "ttft_p95_s": b["ttft_p95"]}
                         for b, s in zip(rows["shared"], rows["single"])]
statuses = [p["status"] for p in report["parts"].values()]
report["ok"] = not any(s in ("failed", "timeout") for s in statuses)
report["summary"] = ("all GPU parts skipped: " + skip) if skip else \
    ", ".join(f"{k} {p['status']}" for k, p in report["parts"].items())
(out / "gpu-check.json").write_text(json.dumps(report, indent=2))
print("gpu-check:", report["summary"], "->", out / "gpu-check.json")
sys.exit(0 if report["ok"] else 1)
EOF
