// `npm run bench [-- --json FILE] [--filter REGEX] [--no-peers] [--quick] [--suite core,cnn]`
// Runs every workload for medgrad and its peers on the same adapter in one run, each
// implementation in its own child process (so one library's device cannot slow another's),
// prints a table with ratios and optionally writes the records as JSON.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init } from '../engine/node.js';
import { adapterName, formatTable, timeIt, toUnit, writeJsonAtomic, type BenchRecord, type Workload } from './harness.js';
import { driverFor, IMPLS, type Driver, type Impl } from './drivers.js';
import { coreWorkloads } from './core.js';
import { cnnWorkloads, convShapes, layerWorkloads } from './cnn.js';
import { peerTrainWorkloads, trainWorkloads } from './train.js';
import { attackWorkloads } from './attack.js';
import { parseNumber, parseNumberList, parseOptions, POSITIVE, POSITIVE_INT } from '../experiments/cli/args.js';

function readOptions() {
  const { values } = parseOptions('bench', {
    args: process.argv.slice(2),
    options: {
      json: { type: 'string' },
      filter: { type: 'string' },
      'no-peers': { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      suite: { type: 'string', default: 'core,cnn' },
      time: { type: 'string' },
      impl: { type: 'string' },
      'matmul-sizes': { type: 'string' },
      baseline: { type: 'string' },
      rounds: { type: 'string' },
      'train-size': { type: 'string' },
      'train-batch': { type: 'string' },
      'train-models': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const q = values.quick;
  return {
    values,
    matmulSizes: values['matmul-sizes'] ? parseNumberList('bench', 'matmul-sizes', values['matmul-sizes'], POSITIVE_INT) : q ? [128, 256] : [256, 512, 1024],
    sampleMs: values.time ? parseNumber('bench', 'time', values.time, POSITIVE) : q ? 300 : 2000,
    rounds: values.rounds ? parseNumber('bench', 'rounds', values.rounds, POSITIVE_INT) : 1,
    train: {
      size: values['train-size'] ? parseNumber('bench', 'train-size', values['train-size'], POSITIVE_INT) : undefined,
      batch: values['train-batch'] ? parseNumber('bench', 'train-batch', values['train-batch'], POSITIVE_INT) : undefined,
      models: values['train-models'] ? values['train-models'].split(',') : undefined,
    },
  };
}

let options: ReturnType<typeof readOptions>;
try {
  options = readOptions();
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
const { values, matmulSizes, sampleMs, rounds, train } = options;

if (values.help) {
  console.log(`usage: npm run bench -- [--json FILE] [--filter REGEX] [--no-peers] [--quick] [--suite core,cnn,train,attack] [--time MS]
  --json FILE    also write the records as a JSON array of { name, value, unit, impl, adapter }
  --filter RE    only workloads whose name matches RE
  --no-peers     medgrad only (skip TensorFlow.js and jax-js)
  --quick        smaller sizes and shorter sampling (a smoke run)
  --time MS      sampling time per workload (default 2000, quick 300)
  --impl NAME    run one implementation in this process (${IMPLS.join(', ')})
  --matmul-sizes N,N,...  square matmul sizes (default 256,512,1024)
  --baseline DIR another checkout of medgrad (an older revision) run in the same session as
                 'medgrad@<its commit>', so a change is measured before and after in one run
  --rounds R     run medgrad (and the baseline) R times, alternating, keeping each workload's best
  --train-size N, --train-batch N, --train-models a,b
                 the train suite's image size, batch and models (default 64 px, batch 32, all)`);
  process.exit(0);
}

const quick = values.quick;
const SUITES: Record<string, (d: Driver) => Workload[] | Promise<Workload[]>> = {
  core: (d) => coreWorkloads(d, { sizes: matmulSizes, elementwise: quick ? 1 << 20 : 16 << 20 }),
  cnn: (d) => [...cnnWorkloads(d, convShapes(quick), { fwdbwd: true }), ...(d.impl === 'medgrad' ? layerWorkloads(quick) : [])],
  attack: (d) => (d.impl === 'medgrad' ? attackWorkloads(quick) : []),
  train: (d) => (d.impl === 'medgrad' ? trainWorkloads(quick, train) : peerTrainWorkloads(d.impl, quick, train)),
};

/**
 * The environment PyTorch runs in, as its CPU performance guidance has it: glibc's mmap threshold
 * at its 64-bit maximum and trimming off in practice (large tensors are reused from the heap
 * instead of being mapped, zeroed and unmapped each time), and no OPENBLAS_CORETYPE override (it
 * pins OpenBLAS to one kernel family; medgrad's own processes never need it).
 */
function torchEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, MALLOC_MMAP_THRESHOLD_: String(32 << 20), MALLOC_TRIM_THRESHOLD_: String(2 ** 32) };
  delete env.OPENBLAS_CORETYPE;
  return env;
}

/** PyTorch on the CPU (bench/peers/torch_bench.py), where python3 can import torch. */
function runTorch(filter: RegExp | null): BenchRecord[] {
  // The first interpreter that imports torch: $MEDGRAD_PYTHON, python3 on PATH, the system's.
  const python = [process.env.MEDGRAD_PYTHON, 'python3', '/usr/bin/python3']
    .find((p) => p && spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
  if (!python) { console.log('  pytorch-cpu: skipped (no python3 that imports torch; Debian package python3-torch)'); return []; }
  const suites = values.suite.split(',');
  const job = {
    matmul: suites.includes('core') ? matmulSizes : [],
    conv: suites.includes('cnn') ? convShapes(quick) : [],
    time: sampleMs / 1000,
  };
  const script = fileURLToPath(new URL('./peers/torch_bench.py', import.meta.url));
  const r = spawnSync(python, [script], { input: JSON.stringify(job), encoding: 'utf8', maxBuffer: 1 << 24, env: torchEnv() });
  if (r.status !== 0) throw new Error(`bench: pytorch-cpu failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { config: { torch: string; threads: number; blas: string[] }; records: Array<Omit<BenchRecord, 'impl' | 'adapter'>> };
  const c = out.config;
  const cpu = `${c.torch}, ${c.threads} threads, BLAS ${c.blas.map((b) => b.replace(/^.*\//, '')).join('+') || 'none loaded'}, on CPU`;
  const records = out.records
    .filter((x) => !filter || filter.test(x.name))
    .map((x) => ({ ...x, impl: 'pytorch-cpu', adapter: `PyTorch ${cpu}` }));
  console.log(`  pytorch-cpu: ${cpu}`);
  for (const rec of records) console.log(`  ${rec.impl} ${rec.name}: ${rec.value.toFixed(3)} ${rec.unit}`);
  return records;
}

async function runImpl(impl: Impl): Promise<BenchRecord[]> {
  if (impl === 'pytorch-cpu') return runTorch(values.filter ? new RegExp(values.filter) : null);
  await init();
  const adapter = adapterName();
  const d = await driverFor(impl as Exclude<Impl, 'pytorch-cpu'>);
  if (!d) return [];
  const filter = values.filter ? new RegExp(values.filter) : null;
  const opts = { time: sampleMs, iterations: quick ? 2 : 5 };
  const records: BenchRecord[] = [];
  for (const s of values.suite.split(',')) {
    const make = SUITES[s];
    if (!make) throw new Error(`bench: unknown suite '${s}' (have ${Object.keys(SUITES).join(', ')})`);
    for (const w of await make(d)) {
      if (filter && !filter.test(w.name)) continue;
      const ms = await timeIt(w, opts);
      const rec = { name: w.name, value: toUnit(w, ms), unit: w.unit, impl: w.impl, adapter };
      console.log(`  ${rec.impl} ${rec.name}: ${rec.value.toFixed(3)} ${rec.unit}`);
      records.push(rec);
    }
  }
  return records;
}

if (values.impl) {
  if (!IMPLS.includes(values.impl as Impl)) throw new Error(`bench: unknown --impl '${values.impl}' (have ${IMPLS.join(', ')})`);
  const records = await runImpl(values.impl as Impl);
  if (values.json) writeJsonAtomic(values.json, records);
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'medgrad-bench-'));
const records: BenchRecord[] = [];
const self = fileURLToPath(import.meta.url);
const passOn = process.argv.slice(2).filter((a, i, all) => !['--json', '--baseline', '--rounds'].includes(a) && !['--json', '--baseline', '--rounds'].includes(all[i - 1]!));

/** Runs one implementation in a child process (from `root`, another checkout, when given). */
function child(impl: Impl, root: string | null, label: string): BenchRecord[] {
  console.log(`${label}:`);
  const file = join(dir, `${label.replace(/[^\w.-]/g, '_')}.json`);
  const script = root ? join(root, 'bench', 'run.ts') : self;
  // From TypeScript through tsx; a bundle (bench/gpu.sh's, on a machine without tsx) runs as is.
  const loader = script.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const r = spawnSync(process.execPath, [...loader, script, ...passOn, '--impl', impl, '--json', file], { cwd: root ?? undefined, stdio: ['ignore', 'inherit', 'pipe'] });
  const err = r.stderr.toString().trim();
  if (r.status !== 0) { console.warn(`bench: ${label} failed (exit ${r.status}):\n${err}`); return []; }
  if (err) console.warn(err);
  return (JSON.parse(readFileSync(file, 'utf8')) as BenchRecord[]).map((x) => ({ ...x, impl: label }));
}

/** The best of several runs of each workload (highest rate, lowest time). */
function best(runs: BenchRecord[][]): BenchRecord[] {
  const by = new Map<string, BenchRecord>();
  for (const r of runs.flat()) {
    const prev = by.get(r.name);
    const lower = r.unit === 'us/op' || r.unit === 'ms';
    if (!prev || (lower ? r.value < prev.value : r.value > prev.value)) by.set(r.name, r);
  }
  return [...by.values()];
}

const baseline = values.baseline ? { root: values.baseline, label: `medgrad@${spawnSync('git', ['-C', values.baseline, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() || 'baseline'}` } : null;
const mine: BenchRecord[][] = [], theirs: BenchRecord[][] = [];
for (let k = 0; k < rounds; k++) {
  if (baseline) theirs.push(child('medgrad', baseline.root, baseline.label));
  mine.push(child('medgrad', null, 'medgrad'));
}
records.push(...best(mine), ...best(theirs));
// The records so far are kept after each implementation, so a run stopped from outside (bench/gpu.sh's
// time limit) still leaves those that finished.
if (values.json) writeJsonAtomic(values.json, records);
if (!values['no-peers']) {
  for (const impl of IMPLS.filter((i) => i !== 'medgrad')) {
    records.push(...child(impl, null, impl));
    if (values.json) writeJsonAtomic(values.json, records);
  }
}
rmSync(dir, { recursive: true, force: true });
console.log(`\nmedgrad bench on ${records[0]?.adapter ?? 'no adapter'}\n` + formatTable(records));
if (values.json) {
  writeJsonAtomic(values.json, records);
  console.log(`\nwrote ${records.length} records to ${values.json}`);
}
