#!/usr/bin/env bash
# Regenerates requirements.lock (`make lock`): every transitive package of requirements-dev.txt pinned,
# resolved from PyPI by uv for the CI platform (CPython 3.11, Linux x86_64, manylinux_2_28).
#
# Left out on purpose: torch's CUDA runtime (nvidia-*, cuda-*, triton). CI and the tests run torch on CPU;
# the CPU build of torch==2.13.0 (2.13.0+cpu, from download.pytorch.org/whl/cpu or a local wheel dir such
# as this machine's /opt/wheels) requires none of them, and `torch==2.13.0` in the lock matches it
# (PEP 440 ignores the +cpu label). Pinned in the lock they would make pip fetch gigabytes of CUDA
# libraries on a CPU machine. Where only PyPI's CUDA build of torch is reachable, pip still installs torch's
# CUDA runtime at the exact versions torch 2.13.0 itself pins.
#
# Existing pins are kept where they still resolve; `make lock LOCK_FLAGS=--upgrade` moves everything to the
# newest versions that requirements-dev.txt allows.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
python -m pip install --quiet "uv==$UV_VERSION"
compile() {
  python -m uv pip compile requirements-dev.txt --quiet --python-version 3.11 \
    --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" "$@"
}
# The CUDA runtime's package names change with torch's version: read them from a full resolution.
cuda=$(compile --no-header --no-annotate ${LOCK_FLAGS:-} | sed -nE 's/^((nvidia-|cuda-|triton)[A-Za-z0-9._-]*)==.*/\1/p')
skip=()
for name in $cuda; do skip+=(--no-emit-package "$name"); done
compile ${LOCK_FLAGS:-} "${skip[@]}" -o requirements.lock
sed -i '2a # Left out on purpose: torch'"'"'s CUDA runtime (nvidia-*, cuda-*, triton); scripts/lock.sh says why.' requirements.lock
if grep -nE '^(nvidia-|cuda-|triton)' requirements.lock; then
  echo "error: requirements.lock pins torch's CUDA runtime (see the lines above); it must not" >&2
  exit 1
fi
echo "requirements.lock: $(grep -cE '^[A-Za-z0-9]' requirements.lock) packages pinned (CUDA runtime left out: ${cuda//$'\n'/ })"
