#!/usr/bin/env bash
# Runs on the lent GPU machine (no Rust there), from the repository root, after
# benches/device_pack.sh packed DIR (default .gpu) here and the device tool carried it:
#   tests    the CUDA tests (kernels, ops, cuda_device, cuda_transfer) and the CPU bf16/AMX ones
#            (cpu_precision, bf16_precision, reference), each with a time cap;
#   gpubench nst-cli bench on the GPU at 512 and 1024 px, f32 and bf16 (TF32), next to PyTorch's
#            anchor by default (TF32 convolutions) and with TF32 off;
#   cpu      the host CPU, 2 threads, 256 and 512 px: nst f32, bf16, bf16 with NST_AMX=0,
#            PyTorch f32 and bf16 autocast;
#   profile  the host CPU, 2 threads: `nst-cli bench --profile` (time per op) at 256 and 512 px,
#            f32 and bf16 (tables in $OUT/profile_*.txt), then the kernel examples
#            packed_gemm_speed (1 thread), conv_speed and gram_speed (2 threads), and a sweep
#            of the Winograd block budget (NST_WINOGRAD_BLOCK_MIB 2–16, default 8) and an
#            A/B of glibc's transparent huge pages (s/it and whole-run wall time);
#   losses   300 Adam iterations f32 vs bf16, on the CPU (256 px) and the GPU (512 px);
#   pictures the default 512-px transfer on the CPU and the GPU, f32 and bf16/auto.
# Usage: bash DIR/device_check.sh [STAGE…]   (default: all six). Output: logs and PNGs in $OUT.
set -uo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/device_check}
mkdir -p "$out"
bin=/tmp/nst-device
mkdir -p "$bin/home"
t0=$(date +%s)
stamp() { echo "== $(($(date +%s) - t0))s $*"; }
stages=" ${*:-tests gpubench cpu profile losses pictures} "
has() { [[ $stages == *" $1 "* ]]; }
tar xJf "$dir/pack.tar.xz" -C "$bin" || exit 1
mv -f "$bin/vgg19.safetensors" "$bin/home/" 2>/dev/null
w=$bin/home/vgg19.safetensors
nv=$(python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))' 2>/dev/null)
export LD_LIBRARY_PATH="$nv:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export NST_HOME=$bin/home
im=(--content assets/chelsea.png --style assets/starry_night.jpg)
ref=$dir/torch_reference.py
strict='import runpy, sys, torch
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")'
lscpu | grep -E "Model name|^CPU family|^Model:"
grep -o -w -E "amx_bf16|amx_tile|avx512_bf16" /proc/cpuinfo | sort -u | tr '\n' ' '
echo
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
if has tests; then
  stamp tests
  for t in kernels:60 ops:60 cuda_device:40:--nocapture cuda_transfer:60 cpu_precision:30 \
    bf16_precision:90:--nocapture reference:60; do
    IFS=: read -r name cap extra <<<"$t"
    echo "### $name" >>"$out/tests.log"
    timeout "$cap" "$bin/$name" $extra >>"$out/tests.log" 2>&1
    echo "$name rc=$? $(grep -E '^test result' "$out/tests.log" | tail -1)"
  done
  grep -E "FAILED|panicked|skipped|relative error" "$out/tests.log" | sort | uniq -c | head -30
fi
if has gpubench; then
  for s in 512 1024; do
    stamp "gpu bench $s"
    for prec in f32 bf16; do
      echo "# nst cuda $prec $s"
      timeout 40 "$bin/nst-cli" bench --device cuda "${im[@]}" --size $s --iterations 20 \
        --precision $prec --weights "$w" 2>&1 | tail -1
    done
    echo "# PyTorch cuda default (TF32 convolutions) $s"
    timeout 40 python3 "$ref" --device cuda --weights "$w" "${im[@]}" --size $s --iterations 20 2>&1 | tail -1
    echo "# PyTorch cuda, TF32 off $s"
    timeout 40 python3 -c "$strict" "$ref" --device cuda --weights "$w" "${im[@]}" --size $s \
      --iterations 20 2>&1 | tail -1
  done
