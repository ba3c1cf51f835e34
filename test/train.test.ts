// Training end to end through the command line: a run killed (SIGKILL) in the middle of an
// epoch and resumed finishes with exactly the results and weights of an uninterrupted run.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
      // Kill the second run with SIGKILL after its first checkpoint, part-way through epoch 2.
      const child = spawn(process.execPath, [BIN, ...ARGS, '--out', cut], { stdio: 'ignore' });
      const started = Date.now();
      while (!existsSync(join(cut, 'checkpoint.json')) && Date.now() - started < 60_000) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300));
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
      const mid = JSON.parse(readFileSync(join(cut, 'checkpoint.json'), 'utf8'));
      expect(mid.state.epoch).toBeLessThan(3);
      const b = run(['train', '--resume', cut]);
      expect(b.status, b.out).toBe(0);
      expect(b.out).toMatch(/resuming .* after epoch [12] of 3/);
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

  it('names a bad option', () => {
    const r = run(['train', '--data', 'generated:chest', '--model', 'resnet7', '--out', '/tmp/x']);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/unknown --model 'resnet7'/);
  });
});
