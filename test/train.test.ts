// Training end to end through the command line: a run killed (SIGKILL) in the middle of an
// epoch and resumed finishes with exactly the results and weights of an uninterrupted run.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSafetensors } from '../nn/safetensors.js';

const BIN = join(__dirname, '..', 'bin', 'medgrad.mjs');
const ARGS = ['train', '--data', 'generated:chest', '--count', '160', '--image-size', '12', '--model', 'resnet8', '--small-input',
  '--channels', '1', '--epochs', '3', '--batch-size', '8', '--seed', '5'];

function run(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('medgrad train', () => {
  it('resumes a run killed mid-epoch to identical results', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medgrad-train-'));
    try {
      const full = join(dir, 'full'), cut = join(dir, 'cut');
      const a = run([...ARGS, '--out', full]);
      expect(a.status, a.out).toBe(0);
      // Kill the second run with SIGKILL part-way through epoch 2: once epoch 1's line is out
      // (its checkpoint is committed before it), while epoch 2 has not ended.
      const child = spawn(process.execPath, [BIN, ...ARGS, '--out', cut], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, signal) => r(signal)));
      const started = Date.now();
      while (!/^epoch 1\/3 +loss/m.test(out) && Date.now() - started < 60_000) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
      child.kill('SIGKILL');
      // Killed, not finished; and mid-epoch: epoch 1 committed, epoch 2 never reported.
      expect(await exited).toBe('SIGKILL');
      expect(out).toMatch(/^epoch 1\/3 +loss/m);
      expect(out, 'the kill came after epoch 2 ended; the test needs a longer epoch').not.toMatch(/^epoch 2\/3 +loss/m);
      const mid = JSON.parse(readFileSync(join(cut, 'checkpoint.json'), 'utf8'));
      expect(mid.state.epoch).toBe(1);
      const b = run(['train', '--resume', cut]);
      expect(b.status, b.out).toBe(0);
      expect(b.out).toMatch(/resuming .* after epoch 1 of 3/);
      const ma = JSON.parse(readFileSync(join(full, 'metrics.json'), 'utf8'));
      const mb = JSON.parse(readFileSync(join(cut, 'metrics.json'), 'utf8'));
      const strip = (e: Array<Record<string, number>>) => e.map(({ seconds: _s, imagesPerSecond: _i, ...rest }) => rest);
      expect(strip(mb.epochs)).toEqual(strip(ma.epochs));
      expect(mb.test).toEqual(ma.test);
      expect(readFileSync(join(cut, 'best.safetensors')).equals(readFileSync(join(full, 'best.safetensors')))).toBe(true);
      // A finished folder is not silently overwritten.
      const c = run([...ARGS, '--out', full]);
      expect(c.status).not.toBe(0);
      expect(c.out).toMatch(/already holds a run; use --resume/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--bn-recalibration recomputes only the batch-norm statistics: the same weights, other running statistics', () => {
    const dir = mkdtempSync(join(tmpdir(), 'medgrad-recal-'));
    try {
      const args = [...ARGS.map((a) => (a === '3' ? '1' : a)), '--bn-momentum', '0.99'];
      const a = run([...args, '--out', join(dir, 'a')]);
      const b = run([...args, '--bn-recalibration', '24', '--out', join(dir, 'b')]);
      expect(a.status, a.out).toBe(0);
      expect(b.status, b.out).toBe(0);
      const read = (d: string) => decodeSafetensors(readFileSync(join(dir, d, 'best.safetensors'))).tensors;
      const [ta, tb] = [read('a'), read('b')];
      const names = Object.keys(ta);
      expect(Object.keys(tb)).toEqual(names);
      const bytes = (t: { data: ArrayBufferView }) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      for (const k of names.filter((n) => !n.includes('running'))) expect(bytes(tb[k]!).equals(bytes(ta[k]!)), k).toBe(true);
      const stats = names.filter((n) => n.includes('running_var'));
      expect(stats.length).toBeGreaterThan(0);
      for (const k of stats) expect(bytes(tb[k]!).equals(bytes(ta[k]!)), k).toBe(false);
      expect(JSON.parse(readFileSync(join(dir, 'b', 'checkpoint.json'), 'utf8')).state.config.bnRecalibration).toBe(24);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a bad option', () => {
    const r = run(['train', '--data', 'generated:chest', '--model', 'resnet7', '--out', '/tmp/x']);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/unknown --model 'resnet7'/);
  });

  it('trains adversarially (Madry PGD) from a standard run of the same model', () => {
    const dir = mkdtempSync(join(tmpdir(), 'medgrad-adv-'));
    try {
      const base = ['train', '--data', 'generated:chest', '--count', '96', '--image-size', '12', '--small-input', '--channels', '1', '--batch-size', '16'];
      expect(run([...base, '--model', 'resnet8', '--epochs', '1', '--out', join(dir, 'std')]).status).toBe(0);
      const a = run([...base, '--model', 'resnet8', '--epochs', '3', '--adversarial-from', join(dir, 'std'), '--adv-eps', '4', '--adv-steps', '2', '--out', join(dir, 'adv')]);
      expect(a.status, a.out).toBe(0);
      const m = JSON.parse(readFileSync(join(dir, 'adv', 'metrics.json'), 'utf8'));
      expect(m.config.adversarial).toEqual({ eps: 4 / 255, steps: 2, stepFraction: 0.1 });
      expect(m.config.init).toBe(join(dir, 'std', 'best.safetensors'));
      expect(m.epochs.length).toBeGreaterThanOrEqual(1);
      const bad = run([...base, '--model', 'resnet20', '--adversarial-from', join(dir, 'std'), '--out', join(dir, 'bad')]);
      expect(bad.out).toMatch(/holds a resnet8, not a resnet20/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
