#!/usr/bin/env bash
# The sharded study on a real Slurm: a one-node cluster on this machine (munged, slurmctld and
# slurmd with their configuration, state and logs in a temporary folder, on free ports), the
# tiny study experiments/cluster/tiny-study.json submitted as a 3-task array of the README's job
# file (experiments/cluster/slurm/study-array.sbatch) sharing one output folder, one task
# cancelled with scancel while it holds a cell and resubmitted alone. Passes when every cell is
# done exactly once, no lease is left, and results.csv equals a single-process run's byte for
# byte. Installs Debian's slurm-wlm and munge where missing; stops every daemon it started.
# MEDGRAD_SKIP_SLURM_PROOF=1 skips it (say, on a machine without apt-get and root).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[slurm-proof] $*"; }
fail() { say "FAILED: $*"; exit 1; }
if [ "${MEDGRAD_SKIP_SLURM_PROOF:-}" = 1 ]; then say "skipped (MEDGRAD_SKIP_SLURM_PROOF=1)"; exit 0; fi
start=$(date +%s)
SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
[ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ] || fail "needs root or sudo (slurmd runs jobs as their users)"

# --- packages --------------------------------------------------------------------------------
need=()
for b in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do command -v "${b%%:*}" >/dev/null || need+=("${b##*:}"); done
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || fail "no apt-get: install Slurm (slurmctld, slurmd, client) and munge by hand"
  say "installing slurm-wlm and munge (Debian packages; missing: ${need[*]})"
  # Daemons the packages may start system-wide are left alone: ours use their own socket, key and ports.
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

