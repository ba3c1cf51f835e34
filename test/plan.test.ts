// `medgrad study --plan`: the FLOP count of the models against a hand formula and against the
// profiler's count of a traced forward pass, the plan of a small study (cells, totals, shards),
// and the command's errors.
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../engine/node.js';
import { createModel, MODEL_NAMES } from '../nn/models.js';
import { COMMANDS } from '../experiments/cli/commands.js';
import { parseStudyConfig } from '../experiments/study/config.js';
import { forwardFlops } from '../experiments/study/flops.js';
import { attackPasses, formatPlan, planStudy } from '../experiments/study/plan.js';
import { attackConfig } from '../experiments/attacks/spec.js';
import { describeDataset, loadDataset } from '../experiments/data/load.js';
import { PNG } from 'pngjs';
import { unitSplits } from '../experiments/study/runner.js';

beforeAll(async () => { await E.init(); });

/** The profiler's FLOPs of the convolutions and matmuls of one forward pass of one image. */
async function tracedFlops(model: (typeof MODEL_NAMES)[number], imageSize: number, smallInput: boolean, channels = 3): Promise<number> {
  const m = createModel(model, { imageSize, inChannels: channels, classes: 2, smallInput });
  m.eval();
  const x = E.rand([1, channels, imageSize, imageSize], { generator: new E.Generator(4) });
  const report = await E.profile(() => E.noGrad(() => E.tidy(() => { m.forward(x); })));
  E.dispose(x); m.dispose();
  // Inference runs conv-BN layers as one convolution (convBatchNorm2d); its fold pass declares no FLOPs.
  return report.events.filter((e) => e.op === 'conv2d' || e.op === 'convBatchNorm2d' || e.op === 'matmul').reduce((t, e) => t + (e.flops ?? 0), 0);
}

describe('model FLOPs', () => {
  it('ResNet-8 at 32 px matches the hand count', () => {
    // 2 x out^2 x Cin x Cout x k^2 per convolution: stem 3->16 at 32; stage 1 two 16->16 at 32;
    // stage 2 16->32 (stride 2) + 32->32 at 16 + the 1x1 shortcut; stage 3 likewise at 8; dense 64 -> 2.
    const c = (o: number, i: number, co: number, k: number) => 2 * o * o * i * co * k * k;
    const hand = c(32, 3, 16, 3) + 2 * c(32, 16, 16, 3) + c(16, 16, 32, 3) + c(16, 32, 32, 3) + c(16, 16, 32, 1)
      + c(8, 32, 64, 3) + c(8, 64, 64, 3) + c(8, 32, 64, 1) + 2 * 64 * 2;
    expect(hand).toBe(25_002_240);
    expect(forwardFlops({ model: 'resnet8', imageSize: 32, channels: 3, classes: 2, smallInput: false })).toBe(hand);
  });

  it('CBR-LargeT at 224 px follows the protocol\'s feature maps (218, 102, 44, 15, 1)', () => {
    const c = (o: number, i: number, co: number) => 2 * o * o * i * co * 49;
    const hand = c(218, 3, 32) + c(102, 32, 64) + c(44, 64, 128) + c(15, 128, 256) + c(1, 256, 512) + 2 * 512 * 2;
    expect(forwardFlops({ model: 'cbr-larget', imageSize: 224, channels: 3, classes: 2, smallInput: false })).toBe(hand);
  });

  it.each([
    ...MODEL_NAMES.map((m) => [m, 13, true, 3] as const),
    ...MODEL_NAMES.filter((m) => m !== 'cbr-larget').map((m) => [m, 37, false, 1] as const),
  ])('%s at %i px (small input %s, %i channels) equals the profiler\'s count of a traced forward pass', async (model, size, small, channels) => {
    const traced = await tracedFlops(model, size, small, channels);
    expect(forwardFlops({ model, imageSize: size, channels, classes: 2, smallInput: small })).toBe(traced);
  });

  it('refuses sizes the original architectures cannot take, naming the fix', () => {
    expect(() => forwardFlops({ model: 'cbr-larget', imageSize: 200, channels: 3, classes: 2, smallInput: false })).toThrow(/CBR-LargeT \(valid padding\) needs images of at least 217 px, got 200; use smallInput/);
    expect(() => forwardFlops({ model: 'resnet20', imageSize: 28, channels: 3, classes: 2, smallInput: false })).toThrow(/ResNet-20 with the 8x8 pooling head needs images of at least 32 px/);
  });
});

const TINY = {
  name: 'tiny-plan', models: ['resnet8', 'resnet20'], seeds: [3, 4, 5],
  datasets: [{ name: 'chest', data: 'generated:chest', imageSize: 12, count: 96, maxTrain: 48, perClass: 4, tableEps: 4, adversarial: { eps: 4, steps: 2, stepFraction: 0.5 } }],
  train: { epochs: 2, batchSize: 16 }, adversarial: { models: ['resnet8'], seeds: 1, epochs: 1 },
  attacks: ['fgsm', { name: 'pgd', steps: 3, restarts: 2 }, { name: 'square', steps: 20 }], eps: [0, 4, 16], attackBatch: 5,
};

