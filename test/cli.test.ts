// The command line a newcomer meets: the two npm commands, option errors, and a quiet console.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../experiments/cli/commands.js';
import { describeRule, parseOptions, type NumberRule } from '../experiments/cli/args.js';
import { variantFeatures } from '../engine/kernels/variants.js';
import { deviceDescriptor, RAISED_LIMITS } from '../engine/device/device.js';
import * as E from '../engine/node.js';

const ROOT = new URL('..', import.meta.url);
const read = (f: string) => readFileSync(new URL(f, ROOT), 'utf8');
const NOTICE = /artificially reduced/;

/** Runs Node with tsx in a fresh process, stdout and stderr piped (as under a test runner or `| less`). */
function node(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, MEDGRAD_DEBUG: '', ...env },
  });
}
const nodeModule = (code: string, env: Record<string, string> = {}) => node(['--input-type=module', '-e', code], env);

/** Values that break a rule: not a number, and one just past each bound. */
function badValues(r: NumberRule): string[] {
  const out = ['x'];
  if (r.int) out.push('1.5');
  if (r.min !== undefined) out.push(String(r.min - 1));
  if (r.above !== undefined) out.push(String(r.above));
  if (r.below !== undefined) out.push(String(r.below));
  if (r.oneOf) out.push(String(Math.max(...r.oneOf) + 1));
  return out;
}

// Arguments that let a command reach its numeric options (they are all checked before any I/O).
const CONTEXT: Record<string, string[]> = { train: ['--adversarial-from', 'no-such-run'], report: ['no-such-study'] };

describe('the two commands', () => {
  it('are what the README\'s first screen says, and .ci/run runs the same test command (then the Slurm proof)', () => {
    const readme = read('README.md');
    const firstScreen = readme.slice(0, readme.indexOf('\n## '));
    const block = /```sh\n([\s\S]*?)```/.exec(firstScreen)?.[1] ?? '';
    const commands = block.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
    expect(commands).toEqual(['npm start', 'npm test']);
    expect(firstScreen).toContain('runs/study-quick/report.html');
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.prestart).toBe('bash .ci/setup');
    expect(scripts.start).toBe('node bin/medgrad.mjs study --preset quick');
    expect(scripts.pretest).toBe('bash .ci/setup');
    expect(scripts.test).toBe('vitest run');
    // Then the Slurm proof (test/cluster.test.ts checks its job file against the README).
    expect(read('.ci/run').trim().split('\n').slice(-2)).toEqual(['npm test', 'bash .ci/slurm-proof.sh']);
  });
});

describe('option errors', () => {
  it('read like the rest of the command line', async () => {
    await expect(COMMANDS.train!.run(['--epochs', '-3'])).rejects.toThrow(/^medgrad train: --epochs must be a positive integer, got '-3'$/);
    await expect(COMMANDS.train!.run(['--bn-momentum', '1'])).rejects.toThrow(/^medgrad train: --bn-momentum must be a number in \[0, 1\), got '1'$/);
    await expect(COMMANDS.train!.run(['--channels', '2'])).rejects.toThrow(/^medgrad train: --channels must be 1 or 3, got '2'$/);
    await expect(COMMANDS.train!.run(['--lr=0'])).rejects.toThrow(/^medgrad train: --lr must be a positive number, got '0'$/);
    await expect(COMMANDS.attack!.run(['--seed', '2.5'])).rejects.toThrow(/^medgrad attack: --seed must be an integer, got '2.5'$/);
    await expect(COMMANDS.profile!.run(['--steps', ''])).rejects.toThrow(/^medgrad profile: --steps must be a positive integer, got ''$/);
  });

  it.each(Object.entries(COMMANDS).flatMap(([name, cmd]) => Object.entries(cmd.numberOptions).flatMap(([opt, rule]) =>
    badValues(rule).map((bad) => [name, opt, bad, rule] as const))))('medgrad %s --%s %s', async (name, opt, bad, rule) => {
    const expected = `medgrad ${name}: --${opt} must be ${describeRule(rule)}, got '${bad}'`;
    await expect(COMMANDS[name]!.run([...(CONTEXT[name] ?? []), `--${opt}`, bad])).rejects.toThrow(expected);
  });

  it('lists every numeric option in the command\'s usage', () => {
    for (const [name, cmd] of Object.entries(COMMANDS)) {
      for (const opt of Object.keys(cmd.numberOptions)) expect(cmd.usage, `medgrad ${name} --${opt}`).toContain(`--${opt}`);
    }
  });

  it('covers epsilon lists, the shard and unknown options too', async () => {
    await expect(COMMANDS.attack!.run(['--eps', '1,-2'])).rejects.toThrow(/^medgrad attack: --eps must be non-negative numbers, comma-separated, in 1\/255 units \(k\/255 also works\), got '1,-2'$/);
    await expect(COMMANDS.attack!.run(['--sanity-eps', '8,16'])).rejects.toThrow(/^medgrad attack: --sanity-eps must be a non-negative number in 1\/255 units .*, got '8,16'$/);
    await expect(COMMANDS.attack!.run(['--eps', '300'])).rejects.toThrow(/^medgrad attack: --eps: '300' is more than the whole \[0, 1\] pixel range/);
    await expect(COMMANDS.train!.run(['--adversarial-from', 'x', '--adv-eps', 'big'])).rejects.toThrow(/^medgrad train: --adv-eps must be a non-negative number/);
    await expect(COMMANDS.study!.run(['--shard', '0/3'])).rejects.toThrow(/^medgrad study: --shard must be i\/n with 1 <= i <= n \(e\.g\. 3\/8\), got '0\/3'$/);
    await expect(COMMANDS.train!.run(['--epoch', '3'])).rejects.toThrow(/^medgrad train: unknown option '--epoch'/);
    await expect(COMMANDS.models!.run(['--image-size'])).rejects.toThrow(/^medgrad models: option '--image-size <value>' argument missing/);
  });

  it('read a negative number as an option\'s value, and leave other dashes alone', () => {
    const options = { n: { type: 'string' }, flag: { type: 'boolean' } } as const;
    expect(parseOptions('p', { args: ['--n', '-3', '--flag'], options }).values).toEqual({ n: '-3', flag: true });
    expect(() => parseOptions('p', { args: ['--n', '--flag'], options })).toThrow(/^p: option '--n' argument is ambiguous/);
  });

  it('are the same in the bench', () => {
    const time = node(['bench/run.ts', '--quick', '--time', '-5']);
    expect(time.status).toBe(2);
    expect(time.stderr.trim()).toBe('bench: --time must be a positive number, got \'-5\'');
    const sizes = node(['bench/run.ts', '--matmul-sizes', '64,x']);
    expect(sizes.stderr.trim()).toBe('bench: --matmul-sizes must be positive integers, comma-separated, got \'64,x\'');
  });
});

