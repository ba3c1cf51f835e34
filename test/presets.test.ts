// The study's presets against the protocol (../shared/docs/protocol.md), the config keys they
// brought (train.patience: early stopping on validation; perClass 'all'), and the clear error
// when a preset's data set is missing.
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../engine/node.js';
import { attackedSet } from '../experiments/attacks/evaluate.js';
import { checkDatasets, parseStudyConfig, perClassCount, PRESETS } from '../experiments/study/config.js';
import { PAPER_EPS } from '../experiments/study/presets.js';
import { runStudy, studyUnits, trainConfig } from '../experiments/study/runner.js';
import { generateDataset } from '../experiments/data/generated.js';
import { protocolSplit } from '../experiments/data/splits.js';
import { train } from '../experiments/train/trainer.js';

beforeAll(async () => { await E.init(); });

describe('the paper presets', () => {
  it.each([['paper-chest', '../shared/datasets/chest_xray_224', 3 / 255, 7, 1 / 255], ['paper-derm', '../shared/datasets/dermoscopy_isic_180', 1 / 255, 5, 0.1 / 255]] as const)(
    '%s is the protocol exactly', (name, data, advEps, advSteps, tableEps) => {
      const c = PRESETS[name]!();
      expect(c.datasets).toEqual([{ name: name.slice(6), data, imageSize: 224, channels: 3, split: 'protocol', perClass: 150, adversarial: { eps: advEps, steps: advSteps, stepFraction: 0.1 }, tableEps }]);
      expect(c.models).toEqual(['cbr-larget', 'resnet8', 'resnet20', 'resnet32', 'resnet50']);
      expect(c.smallInput).toBe(false);
      expect(c.seeds).toEqual([127, 95, 14, 19, 77, 42, 33, 3, 215, 28]);
      expect(c.train).toEqual({ epochs: 100, batchSize: 32, lr: 1e-3, bnMomentum: 0.99, lrDropEpoch: 80, augment: true });
      expect(c.adversarial).toMatchObject({ models: ['resnet8', 'resnet20', 'resnet32', 'resnet50'], seeds: 10, lr: 1e-3 });
      expect(c.attacks.slice(0, 2).map((a) => a.name)).toEqual(['fgsm-ll', 'pgd-ll-20']);
      expect(c.attacks.map((a) => a.name)).toContain('apgd-ce-100');
      // The same config through the JSON path (a study's study.json) is unchanged.
      expect(parseStudyConfig({ preset: name })).toEqual(c);
    });

  it('uses the 29-point grid: 0, 0.01..0.09, 0.1..0.9, 1..9, 10 (1/255)', () => {
    expect(PAPER_EPS).toHaveLength(29);
    expect(PAPER_EPS.map((e) => +(e * 255).toFixed(4))).toEqual([0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('makes the protocol\'s 71/14.5/14.5 split of the dermoscopy set (685 images)', () => {
    const s = protocolSplit(685, 127);
    expect([s.train.length, s.val.length, s.test.length]).toEqual([486, 99, 100]);
  });
});

describe('presets that read ../shared/datasets', () => {
  it('stop before any work when the data set is missing, naming the path', async () => {
    for (const name of Object.keys(PRESETS)) {
      const c = PRESETS[name]!();
      for (const d of c.datasets) if (!d.data.startsWith('generated:')) expect(d.data).toMatch(/^\.\.\/shared\/datasets\//);
    }
    const c = { ...PRESETS['paper-derm']!(), datasets: [{ ...PRESETS['paper-derm']!().datasets[0]!, data: '../shared/datasets/dermoscopy_missing' }] };
    expect(() => checkDatasets(c)).toThrow(/medgrad study: 'paper-derm': dataset 'derm' reads \.\.\/shared\/datasets\/dermoscopy_missing \(\/.*dermoscopy_missing\), which does not exist; this preset reads the real data sets kept beside the project/);
    const out = mkdtempSync(join(tmpdir(), 'medgrad-missing-'));
    await expect(runStudy(c, out, { log: () => {} })).rejects.toThrow(/dataset 'derm' reads \.\.\/shared\/datasets\/dermoscopy_missing/);
  });
});

describe('perClass: all', () => {
  it('attacks every test image, and other values are refused by name', () => {
    const c = parseStudyConfig({ datasets: [{ name: 'd', data: 'generated:chest', imageSize: 12, count: 60, perClass: 'all', tableEps: 2 }], eps: [0, 2] });
    expect(c.datasets[0]!.perClass).toBe('all');
    expect(perClassCount(c.datasets[0]!)).toBe(Number.POSITIVE_INFINITY);
    const ds = generateDataset('chest', { size: 8, count: 60, seed: 0 });
    const pool = protocolSplit(60, 3).test;
    expect(attackedSet(ds, pool, perClassCount(c.datasets[0]!), 3)).toEqual([...pool].sort((a, b) => a - b));
    expect(() => parseStudyConfig({ datasets: [{ name: 'd', data: 'generated:chest', imageSize: 12, perClass: 'most' }] })).toThrow(/datasets\[0\]: 'perClass' must be a positive integer or 'all' \(every test image\), got "most"/);
  });
});

describe('train.patience: early stopping on validation accuracy', () => {
  it('is parsed, checked and passed to the trainer; absent, the config is unchanged', () => {
    const base = { models: ['resnet8'], datasets: [{ name: 'd', data: 'generated:chest', imageSize: 12, count: 60, perClass: 4, tableEps: 2 }], eps: [0, 2] };
    expect(parseStudyConfig(base).train).not.toHaveProperty('patience');
    const c = parseStudyConfig({ ...base, train: { epochs: 9, patience: 2 } });
    expect(c.train.patience).toBe(2);
    expect(parseStudyConfig({ ...base, train: { patience: null } }).train).not.toHaveProperty('patience');
    expect(() => parseStudyConfig({ ...base, train: { patience: 0 } })).toThrow(/train: 'patience' must be a positive integer \(epochs without a better validation accuracy\) or null, got 0/);
    const u = studyUnits(c)[0]!;
    const ds = generateDataset('chest', { size: 12, count: 60, seed: 0 });
    expect(trainConfig(c, u, 'standard', ds, 'x').valPatience).toBe(2);
  });

  it('stops training once validation accuracy has not improved for that many epochs, keeping the best epoch', async () => {
    const ds = generateDataset('chest', { size: 8, count: 48, seed: 0 });
    const splits = protocolSplit(48, 5);
    const out = mkdtempSync(join(tmpdir(), 'medgrad-patience-'));
    // A vanishing lr (Adam moves each weight by about lr) and frozen running statistics: validation
    // accuracy stays what it is after epoch 1, which so stays the best.
    const r = await train({ model: 'resnet8', imageSize: 8, channels: 3, classes: 2, smallInput: true, epochs: 10, batchSize: 16, lr: 1e-12, lrDropEpoch: null, l2: 0, augment: false, seed: 1, bnMomentum: 0, valPatience: 2 },
      { out, ds, splits, log: () => {} });
    expect(r.state.history).toHaveLength(3);
    expect(r.state.bestEpoch).toBe(1);
    expect(JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')).epochs).toHaveLength(3);
  });
});