describe('a data set described without its pixels', () => {
  const same = (a: Awaited<ReturnType<typeof loadDataset>>, b: Awaited<ReturnType<typeof loadDataset>>) => {
    expect(Array.from(a.y)).toEqual(Array.from(b.y));
    expect([a.n, a.classes, a.groups, a.split]).toEqual([b.n, b.classes, b.groups, b.split]);
    expect(a.x).toHaveLength(0);
  };

  it('gives a folder tree\'s labels, patient ids and split as loading it does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medgrad-describe-'));
    const rows = ['path,label,patient_id'];
    for (const split of ['train', 'test']) {
      for (const [k, cls] of ['NORMAL', 'PNEUMONIA'].entries()) {
        mkdirSync(join(dir, split, cls), { recursive: true });
        for (let i = 0; i < 2 + k; i++) {
          const p = new PNG({ width: 5, height: 5 });
          p.data.fill(40 * i + 10 * k);
          writeFileSync(join(dir, split, cls, `${i}.png`), PNG.sync.write(p));
          rows.push(`${split}/${cls}/${i}.png,${cls},P${i % 2}${k}`);
        }
      }
    }
    writeFileSync(join(dir, 'labels.csv'), rows.join('\n'));
    same(await describeDataset(dir, { imageSize: 4 }), await loadDataset(dir, { imageSize: 4, cacheDir: null }));
  });

  it.skipIf(!existsSync('../shared/datasets/pneumoniamnist/pneumoniamnist.npz'))('gives an .npz file\'s labels and split as loading it does (skipped without ../shared)', async () => {
    const f = '../shared/datasets/pneumoniamnist/pneumoniamnist.npz';
    same(await describeDataset(f, { imageSize: 28 }), await loadDataset(f, { imageSize: 28, cacheDir: null }));
  });
});

describe('the plan of a study', () => {
  it('counts every cell, and its totals agree with the cells and the shards', async () => {
    const c = parseStudyConfig(TINY);
    const p = await planStudy(c, { machines: [2, 4], rates: { resnet8: 1e9, resnet20: 2e9 } });
    expect(p.units).toBe(6);
    // 6 units x (train, attack), resnet8 of the first seed adversarially too, one transfer cell per seed.
    expect(p.cells.filter((x) => x.kind === 'train')).toHaveLength(7);
    expect(p.cells.filter((x) => x.kind === 'attack')).toHaveLength(7);
    expect(p.cells.filter((x) => x.kind === 'transfer').map((x) => x.id)).toEqual(['chest.s3.transfer', 'chest.s4.transfer', 'chest.s5.transfer']);
    expect(p.totalFlops).toBeCloseTo(p.cells.reduce((t, x) => t + x.flops, 0), -3);
    const one = p.machines.find((m) => m.count === 1)!.seconds;
    expect(one).toBeCloseTo(p.cells.reduce((t, x) => t + x.seconds, 0), 6);
    for (const m of p.machines) { expect(m.seconds).toBeLessThanOrEqual(one + 1e-9); expect(m.seconds).toBeGreaterThanOrEqual(one / m.count - 1e-9); }

    // The training cells by hand: epochs x (passes per training image x train + val) + test, at ResNet-8's FLOPs.
    const f8 = forwardFlops({ model: 'resnet8', imageSize: 12, channels: 3, classes: 2, smallInput: true });
    const s = unitSplits(await describeDataset('generated:chest', { imageSize: 12, count: 96, seed: 0 }), c.datasets[0]!, 3);
    const train = p.cells.find((x) => x.id === 'chest.resnet8.s3.standard.train')!;
    expect(train.images).toBe(48);
    expect(train.flops).toBe(f8 * (2 * (3 * 48 + s.val.length) + s.test.length));
    expect(train.seconds).toBeCloseTo(train.flops / 1e9, 9);
    // Adversarial: one epoch, each training image also costing 2 attack steps of 2 passes.
    expect(p.cells.find((x) => x.id === 'chest.resnet8.s3.adversarial.train')!.flops).toBe(f8 * (1 * ((3 + 2 * 2) * 48 + s.val.length) + s.test.length));
    // Attack cells: 4 images per class, 2 classes; per eps: FGSM 3, PGD 2 x (2 x 3 + 1), Square 21; the sanity check's PGD 3 x (2 x 20 + 1); clean 1.
    const atk = p.cells.find((x) => x.id === 'chest.resnet8.s3.standard.attack')!;
    expect(atk.images).toBe(8);
    expect(attackPasses(attackConfig('pgd', { steps: 3, restarts: 2 }))).toBe(14);
    expect(atk.flops).toBe(8 * f8 * (1 + 2 * (3 + 14 + 21) + 3 * 41));
    // The lower bound: one run each, Square (cascaded) on no image.
    expect(atk.flopsLow).toBe(8 * f8 * (1 + 2 * (3 + 7) + 41));
    expect(p.totalFlopsLow).toBeLessThan(p.totalFlops);
    const text = formatPlan(p, 'test adapter');
    expect(text).toMatch(/plan of study 'tiny-plan': 6 units, 17 cells/);
    expect(text).toMatch(/chest resnet8 adversarial train\s+1\s+48/);
    expect(text).toMatch(/on 1 machine, .* on 2 machines \(--shard i\/2\), .* on 4 machines/);
  });

  it('times each model on this adapter when no rate is given', async () => {
    const p = await planStudy(parseStudyConfig({ ...TINY, models: ['resnet8'], transfer: false }), { rateSeconds: 0.05, rateBatch: 4 });
    expect(p.rates).toHaveLength(1);
    expect(p.rates[0]).toMatchObject({ model: 'resnet8', imageSize: 12, batch: 4 });
    expect(p.rates[0]!.steps).toBeGreaterThanOrEqual(1);
    expect(p.rates[0]!.flopsPerSecond).toBeGreaterThan(0);
    expect(p.cells.every((x) => x.seconds > 0 && Number.isFinite(x.seconds))).toBe(true);
  });

  it('stops on a missing dataset, naming the path', async () => {
    const c = parseStudyConfig({ ...TINY, datasets: [{ ...TINY.datasets[0], data: '../shared/datasets/no-such-folder' }] });
    await expect(planStudy(c, { rates: { resnet8: 1, resnet20: 1 } })).rejects.toThrow(/'tiny-plan': dataset 'chest' reads \.\.\/shared\/datasets\/no-such-folder \(.*no-such-folder\), which does not exist; this preset reads the real data sets/);
  });
});

