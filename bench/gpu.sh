#!/usr/bin/env bash
# medgrad's GPU benchmark in one command, for a lent GPU machine (issue 14): the core, cnn and
# train suites with the WebGPU peers (bench/run.ts), medgrad again with lavapipe's defaults
# (MEDGRAD_GPU_DEFAULTS=0: the A/B of the GPU-shaped kernels on the same card), the ResNet-20
# step at 224 px, batch 64, and where PyTorch sees a CUDA GPU the same steps in PyTorch
# (bench/peers/torch_resnet.py). Records are JSON files under $OUT; everything within a budget
# of 8 minutes (MEDGRAD_GPU_BUDGET_S, default 470 s), each step skipped when too little is left.
#
# The lent machine (a Python/CUDA image) may lack Node.js and the Vulkan loader and reaches no
# network, so what it lacks travels in .device-carry/ (git-ignored):
#   bash bench/gpu.sh pack      here, with the repo's node_modules: .device-carry/medgrad-gpu.tar.xz
#                               (this machine's node binary, bench/run.ts bundled by esbuild with
#                               the shaders, Dawn's webgpu addon, the Vulkan and glvnd loaders)
#   bash bench/gpu.sh run       there (device tool: carry [".device-carry"], OUT is set)
#   bash bench/gpu.sh dry-run   here: pack if needed, then `run` on this machine's adapter with
#                               tiny sizes and rounds, into bench/out/gpu-dry (checks the carried
#                               bundle, the unpacking and the records, not the speed)
# The study on the lent GPU (issue 15: the presets this machine cannot finish in a sitting):
#   bash bench/gpu.sh pack-data here: the PneumoniaMNIST and dermoscopy files of ../shared/datasets
#                               into .device-carry/datasets (as a user copies data to a cluster)
#   bash bench/gpu.sh study ARGS...   there: `medgrad study ARGS... --out $OUT/study --no-report`
#                               (e.g. --preset evidence), cut at the budget; what came back,
#                               copied into .device-carry/study, resumes in a later call
#   bash bench/gpu.sh study-dry here: pack if needed, then a tiny evidence study on this adapter
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CARRY="$ROOT/.device-carry"
ARCHIVE="$CARRY/medgrad-gpu.tar.xz"
MODE=${1:-run}

die() { echo "bench/gpu.sh: $*" >&2; exit 1; }

pack() {
  command -v node >/dev/null || die "pack needs node"
  [ -d "$ROOT/node_modules/webgpu" ] || die "pack needs the repo's node_modules (npm ci)"
  local stage
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' RETURN
  mkdir -p "$stage/bin" "$stage/lib" "$stage/bundle/bench/peers" "$stage/node_modules/webgpu/dist/linux-x64"
  cp "$(readlink -f "$(command -v node)")" "$stage/bin/node"
  # The bundle reads shaders from ../../shaders and PyTorch's CPU peer from ./peers, relative to itself.
  cp -r "$ROOT/shaders" "$stage/shaders"
  cp "$ROOT/bench/peers/torch_bench.py" "$stage/bundle/bench/peers/"
  local banner="import { createRequire as __medgradRequire } from 'node:module'; const require = __medgradRequire(import.meta.url);"
  # Each bundle sits two folders below the stage, where ../../shaders is the shaders' copy.
  for entry in bench/run:bench/run bench/model-params:bench/model-params bench/tensor-cores:bench/tensor-cores experiments/cli/main:cli/medgrad; do
    (cd "$ROOT" && npx esbuild "${entry%%:*}.ts" --bundle --platform=node --format=esm --target=node20 \
      --external:webgpu --log-level=warning --banner:js="$banner" --outfile="$stage/bundle/${entry#*:}.mjs")
  done
  local wg="$ROOT/node_modules/webgpu"
  cp "$wg/package.json" "$wg/index.js" "$stage/node_modules/webgpu/"
  cp "$wg/dist/linux-x64/dawn.node" "$stage/node_modules/webgpu/dist/linux-x64/"
  # Loaders Dawn needs to reach NVIDIA's Vulkan driver; `run` uses each only where the machine lacks it.
  # (ldconfig's list is read once: a pipe into a reader that stops early fails under pipefail.)
  local have
  have=$(ldconfig -p 2>/dev/null || true)
  for lib in libvulkan.so.1 libGLdispatch.so.0 libGLX.so.0 libGL.so.1 libEGL.so.1 libOpenGL.so.0; do
    local path
    path=$(awk -v l="$lib" '$1 == l && /x86-64/ { print $NF; exit }' <<< "$have")
    if [ -n "$path" ]; then cp -L "$path" "$stage/lib/$lib"; else echo "pack: $lib not found here; not carried"; fi
  done
  {
    echo "commit $(git -C "$ROOT" rev-parse HEAD)$(git -C "$ROOT" diff --quiet HEAD -- engine shaders bench nn experiments || echo ' (with uncommitted changes)')"
    echo "packed $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m)"
    echo "node $("$stage/bin/node" --version)"
  } > "$stage/MANIFEST"
  mkdir -p "$CARRY"
  tar -C "$stage" -cf - . | xz -T2 -6 > "$ARCHIVE.tmp"
  mv "$ARCHIVE.tmp" "$ARCHIVE"
  echo "pack: $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1)); $(head -1 "$stage/MANIFEST")"
}