describe('a quiet console', () => {
  it('requests only the features and limits the engine uses', async () => {
    const adapter = { features: new Set(['timestamp-query', 'shader-f16', 'subgroups']), limits: { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 30, maxDynamicUniformBuffersPerPipelineLayout: 1e6 } };
    expect(deviceDescriptor(adapter as unknown as GPUAdapter)).toEqual({ requiredFeatures: ['timestamp-query'], requiredLimits: { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 30 } });
    // A feature a kernel variant declares is requested too, where the adapter has it.
    expect(deviceDescriptor(adapter as unknown as GPUAdapter, ['subgroups', 'chromium-experimental-subgroup-matrix']).requiredFeatures).toEqual(['timestamp-query', 'subgroups']);
    expect([...RAISED_LIMITS]).toEqual(['maxBufferSize', 'maxStorageBufferBindingSize']);
    const device = await E.init();
    // Only features some variant declares (the subgroup reductions ask for `subgroups`).
    expect(['shader-f16', 'subgroups'].filter((f) => device.features.has(f) && !variantFeatures().includes(f))).toEqual([]);
    expect(device.limits.maxComputeInvocationsPerWorkgroup).toBe(256); // WebGPU's default: not raised
  });

  it('keeps Dawn\'s limit notice off stderr, and shows it with MEDGRAD_DEBUG=1', () => {
    const code = 'import { init } from \'./engine/node.js\'; const d = await init(); console.error(\'after init\'); console.log(d.info.backend);';
    const quiet = nodeModule(code);
    expect(quiet.status, quiet.stderr).toBe(0);
    expect(quiet.stdout).toMatch(/dawn/);
    expect(quiet.stderr).toBe('after init\n'); // nothing else, and stderr works after the adapter is found
    const loud = nodeModule(code, { MEDGRAD_DEBUG: '1' });
    // Dawn prints the notice only where the driver reports more than 16 (lavapipe does); all else is equal.
    expect(loud.stderr.split('\n').filter((l) => !NOTICE.test(l)).join('\n')).toBe(quiet.stderr);
  });

  it('filters only the lines asked for, and restores stderr', () => {
    const r = nodeModule(`import { writeSync } from 'node:fs';
      import { filterNativeStderr } from './engine/device/native-stderr.js';
      const v = filterNativeStderr(() => { writeSync(2, 'drop me\\nkeep me\\n'); return 7; }, /^drop/);
      console.error('then', v);`);
    expect(r.stderr).toBe('keep me\nthen 7\n');
  });

  it('holds for `medgrad info`', () => {
    const r = node(['bin/medgrad.mjs', 'info']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^adapter /);
    expect(r.stderr).toBe('');
  });
});
