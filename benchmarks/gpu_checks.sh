#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run: the CUDA tests of course_lib, then the GMM and VAE benchmarks
# with course_lib on the GPU (scikit-learn on the CPU beside it). Each step's output goes to a log in OUTDIR.
#
#   benchmarks/gpu_checks.sh [OUTDIR]      # from the repository root; OUTDIR defaults to benchmarks/results
#
# It needs torch with CUDA, NumPy, SciPy, scikit-learn, matplotlib and pytest; course_lib is taken from this
# checkout (PYTHONPATH), so nothing is installed. It exits non-zero when a step fails or runs past its time.
#
# The steps' limits add up to 480 s (80 + 170 + 60 + 170); on an H200 with 16 CPU cores they are expected to
# take about 30, 115, 20 and 115 s (each step prints what it took). Where the time goes:
# * gmm_gpu (n = 100,000, d = 32, K = 16): two repeats of four fresh processes (the dense-product rate,
#   scikit-learn, course_lib float64 and float32) and three for peak memory; scikit-learn's three fits
#   (1, 1 and 5 iterations; 0.8 s an iteration) take most of it. Then, in the same process, course_lib with
#   each cap on its block workspace (--gpu-block-bytes, seconds) and a profile of one iteration (--profile).
# * gmm_gpu_1m (n = 1,000,000, d = 64, K = 64): scikit-learn takes 73 s an iteration there, so it runs one
#   iteration, timed on its own (--sklearn-one-iteration), instead of fits of 2 and 1 iterations (with their
#   final E-steps, some four iterations' work).
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
    local name=$1 limit=$2 start=$SECONDS; shift 2
    echo "== $name (limit $limit s)"
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - start)) s"
    [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
}
step cuda_tests 80 "$py" -m pytest -q -m cuda -p no:cacheprovider \
    $(grep -l 'mark.cuda' tests/test_*.py)
step gmm_gpu 170 "$py" benchmarks/bench_gmm.py --device cuda --repeats 2 \
    --gpu-block-bytes default,uncapped,32M,128M,256M --profile
step vae_gpu 60 "$py" benchmarks/bench_vae.py --device cuda
step gmm_gpu_1m 170 "$py" benchmarks/bench_gmm.py --device cuda --n 1000000 --d 64 --k 64 --iters 1 --large \
    --sklearn-one-iteration
if [ ${#failed[@]} -gt 0 ]; then echo "failed: ${failed[*]}"; exit 1; fi
echo "all GPU checks passed"
