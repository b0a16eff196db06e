#!/usr/bin/env bash
# One command for the GPU evidence: every `gpu`-marked test and the GPU bench, one JSON report.
#
#   scripts/gpu-check.sh OUT_DIR            # writes OUT_DIR/gpu-check.json (+ the raw logs beside it)
#
# Made for a machine with one CUDA GPU and no network that has torch, transformers, peft and accelerate:
# what is missing (trl, datasets, bitsandbytes, pytest, ...) is installed from a wheel directory,
# $ALIGNUI_WHEELS (default ./wheels; how to build it: docs/scale.md), with pip --no-index. Without a GPU
# every GPU part is skipped, the report says so, and the script still exits 0 (its own tests run it here).
# Exit status: 0 when nothing that ran failed, 1 otherwise. Each part has its own time limit (8 min in all).
set -uo pipefail

OUT=${1:?usage: scripts/gpu-check.sh OUT_DIR}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WHEELS=${ALIGNUI_WHEELS:-$REPO/wheels}
PY=${PYTHON:-python}
TEST_LIMIT=${GPU_CHECK_TEST_S:-240}
BENCH_LIMIT=${GPU_CHECK_BENCH_S:-240}
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
                  "missing": [m for m in ("trl", "datasets", "bitsandbytes", "pytest", "pytest_timeout", "peft",
                                          "transformers", "accelerate") if importlib.util.find_spec(m) is None]}))
EOF
CUDA=$("$PY" -c "import json,sys; print(int(json.load(open(sys.argv[1]))['cuda']))" "$OUT/machine.json")
MISSING=$("$PY" -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))['missing']))" "$OUT/machine.json")

# -- 2. missing packages from the wheel directory (no index) ---------------------------------------------------
INSTALL=skipped
if [ -n "$MISSING" ]; then
  if [ -d "$WHEELS" ]; then
    say "installing ${MISSING//_/-} from $WHEELS (no index)"
    if "$PY" -m pip install --no-index --find-links "$WHEELS" ${MISSING//_/-} >"$OUT/pip.log" 2>&1; then
      INSTALL=passed; else INSTALL=failed; fi
  else
    say "missing ${MISSING//_/-} and no wheel directory at $WHEELS (see docs/scale.md)"
    INSTALL=failed
  fi
fi

# -- 3. gpu-marked tests and the GPU bench ------------------------------------------------------------------
TESTS=skipped; BENCH=skipped
if [ "$CUDA" = 1 ]; then
  FILES=$(grep -rl "mark.gpu" tests --include='test_*.py' | sort | tr '\n' ' ')
  say "running the gpu-marked tests in: $FILES"
  timeout "$TEST_LIMIT" "$PY" -m pytest -m gpu -p no:cacheprovider --continue-on-collection-errors -q \
      --junitxml "$OUT/gpu-tests.xml" $FILES >"$OUT/gpu-tests.log" 2>&1
  case $? in 0) TESTS=passed ;; 124) TESTS=timeout ;; *) TESTS=failed ;; esac
  say "bench/dpo_overhead.py --gpu"
  timeout "$BENCH_LIMIT" "$PY" bench/dpo_overhead.py --gpu >"$OUT/bench-dpo-overhead.log" 2>&1
  case $? in 0) BENCH=passed ;; 124) BENCH=timeout ;; *) BENCH=failed ;; esac
else
  say "no CUDA GPU visible: every GPU part is skipped (gpu-marked tests, bench/dpo_overhead.py --gpu)"
fi

# -- 4. the one report -----------------------------------------------------------------------------------------
"$PY" - "$OUT" "$STARTED" "$INSTALL" "$TESTS" "$BENCH" <<'EOF'
import json, sys, xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

out, started, install, tests, bench = Path(sys.argv[1]), *sys.argv[2:]
machine = json.loads((out / "machine.json").read_text())
skip = None if machine["cuda"] else "no CUDA GPU visible on this machine"
report = {"started_at": started, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
          "machine": machine, "skipped_reason": skip,
          "parts": {"install": {"status": install, "log": "pip.log" if install != "skipped" else None}}}
part = {"status": tests, "log": "gpu-tests.log", "reason": skip}
if (out / "gpu-tests.xml").is_file():
    suite = ET.parse(out / "gpu-tests.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    part.update({k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")})
    part["cases"] = [{"name": c.get("classname", "") + "::" + c.get("name", ""), "seconds": float(c.get("time", 0)),
                      "outcome": "failed" if c.find("failure") is not None or c.find("error") is not None
                      else "skipped" if c.find("skipped") is not None else "passed"} for c in suite.iter("testcase")]
report["parts"]["gpu_tests"] = part
bench_part = {"status": bench, "log": "bench-dpo-overhead.log", "reason": skip}
log = out / "bench-dpo-overhead.log"
if log.is_file():
    lines = [l for l in log.read_text(errors="replace").splitlines() if l.startswith("{")]
    try:
        bench_part["results"] = json.loads(lines[-1]) if lines else None  # tokens/s, peak memory, ratios per variant
    except json.JSONDecodeError:
        bench_part["results"] = None
report["parts"]["bench_dpo_overhead"] = bench_part
statuses = [p["status"] for p in report["parts"].values()]
report["ok"] = not any(s in ("failed", "timeout") for s in statuses)
report["summary"] = ("all GPU parts skipped: " + skip) if skip else \
    ", ".join(f"{k} {p['status']}" for k, p in report["parts"].items())
(out / "gpu-check.json").write_text(json.dumps(report, indent=2))
print("gpu-check:", report["summary"], "->", out / "gpu-check.json")
sys.exit(0 if report["ok"] else 1)
EOF