pack_data() {
  local src="$ROOT/../shared/datasets" dst="$CARRY/datasets"
  [ -d "$src" ] || die "pack-data: no $src"
  rm -rf "$dst"; mkdir -p "$dst"
  cp -r "$src/pneumoniamnist" "$src/dermoscopy_isic_180" "$dst/"
  echo "pack-data: $dst ($(du -sh "$dst" | cut -f1))"
}

# Unpacks the bundle into $home, finds the loaders and the Vulkan driver, sets the environment;
# starts the budget clock (left) and logs to $OUT/gpu-log.txt. Sets node, home, start.
prepare() {
  local dry=${DRY:-0}
  mkdir -p "$OUT"
  exec > >(tee -a "$OUT/gpu-log.txt") 2>&1
  start=$(date +%s)
  budget=${MEDGRAD_GPU_BUDGET_S:-470}
  [ -f "$ARCHIVE" ] || die "no $ARCHIVE: run 'bash bench/gpu.sh pack' on a machine with the repo's node_modules, and carry .device-carry"

  # Unpack with Python (always there on this image; xz and tar may not be).
  home=${MEDGRAD_GPU_HOME:-/tmp/medgrad-gpu}
  rm -rf "$home"
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$ARCHIVE" "$home"
  node="$home/bin/node"
  chmod +x "$node"
  cat "$home/MANIFEST"
  mkdir -p "$home/lib-missing"
  local have
  have=$(ldconfig -p 2>/dev/null || true)  # read once: `ldconfig -p | grep -q` fails under pipefail (SIGPIPE)
  for f in "$home"/lib/*; do
    [ -e "$f" ] || continue
    grep -q "^[[:space:]]*$(basename "$f") " <<< "$have" || cp "$f" "$home/lib-missing/"
  done
  if [ -n "$(ls -A "$home/lib-missing")" ]; then
    echo "carried loaders used: $(ls "$home/lib-missing" | tr '\n' ' ')"
    export LD_LIBRARY_PATH="$home/lib-missing${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  if [ "$dry" != 1 ] && [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
    for icd in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/icd.d/nvidia_icd.json; do
      if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"; echo "Vulkan driver: $icd"; break; fi
    done
    [ -n "${VK_DRIVER_FILES:-}" ] || echo "no NVIDIA Vulkan ICD json found; Dawn may fall back to a CPU adapter"
  fi
  export MEDGRAD_CACHE_DIR="$home/cache"  # no tune cache: the table rules decide
  export MEDGRAD_DAWN_UNSAFE_APIS=1       # Dawn's toggle behind which it offers tensor cores
}

left() { echo $((budget - ($(date +%s) - start))); }

run() {
  local dry=${DRY:-0}
  OUT=${OUT:-$ROOT/bench/out/$([ "$dry" = 1 ] && echo gpu-dry || echo gpu)}
  prepare
  # Sizes: the issue's on a GPU; tiny in a dry run (it checks the plumbing, not the speed).
  local time=800 sizes=256,512,1024,2048,4096 quick=() big=(--train-size 224 --train-batch 64) bigname=resnet20 bigsize=224 bigbatch=64 ttime=2 models=()
  if [ "$dry" = 1 ]; then time=40 sizes=64 quick=(--quick) big=(--train-size 32 --train-batch 2) bigsize=32 bigbatch=2 ttime=0.2 models=(--train-models resnet8); fi
  local bench="$home/bundle/bench/run.mjs"

  {
    echo "{"
    echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\", \"dry_run\": $([ "$dry" = 1 ] && echo true || echo false),"
    echo "  \"manifest\": $(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$home/MANIFEST"),"
    echo "  \"node\": \"$("$node" --version)\", \"cpus\": $(nproc),"
    echo "  \"gpu\": $(python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))' < <(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null || echo none)),"
    echo "  \"vulkan_driver\": \"${VK_DRIVER_FILES:-default}\", \"carried_loaders\": \"$(ls "$home/lib-missing" | tr '\n' ' ')\""
    echo "}"
  } > "$OUT/env.json"

  # step NAME SECONDS_NEEDED CAP COMMAND...: runs COMMAND under a timeout, or says why not.
  step() {
    local name=$1 need=$2 cap=$3; shift 3
    local l
    l=$(left)
    if [ "$l" -lt "$need" ]; then echo "== $name: skipped ($l s left, needs about $need)"; return 0; fi
    local t=$(( l - 5 < cap ? l - 5 : cap ))
    echo "== $name (up to $t s)"
    local s0
    s0=$(date +%s)
    timeout --kill-after=5 "$t" "$@" || echo "== $name: exit $? after $(( $(date +%s) - s0 )) s"
    echo "== $name: $(( $(date +%s) - s0 )) s"
  }

  # 0. The tensor-core matmul's correctness against float64 (its emulation where the adapter has
  #    no subgroup matrices), with Dawn's messages if its shader does not compile.
  step tensor-cores 10 60 "$node" "$home/bundle/bench/tensor-cores.mjs" --json "$OUT/tensor-cores.json"
  # Each suite writes its own file, so a step cut off by its timeout loses only its own records.
  # 1. Kernels against the WebGPU peers (and PyTorch on the CPU where it imports).
  step core 40 120 "$node" "$bench" --suite core "${quick[@]}" --time "$time" --matmul-sizes "$sizes" --json "$OUT/bench-core.json"
  step cnn 60 180 "$node" "$bench" --suite cnn "${quick[@]}" --time "$time" --json "$OUT/bench-cnn.json"
  # 2. The issue's training target: ResNet-20 at 224 px, batch 64 (medgrad).
  step train-224 30 90 "$node" "$bench" --suite train "${quick[@]}" --time "$time" "${big[@]}" --train-models "$bigname" --no-peers --json "$OUT/bench-train-big.json"
  # 3. PyTorch CUDA on the same steps (float32 and autocast), where torch sees a GPU.
  if python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    local small=64 smallbatch=32
    [ "$dry" = 1 ] && small=32 smallbatch=8
    local p8 pbig
    p8=$("$node" "$home/bundle/bench/model-params.mjs" resnet8 "$small")
    pbig=$("$node" "$home/bundle/bench/model-params.mjs" "$bigname" "$bigsize")
    echo "{\"runs\": [{\"depth\": 20, \"size\": $bigsize, \"batch\": $bigbatch, \"params\": $pbig}, {\"depth\": 8, \"size\": $small, \"batch\": $smallbatch, \"params\": $p8}], \"time\": $ttime}" > "$home/torch-job.json"
    step torch-cuda 30 90 bash -c "python3 '$ROOT/bench/peers/torch_resnet.py' < '$home/torch-job.json' > '$OUT/torch-resnet.json'"
  else
    echo "== torch-cuda: skipped (no python3 whose torch sees a CUDA GPU)"
    if [ "$dry" = 1 ]; then python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' "$ROOT/bench/peers/torch_resnet.py" && echo "   (dry run: torch_resnet.py parses)"; fi
  fi
  # 4. A/B: medgrad with lavapipe's defaults on the same card (kernels and the 224 px step).
  step ab-lavapipe-defaults 60 150 env MEDGRAD_GPU_DEFAULTS=0 "$node" "$bench" --suite core,cnn,train "${quick[@]}" --time "$time" --matmul-sizes "$sizes" \
    "${big[@]}" --train-models "$bigname" --no-peers --json "$OUT/bench-ab-lavapipe-defaults.json"
  # 5. The study models' steps at 64 px with the ResNet-8 peers.
  step train 45 120 "$node" "$bench" --suite train "${quick[@]}" --time "$time" "${models[@]}" --json "$OUT/bench-train.json"
  echo "done in $(( $(date +%s) - start )) s; records in $OUT:"
  ls -l "$OUT"
}

# The study in the carried bundle, from a folder whose ../shared/datasets are the carried ones
# (where the presets look), into $OUT/study (a study already there resumes). HTML report off:
# tables.md, results.csv and figures/ are written.
study() {
  OUT=${OUT:-$ROOT/bench/out/$([ "${DRY:-0}" = 1 ] && echo gpu-study-dry || echo gpu-study)}
  prepare
  [ -d "$CARRY/datasets" ] || echo "no $CARRY/datasets (bash bench/gpu.sh pack-data): only generated data will load"
  mkdir -p "$home/shared" "$home/work"
  [ -d "$CARRY/datasets" ] && ln -sfn "$CARRY/datasets" "$home/shared/datasets"
  # A study folder carried back from an earlier call (copied into .device-carry/study) resumes.
  if [ -d "$CARRY/study" ] && [ ! -e "$OUT/study" ]; then cp -r "$CARRY/study" "$OUT/study"; echo "resuming the carried study ($(ls "$OUT/study/cells" | wc -l) cells done)"; fi
  echo "== study $* (up to $(( $(left) - 5 )) s)"
  (cd "$home/work" && timeout --kill-after=10 "$(( $(left) - 5 ))" "$node" "$home/bundle/cli/medgrad.mjs" study "$@" --out "$OUT/study" --no-report --cache "$home/cache") \
    || echo "== study: exit $? after $(( $(date +%s) - start )) s (finished cells are kept; the same call resumes)"
  ls "$OUT/study/cells" 2>/dev/null | sed 's/^/   cell /'
}

case "$MODE" in
  pack) pack ;;
  pack-data) pack_data ;;
  run) run ;;
  dry-run)
    [ -f "$ARCHIVE" ] && [ "${REPACK:-0}" != 1 ] || pack
    DRY=1 run ;;
  study) shift; study "$@" ;;
  study-dry)
    [ -f "$ARCHIVE" ] && [ "${REPACK:-0}" != 1 ] || pack
    [ -d "$CARRY/datasets" ] || pack_data
    # The evidence preset cut to a few minutes of lavapipe: the plumbing, not the science.
    cfg=$(mktemp --suffix=.json)
    echo '{"preset": "evidence", "name": "evidence-dry", "seeds": [127], "models": ["resnet8", "cbr-larget"], "train": {"epochs": 1, "bnRecalibration": 64},
      "datasets": [{"name": "pneumoniamnist", "data": "../shared/datasets/pneumoniamnist/pneumoniamnist.npz", "imageSize": 16, "split": "own", "maxTrain": 64, "maxVal": 32, "perClass": 2}],
      "attacks": ["fgsm", {"name": "pgd", "steps": 2}]}' > "$cfg"
    DRY=1 MEDGRAD_GPU_BUDGET_S=${MEDGRAD_GPU_BUDGET_S:-600} study --config "$cfg" ;;
  *) die "usage: bash bench/gpu.sh pack | pack-data | run | dry-run | study ARGS... | study-dry" ;;
esac
