// Tiny studies run as `medgrad study` processes, for the tests of studies sharing a folder.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'medgrad.mjs');

/** Two models, one seed, no adversarial training: 4 cells and a transfer cell, seconds each. */
export const SMALL = {
  name: 'small', models: ['resnet8', 'resnet20'], seeds: [5], adversarial: null,
  datasets: [{ name: 'chest', data: 'generated:chest', imageSize: 12, count: 48, maxTrain: 24, perClass: 2, tableEps: 4 }],
  train: { epochs: 2, batchSize: 12 }, attacks: ['fgsm', { name: 'pgd', steps: 2 }], eps: [0, 4], attackBatch: 4,
};

/** Starts `node args...` in the repository with `env` added; resolves with its exit code and output. */
export function node(args: string[], env: Record<string, string> = {}) {
  const p = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  p.stdout.on('data', (d) => { log += String(d); });
  p.stderr.on('data', (d) => { log += String(d); });
  const done = new Promise<{ code: number | null; log: string }>((r) => p.on('exit', (code, sig) => r({ code: code ?? (sig ? -1 : null), log })));
  return { p, done, log: () => log };
}

/** `medgrad study --config cfg --out out --no-report ...extra`. */
export const study = (out: string, cfg: string, env: Record<string, string> = {}, extra: string[] = []) =>
  node([BIN, 'study', '--config', cfg, '--out', out, '--no-report', ...extra], env);
