// `medgrad profile --model` and `medgrad tune` on the study's models, at tiny sizes: the per-op
// table, the op-family shares and the trace cover the workload; the tuner's dry run prints its
// choices and writes nothing.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as E from '../engine/node.js';
import { familyOf, familyShares, profileModel } from '../experiments/cli/profile-model.js';
import { COMMANDS } from '../experiments/cli/commands.js';
import { gpu } from './helpers/setup.js';

const cache = mkdtempSync(join(tmpdir(), 'medgrad-profile-'));
beforeAll(async () => { process.env.MEDGRAD_CACHE_DIR = cache; await gpu(); });
afterAll(() => rmSync(cache, { recursive: true, force: true }));

describe('medgrad profile --model', () => {
  it('profiles a training step: convolutions forward and backward, batch norm, the optimizer', async () => {
    const r = await profileModel({ model: 'resnet8', imageSize: 12, batch: 2, workload: 'train', steps: 1 });
    const ops = new Set(r.rows().map((x) => x.op));
    for (const op of ['conv2d', 'conv2d.dx', 'conv2d.dw', 'batchNorm2d.relu', 'batchNorm2d.relu.sums', 'batchNorm2d.backward', 'adam', 'crossEntropy']) expect(ops, op).toContain(op);
    const shares = familyShares(r);
    expect(shares.reduce((s, f) => s + f.share, 0)).toBeCloseTo(1, 6);
    expect(shares.map((f) => f.family)).toContain('convolution');
    expect(r.chromeTrace().traceEvents.length).toBe(r.events.length);
  });

  it('profiles an attack step (the fused sign step, no optimizer) and inference (no backward)', async () => {
    const attack = new Set((await profileModel({ model: 'resnet8', imageSize: 12, batch: 2, workload: 'attack', steps: 1 })).rows().map((x) => x.op));
    expect(attack).toContain('signStep');
    expect(attack).toContain('conv2d.dx');
    expect(attack.has('adam')).toBe(false);
    const infer = new Set((await profileModel({ model: 'cbr-larget', imageSize: 16, batch: 1, workload: 'eval', steps: 1 })).rows().map((x) => x.op));
    // Inference runs each conv-BN(-ReLU) layer as one folded convolution.
    expect(infer).toContain('convBatchNorm2d');
    expect([...infer].some((op) => op.includes('.dx') || op.includes('backward'))).toBe(false);
  });

  it('names op families by op', () => {
    expect(['conv2d.dw', 'channelSums', 'maxPool2d.backward', 'relu', 'accumulate'].map(familyOf))
      .toEqual(['convolution', 'batch norm', 'pooling', 'elementwise', 'gradient accumulation']);
  });

  it('runs from the command line and rejects a workload without a model', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    expect(await COMMANDS.profile!.run(['--model', 'resnet8', '--image-size', '8', '--batch', '2', '--steps', '1', '--workload', 'eval'])).toBe(0);
    const out = log.mock.calls.flat().join('\n');
    log.mockRestore();
    expect(out).toMatch(/resnet8 eval step at 8 px/);
    expect(out).toMatch(/op family\s+calls/);
    await expect(COMMANDS.profile!.run(['--workload', 'attack'])).rejects.toThrow(/need --model/);
    await expect(COMMANDS.profile!.run(['--model', 'vgg'])).rejects.toThrow(/--model must be one of/);
  });
});

describe('medgrad tune', () => {
  it('measures a model step\'s tunable kernels and, in a dry run, writes no cache', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    expect(await COMMANDS.tune!.run(['--model', 'resnet8', '--image-size', '8', '--batch', '2', '--matmul', '64', '--reps', '1', '--dry-run'])).toBe(0);
    const out = log.mock.calls.flat().join('\n');
    log.mockRestore();
    expect(out).toMatch(/conv2d\.forward\s+cin/);
    expect(out).toMatch(/matmul\s+m64/);
    expect(out).toMatch(/dry run/);
    expect(existsSync(E.tuneCacheFile(E.getDevice().info))).toBe(false);
  });
});
