#!/usr/bin/env bash
# The GPU measurements of issue 5 that the CPU cannot make, as one prepared run for a lent GPU machine (whose
# commands stop at 10 minutes): first the machine and any cached pretrained VGG19, then, most important first,
# batch throughput at 256 px (target: 3x the images per minute of one by one), the per-step table, longer chunks
# for one image, nst_jax's convolution gradient against JAX's own in a loop, and a probe: batches with TF32 Gram
# products. Each script has its own time limit, so a slow one costs its own table only; every table lands in
# OUTDIR/NAME.txt, and the last lines of each are printed at the end.
#
# Usage, from the repository root: bash benchmarks/gpu_check.sh [OUTDIR [NAME...]]
#   OUTDIR defaults to $OUT, else /tmp/gpu_check. NAMEs pick steps (see the list below); without them the first
#   round runs (batch_tf32 batch_bf16 step_time chunk_size loop_conv). The second
#   round, for a session whose GPU already gave the first: memory compile_time bf16_error (about 330 s at most).
# It runs on a CPU too (as a check of this script), where the limits cut the long tables short.
set -u
# The GPU machine's Python may be python3 only, and nst_jax is not installed there.
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if ! command -v python >/dev/null; then
    mkdir -p /tmp/gpu_check_bin && ln -sf "$(command -v python3)" /tmp/gpu_check_bin/python
    export PATH=/tmp/gpu_check_bin:$PATH
fi
out=${1:-${OUT:-/tmp/gpu_check}}
mkdir -p "$out"
# One persistent compilation cache for all the scripts, outside OUTDIR (its files are large and not results).
export NST_JAX_COMPILATION_CACHE=${NST_JAX_COMPILATION_CACHE:-/tmp/nst_jax_gpu_check_xla}

names=(machine)  # every OUTDIR/NAME.txt, in order, for the summary at the end
step() {  # step NAME SECONDS COMMAND...: run COMMAND under a time limit, its output into OUTDIR/NAME.txt
    local name=$1 limit=$2
    shift 2
    names+=("$name")
    echo "== $name ($*; limit ${limit} s)" | tee "$out/$name.txt"
    local start=$SECONDS
    timeout "$limit" "$@" >>"$out/$name.txt" 2>&1
    echo "== $name: exit $? after $((SECONDS - start)) s" | tee -a "$out/$name.txt"
}

machine() {
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    python -c "import jax; print('jax', jax.__version__, jax.devices())" 2>&1
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1
    for d in ~/.cache/torch/hub/checkpoints ~/.keras/models ~/.cache/huggingface; do
        echo "$d:"
        ls -la "$d" 2>&1
    done
    echo "files named *vgg* with a weights suffix (/usr, /opt, /root, /home):"
    timeout 20 find /usr /opt /root /home \( -iname "*vgg*.pth" -o -iname "*vgg*.h5" -o -iname "*vgg*.safetensors" \
        -o -iname "*vgg*.npz" -o -iname "*vgg*.bin" \) 2>/dev/null | head -20
}

# Every step: its time limit in seconds, then its command (split into words as written).
declare -A steps=(
    [batch_tf32]="150 python benchmarks/batch_throughput.py --steps 20 --jobs 1 16 64 --precision tf32"
    [batch_bf16]="120 python benchmarks/batch_throughput.py --steps 20 --jobs 1 16 64 --precision bfloat16"
    [step_time]="120 python benchmarks/step_time.py --sizes 256 512 --steps 20 --bf16"
    [chunk_size]="60 python benchmarks/chunk_size.py --sizes 256 --chunks 5 20 100 --steps 200 --precision tf32"
    [memory]="150 python benchmarks/memory.py --sizes 2048 4096 --steps 2"
    [compile_time]="120 python benchmarks/compile_time.py --sizes 256 --repeats 3"
)
picked=("${@:2}")
[ ${#picked[@]} -gt 0 ] || picked=(batch_tf32 batch_bf16 step_time chunk_size)
for name in "${picked[@]}"; do  # every name known before anything runs
    [ -n "${steps[$name]:-}" ] || { echo "gpu_check.sh: unknown step '$name' (known: ${!steps[*]})" >&2; exit 2; }
done

machine >"$out/machine.txt" 2>&1
for name in "${picked[@]}"; do
    step "$name" ${steps[$name]}
done

for f in "${names[@]}"; do
    echo
    tail -n 25 "$out/$f.txt"
done