T=$(mktemp -d /tmp/medgrad-slurm-XXXXXX)
chmod 755 "$T"
export SLURM_CONF="$T/slurm.conf"
jobs_submitted=()
cleanup() {
  local rc=$?
  set +e
  [ -n "${ref_pid:-}" ] && kill "$ref_pid" 2>/dev/null
  for j in "${jobs_submitted[@]}"; do scancel "$j" 2>/dev/null; done
  [ ${#jobs_submitted[@]} -gt 0 ] && for _ in $(seq 50); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
  for p in slurmd slurmctld munged; do
    [ -s "$T/$p.pid" ] || continue
    pid=$(cat "$T/$p.pid"); $SUDO kill "$pid" 2>/dev/null
    for _ in $(seq 50); do $SUDO kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    $SUDO kill -0 "$pid" 2>/dev/null && $SUDO kill -9 "$pid" 2>/dev/null
  done
  if [ $rc -ne 0 ]; then
    for f in "$T"/slurmctld.log "$T"/slurmd.log "$T"/logs/*.log; do [ -f "$f" ] && { echo "--- $f (last lines)"; tail -n 25 "$f"; }; done
  fi
  $SUDO rm -rf "$T"
  say "stopped the daemons it started; removed $T"
}
trap cleanup EXIT
# A signal (a CI timeout, ^C) ends the script through exit, so that the EXIT trap runs too.
trap 'exit 143' TERM; trap 'exit 130' INT; trap 'exit 129' HUP

# --- munge, on its own socket and key --------------------------------------------------------
# munged checks that its key and files belong to the user it runs as (root), and clients need
# the socket's folder readable: the key in a private folder, the socket in an open one.
$SUDO install -d -m 700 "$T/munge-key" && $SUDO install -d -m 755 "$T/munge"
$SUDO dd if=/dev/urandom of="$T/munge-key/munge.key" bs=1024 count=1 status=none && $SUDO chmod 400 "$T/munge-key/munge.key"
SOCK="$T/munge/munge.socket"
$SUDO munged --force --socket="$SOCK" --key-file="$T/munge-key/munge.key" --pid-file="$T/munged.pid" --log-file="$T/munge-key/munged.log" --seed-file="$T/munge-key/munged.seed"
munge -n -S "$SOCK" | unmunge -S "$SOCK" >/dev/null || fail "munged does not answer on $SOCK"

# --- slurm.conf: this host, its CPUs, no cgroups, state in $T --------------------------------
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
HOST=$(hostname -s); CPUS=$(nproc); CTLD_PORT=$(free_port); SLURMD_PORT=$(free_port)
while [ "$SLURMD_PORT" = "$CTLD_PORT" ]; do SLURMD_PORT=$(free_port); done
mkdir -p "$T/state" "$T/spool" "$T/logs"
cat > "$SLURM_CONF" <<EOF
ClusterName=medgradproof
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCK
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
KillWait=10
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=proof Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
$SUDO slurmctld -f "$SLURM_CONF"
$SUDO slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do sinfo -h -o %t 2>/dev/null | grep -qx idle && break; sleep 0.5; done
sinfo -h -o %t | grep -qx idle || fail "the node did not come up idle: $(sinfo 2>&1)"
say "one-node cluster up: $HOST, $CPUS CPUs, slurmctld :$CTLD_PORT, slurmd :$SLURMD_PORT, state in $T ($(( $(date +%s) - start )) s)"

# --- the reference: the same config in one process, while the array runs ---------------------
CONFIG=experiments/cluster/tiny-study.json
JOB=experiments/cluster/slurm/study-array.sbatch
OUT="$T/out"
node bin/medgrad.mjs study --config "$CONFIG" --out "$T/ref" --no-report > "$T/logs/reference.log" 2>&1 &
ref_pid=$!

# --- the array, one task cancelled while it holds a cell, and resubmitted ---------------------
job=$(sbatch --parsable --array=1-3 --output="$T/logs/%A_%a.log" "$JOB" "$CONFIG" "$OUT")
jobs_submitted+=("$job")
say "submitted array job $job (tasks 1-3) writing to $OUT"
# Task 1 (a ResNet-20 unit: training, then its attack cell): cancel it once it has finished a cell
# and holds the next one.
held=""
for _ in $(seq 600); do
  if grep -qs "slurm job ${job}_1\$" "$OUT/cells.log"; then
    held=$(grep -ls "\"slurm job ${job}_1\"" "$OUT"/locks/*.lock 2>/dev/null | head -1 || true)
    [ -n "$held" ] && break
  fi
  sleep 0.2
done
[ -n "$held" ] || fail "task ${job}_1 never held a cell after finishing one"
say "cancelling task ${job}_1 while it holds $(basename "$held" .lock) (finished so far: $(grep -c "${job}_1\$" "$OUT/cells.log"))"
scancel "${job}_1"
for _ in $(seq 150); do squeue -h -j "${job}_1" 2>/dev/null | grep -q . || break; sleep 0.2; done
state1=$(scontrol show job "${job}_1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -1)
[ "$state1" = JobState=CANCELLED ] || fail "task ${job}_1 is $state1 after scancel, not CANCELLED"
{ grep -h "SIGTERM" "$T/logs/${job}_1.log" || true; } | sed 's/^/[slurm-proof]   '"${job}"'_1: /'
job2=$(sbatch --parsable --array=1 --export=ALL,MEDGRAD_SHARD_COUNT=3 --output="$T/logs/%A_%a.log" "$JOB" "$CONFIG" "$OUT")
jobs_submitted+=("$job2")
say "task ${job}_1 $state1; resubmitted as ${job2}_1 (MEDGRAD_SHARD_COUNT=3: shard 1 of 3 again)"
for _ in $(seq 1500); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
[ -z "$(squeue -h)" ] || fail "jobs still queued or running after 5 minutes: $(squeue)"
for t in "${job}_2" "${job}_3" "${job2}_1"; do
  s=$(scontrol show job "$t" | grep -oE 'JobState=[A-Z_]+|ExitCode=[0-9:]+' | head -2 | tr '\n' ' ')
  say "task $t: $s"
  case "$s" in *JobState=COMPLETED*ExitCode=0:0*) ;; *) fail "task $t did not complete cleanly" ;; esac
done
wait "$ref_pid" || fail "the single-process reference run failed: $(tail -5 "$T/logs/reference.log")"
{ grep -h "^shard \|resuming\|taking over\|finished by another\|waiting for" "$T"/logs/"${job2}"_1.log || true; } | sed 's/^/[slurm-proof]   '"${job2}"'_1: /'

# --- the checks ---------------------------------------------------------------------------------
say "final check:"
npx tsx experiments/cluster/check-cells.ts "$CONFIG" "$OUT" > "$T/check-cells.txt" || { sed 's/^/[slurm-proof]   /' "$T/check-cells.txt"; fail "cells not done exactly once"; }
sed 's/^/[slurm-proof]   /' "$T/check-cells.txt"
# scancel's SIGTERM stops a task between cells, never between a cells.log line and its cell file.
! grep -q "never landed" "$T/check-cells.txt" || fail "a finish never landed: work was done twice"
cell=$(basename "$held" .lock)
grep -qF "  $cell: finished 1x (slurm job ${job2}_1)" "$T/check-cells.txt" || fail "$cell, held by the cancelled task, was not finished by its resubmission"
say "$cell, which the cancelled task held, was finished by its resubmission ${job2}_1"
cmp "$OUT/results.csv" "$T/ref/results.csv" || fail "results.csv differs from the single-process run's"
say "results.csv ($(wc -l < "$OUT/results.csv") lines, sha256 $(sha256sum < "$OUT/results.csv" | cut -c1-16)) equals the single-process run's byte for byte"
say "PASS in $(( $(date +%s) - start )) s"
