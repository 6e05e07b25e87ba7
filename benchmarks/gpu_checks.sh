#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run: the CUDA tests of course_lib, then the GMM and VAE benchmarks
# with course_lib on the GPU (scikit-learn on the CPU beside it). Each step's output goes to a log in OUTDIR.
#
#   benchmarks/gpu_checks.sh [OUTDIR]      # from the repository root; OUTDIR defaults to benchmarks/results
#
# It needs torch with CUDA, NumPy, SciPy, scikit-learn, matplotlib and pytest; course_lib is taken from this
# checkout (PYTHONPATH), so nothing is installed. It exits non-zero when a step fails or runs past its time.
set -uo pipefail
out=${1:-benchmarks/results}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
"$py" -c 'import torch, sys; torch.cuda.is_available() or sys.exit("no CUDA GPU is visible to torch")
print("torch", torch.__version__, "on", torch.cuda.get_device_name(), "CUDA", torch.version.cuda)' || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null

failed=()
step() {   # step NAME SECONDS COMMAND...: run it with a time limit, its output also into OUTDIR/NAME.log
    local name=$1 limit=$2; shift 2
    echo "== $name"
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || { failed+=("$name (exit $rc)"); echo "== $name failed with exit $rc"; }
}
step cuda_tests 180 "$py" -m pytest -q -m cuda -p no:cacheprovider \
    $(grep -l 'mark.cuda' tests/test_*.py)
step gmm_gpu 240 "$py" benchmarks/bench_gmm.py --device cuda --repeats 2
step vae_gpu 180 "$py" benchmarks/bench_vae.py --device cuda
step gmm_gpu_1m 400 "$py" benchmarks/bench_gmm.py --device cuda --n 1000000 --d 64 --k 64 --iters 1 --large
if [ ${#failed[@]} -gt 0 ]; then echo "failed: ${failed[*]}"; exit 1; fi
echo "all GPU checks passed"
