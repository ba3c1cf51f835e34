// The cluster examples cannot go stale: the README's Slurm block is the job file that
// .ci/slurm-proof.sh submits to a real Slurm, and the Kubernetes Indexed Job manifest is parsed
// and its command run, with its environment, once per completion index, on a tiny config
// sharing one folder: every cell once, results.csv equal to a single-process run's.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseStudyConfig } from '../experiments/study/config.js';
import { auditCells } from '../experiments/study/audit.js';
import { resolveShard } from '../experiments/study/shard.js';
import { node, ROOT, SMALL, study } from './helpers/study-run.js';

const SBATCH = 'experiments/cluster/slurm/study-array.sbatch';
const MANIFEST = 'experiments/cluster/k8s/study-indexed-job.yaml';
const dir = mkdtempSync(join(tmpdir(), 'medgrad-cluster-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };

/**
 * The YAML the manifest uses (block maps and lists, "- key: value" items, plain, quoted and
 * JSON-style flow scalars, whole-line comments); anything else is an error, not a guess.
 */
export function parseYaml(text: string): Yaml {
  const lines = text.split('\n').map((l) => l.replace(/\s+$/, '')).filter((l) => l.trim() && !l.trim().startsWith('#'));
  let i = 0;
  const indent = (l: string) => l.length - l.trimStart().length;
  const scalar = (v: string): Yaml => {
    if (/^["[{]/.test(v)) return JSON.parse(v) as Yaml;
    if (/^'.*'$/.test(v)) return v.slice(1, -1);
    if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v);
    if (v === 'true' || v === 'false') return v === 'true';
    if (/[#:]\s|^[&*!|>%@`]/.test(v)) throw new Error(`parseYaml: unsupported value '${v}'`);
    return v;
  };
  const block = (ind: number): Yaml => (lines[i]!.trimStart().startsWith('- ') ? list(ind) : map(ind));
  const value = (rest: string | undefined, ind: number): Yaml => {
    if (rest !== undefined && rest !== '') return scalar(rest);
    if (i < lines.length && indent(lines[i]!) > ind) return block(indent(lines[i]!));
    return null;
  };
  function map(ind: number): Yaml {
    const o: { [key: string]: Yaml } = {};
    while (i < lines.length && indent(lines[i]!) === ind && !lines[i]!.trimStart().startsWith('- ')) {
      const m = /^\s*([A-Za-z0-9_.-]+):(?: (.*))?$/.exec(lines[i]!);
      if (!m) throw new Error(`parseYaml: cannot read line '${lines[i]}'`);
      i++;
      o[m[1]!] = value(m[2]?.trim(), ind);
    }
    return o;
  }
  function list(ind: number): Yaml {
    const a: Yaml[] = [];
    while (i < lines.length && indent(lines[i]!) === ind && lines[i]!.trimStart().startsWith('- ')) {
      const item = lines[i]!.trimStart().slice(2);
      if (/^[A-Za-z0-9_.-]+:( |$)/.test(item)) { lines[i] = ' '.repeat(ind + 2) + item; a.push(map(ind + 2)); } else { i++; a.push(scalar(item)); }
    }
    return a;
  }
  const doc = block(0);
  if (i !== lines.length) throw new Error(`parseYaml: stopped at line '${lines[i]}'`);
  return doc;
}

interface Container { command: string[]; workingDir: string; env: Array<{ name: string; value: string }> }
interface IndexedJob { apiVersion: string; kind: string; spec: { completionMode: string; completions: number; parallelism: number; template: { spec: { restartPolicy: string; containers: Container[] } } } }

describe('cluster examples', () => {
  it('the README shows the Slurm job file the proof submits, byte for byte', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const m = /The Slurm job file, `experiments\/cluster\/slurm\/study-array\.sbatch`[^\n]*\n[^\n]*\n\n```sh\n([\s\S]*?)```\n/.exec(readme);
    expect(m, 'README: the block after "The Slurm job file, `experiments/cluster/slurm/study-array.sbatch`"').not.toBeNull();
    expect(m![1]).toBe(readFileSync(join(ROOT, SBATCH), 'utf8'));
    expect(readFileSync(join(ROOT, '.ci', 'slurm-proof.sh'), 'utf8')).toContain(`JOB=${SBATCH}`);
    expect(readFileSync(join(ROOT, SBATCH), 'utf8')).toMatch(/^exec node bin\/medgrad\.mjs study --config "\$config" --out "\$out" --shard auto --no-report$/m);
    expect(readme).toContain(MANIFEST);
  });

  it('reads the YAML subset it claims and refuses the rest', () => {
    expect(parseYaml('a: 1\nb:\n  - x\n  - c: "y"\n    d: [1, "z"]\n# note\ne: \'q\'\n')).toEqual({ a: 1, b: ['x', { c: 'y', d: [1, 'z'] }], e: 'q' });
    expect(() => parseYaml('a: &anchor 1\n')).toThrow(/unsupported value/);
  });

  it('runs the Kubernetes Indexed Job manifest: each completion index a shard, one folder, every cell once', async () => {
    const job = parseYaml(readFileSync(join(ROOT, MANIFEST), 'utf8')) as unknown as IndexedJob;
    expect([job.apiVersion, job.kind, job.spec.completionMode]).toEqual(['batch/v1', 'Job', 'Indexed']);
    const [c] = job.spec.template.spec.containers;
    const env = Object.fromEntries(c!.env.map((e) => [e.name, String(e.value)]));
    expect(Number(env.MEDGRAD_SHARD_COUNT)).toBe(job.spec.completions);
    expect(job.spec.parallelism).toBe(job.spec.completions);
    expect(c!.command.slice(0, 3)).toEqual(['node', 'bin/medgrad.mjs', 'study']);
    const arg = (flag: string) => c!.command[c!.command.indexOf(flag) + 1]!;
    expect(arg('--shard')).toBe('auto');
    const n = job.spec.completions;
    const shards = Array.from({ length: n }, (_, k) => resolveShard(arg('--shard'), { ...env, JOB_COMPLETION_INDEX: String(k) }));
    expect(shards.map((s) => `${s.index}/${s.count}`)).toEqual(Array.from({ length: n }, (_, k) => `${k + 1}/${n}`));
    // The pods' command with this machine's config and folder in place of the mounted ones.
    const cfg = join(dir, 'small.json'), out = join(dir, 'k8s'), ref = join(dir, 'ref');
    writeFileSync(cfg, JSON.stringify(SMALL));
    const args = c!.command.slice(1).map((a, k, all) => (all[k - 1] === '--config' ? cfg : all[k - 1] === '--out' ? out : a));
    const pods = Array.from({ length: n }, (_, k) => node(args, { ...env, JOB_COMPLETION_INDEX: String(k), HOSTNAME: `medgrad-study-${k}-x7k2p` }).done);
    const single = await study(ref, cfg).done;
    expect(single.code, single.log).toBe(0);
    const done = await Promise.all(pods);
    for (const [k, d] of done.entries()) {
      expect(d.code, d.log).toBe(0);
      expect(d.log).toContain(`shard ${k + 1}/${n} (Kubernetes completion index ${k} of ${n})`);
    }
    expect(auditCells(parseStudyConfig(SMALL), out)).toMatchObject({ missing: [], extra: [], notOnce: [], locks: [] });
    expect(readFileSync(join(out, 'cells.log'), 'utf8')).toMatch(/\tkubernetes pod medgrad-study-0-x7k2p \(index 0\)\n/);
    expect(readFileSync(join(out, 'results.csv'), 'utf8')).toBe(readFileSync(join(ref, 'results.csv'), 'utf8'));
  }, 300_000);
});