fi
if has cpu; then
  stamp "cpu, 2 threads"
  for s in 256 512; do
    for v in f32: bf16: bf16:NST_AMX=0; do
      IFS=: read -r prec envs <<<"$v"
      echo "# nst $prec $envs $s"
      env $envs timeout 60 "$bin/nst-cli" bench "${im[@]}" --size $s --iterations 5 --threads 2 \
        --precision "$prec" --weights "$w" 2>&1 | tail -1
    done
    for a in off bf16; do
      echo "# PyTorch autocast=$a $s"
      timeout 60 python3 "$ref" --weights "$w" "${im[@]}" --size $s --iterations 5 --threads 2 \
        --autocast $a 2>&1 | tail -1
    done
  done
fi
if has profile; then
  stamp "cpu profile, 2 threads"
  for s in 256 512; do
    for prec in f32 bf16; do
      f=$out/profile_${prec}_$s.txt
      timeout 90 "$bin/nst-cli" bench "${im[@]}" --size $s --iterations 5 --threads 2 \
        --precision $prec --weights "$w" --profile >"$f" 2>&1
      echo "# nst $prec $s --profile (rc $?): $f"
      head -16 "$f"
    done
  done
  stamp "kernel examples"
  RAYON_NUM_THREADS=1 timeout 120 "$bin/packed_gemm_speed" 3 2>&1 | tail -13
  RAYON_NUM_THREADS=2 timeout 120 "$bin/conv_speed" 256 2>&1 | tail -6
  RAYON_NUM_THREADS=2 timeout 60 "$bin/gram_speed" 512 2>&1 | tail -6
  stamp "Winograd block budget (NST_WINOGRAD_BLOCK_MIB), f32, 2 threads"
  for s in 256 512; do
    for mib in 8 2 4 16 8; do
      echo "# nst f32 $s budget $mib MiB: $(NST_WINOGRAD_BLOCK_MIB=$mib timeout 60 \
        "$bin/nst-cli" bench "${im[@]}" --size $s --iterations 5 --threads 2 --weights "$w" \
        2>&1 | tail -1 | grep -o '"sec_per_iter_median":[0-9.]*')"
    done
  done
  # Transparent huge pages through glibc (no code change): on the Zen 5 VM they cut s/it at
  # 512 px by 4-8% but made the first touch of memory so costly that a whole run got slower
  # (benches/README.md, session 13). Whole-run wall time and s/it, with and without.
  stamp "huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1), f32, 2 threads"
  echo "THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
  TIMEFORMAT="wall %R s"
  for s in 256 512; do
    for t in 0 1 0 1; do
      echo "# nst f32 $s hugetlb=$t: $( { time GLIBC_TUNABLES=glibc.malloc.hugetlb=$t timeout 60 \
        "$bin/nst-cli" bench "${im[@]}" --size $s --iterations 5 --threads 2 --weights "$w" \
        2>&1 | tail -1 | grep -o '"sec_per_iter_median":[0-9.]*'; } 2>&1 | tr '\n' ' ')"
    done
  done
fi
if has losses; then
  stamp "300-iteration losses"
  for dev in cpu cuda; do
    s=256
    [ $dev = cuda ] && s=512
    for prec in f32 bf16; do
      echo "# $dev $prec $s px, 300 iterations"
      timeout 60 "$bin/nst-cli" bench --device $dev "${im[@]}" --size $s --iterations 300 \
        --precision $prec --weights "$w" --print-losses 2>>"$out/losses.log" | tail -1
    done
  done
fi
if has pictures; then
  stamp pictures
  TIMEFORMAT="wall %R s"
  for v in cpu:f32 cpu:bf16 cuda:f32 cuda:auto; do
    IFS=: read -r dev prec <<<"$v"
    time timeout 60 "$bin/nst-cli" transfer assets/chelsea.png assets/starry_night.jpg \
      --device $dev --precision $prec -o "$out/pic_${dev}_$prec.png" 2>&1 | tr '\r' '\n' |
      grep -E "wrote|error" | tail -1
  done
fi
stamp done