describe('medgrad study --plan', () => {
  it('prints the plan of a config with given rates, as a table and as JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medgrad-plan-'));
    const file = join(dir, 'tiny.json');
    writeFileSync(file, JSON.stringify(TINY));
    const lines: string[] = [];
    const log = console.log;
    console.log = (s: string) => { lines.push(s); };
    try {
      expect(await COMMANDS.study!.run(['--config', file, '--plan', '--machines', '2', '--rates', 'resnet8=1,resnet20=2'])).toBe(0);
      expect(await COMMANDS.study!.run(['--config', file, '--plan', '--rates', 'resnet8=1,resnet20=2', '--json'])).toBe(0);
    } finally { console.log = log; }
    expect(lines[0]).toMatch(/plan of study 'tiny-plan': 6 units, 17 cells/);
    expect(lines[0]).toMatch(/resnet8\s+1\.00 GFLOP\/s\s+\(given\)/);
    expect(lines[0]).toMatch(/on 2 machines \(--shard i\/2\)/);
    const json = JSON.parse(lines[1]!) as { cells: unknown[]; rates: Array<{ flopsPerSecond: number }>; machines: unknown[] };
    expect(json.cells).toHaveLength(17);
    expect(json.rates.map((r) => r.flopsPerSecond)).toEqual([1e9, 2e9]);
  });

  it('gives clear errors for bad options', async () => {
    const study = COMMANDS.study!;
    await expect(study.run(['--plan', '--machines', '0'])).rejects.toThrow(/^medgrad study: --machines must be a positive integer, got '0'$/);
    await expect(study.run(['--plan', '--rate-size', '4'])).rejects.toThrow(/^medgrad study: --rate-size must be an integer >= 8, got '4'$/);
    await expect(study.run(['--plan', '--rate-batch', '1'])).rejects.toThrow(/^medgrad study: --rate-batch must be an integer >= 2, got '1'$/);
    await expect(study.run(['--machines', '4'])).rejects.toThrow(/^medgrad study: --machines only goes with --plan$/);
    await expect(study.run(['--json', '--rate-size', '16'])).rejects.toThrow(/^medgrad study: --rate-size, --json only go with --plan$/);
    await expect(study.run(['--plan', '--preset', 'nope'])).rejects.toThrow(/unknown --preset 'nope'/);
    await expect(study.run(['--plan', '--rates', 'resnet8:4'])).rejects.toThrow(/^medgrad study: --rates must be MODEL=GFLOPS pairs, comma-separated, with positive rates \(e\.g\. cbr-larget=7\.7,resnet8=4\), got 'resnet8:4'$/);
    await expect(study.run(['--plan', '--rates', 'resnet8=0'])).rejects.toThrow(/--rates must be MODEL=GFLOPS pairs/);
    await expect(study.run(['--plan', '--rates', 'resnet18=4'])).rejects.toThrow(/^medgrad study: --rates: unknown model 'resnet18' \(have cbr-larget, resnet8, resnet20, resnet32, resnet50\)$/);
    await expect(study.run(['--rates', 'resnet8=4'])).rejects.toThrow(/^medgrad study: --rates only goes with --plan$/);
  });
});
