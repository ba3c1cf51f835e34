// The study's workloads under the profiler: one model's training step, attack step or
// inference, at a chosen image size and batch, with the per-op table, each op family's share of
// GPU time and a Chrome trace. `medgrad profile --model NAME` runs it (profile.ts).
import * as E from '../../engine/node.js';
import { createModel, type ModelName } from '../../nn/models.js';
import { freeze } from '../attacks/gradient.js';
import { perturb } from '../attacks/pgd.js';
import { attackConfig } from '../attacks/spec.js';
import { adamFor, trainStep } from '../train/step.js';

export type Workload = 'train' | 'attack' | 'eval';
export const WORKLOADS: readonly Workload[] = ['train', 'attack', 'eval'];

export interface ModelProfileOptions { model: ModelName; imageSize: number; batch: number; workload: Workload; steps: number; channels?: number; classes?: number }

/** Op families by the profiler's op names (kernel labels), for the share of each in GPU time. */
const FAMILIES: Array<[string, RegExp]> = [
  ['convolution', /^conv2d/],
  ['batch norm', /^(batchNorm2d|channelSums)/],
  ['pooling', /Pool2d/],
  ['matmul', /^matmul/],
  ['softmax / loss', /^(softmax|logSoftmax|crossEntropy)/],
  ['reductions', /^(sum|max|min|argmax|argmin)$/],
  ['optimizer', /^adam/],
  ['data movement', /^(permute|slice|pad|concat|broadcastTo|cast|fill|copy)/],
  ['gradient accumulation', /^accumulate$/],
];

export const familyOf = (op: string): string => FAMILIES.find(([, re]) => re.test(op))?.[0] ?? 'elementwise';

export interface FamilyRow { family: string; ms: number; share: number; calls: number }

/** GPU time by op family, most expensive first. */
export function familyShares(report: E.ProfileReport): FamilyRow[] {
  const total = report.totalMs();
  const by = new Map<string, FamilyRow>();
  for (const r of report.rows()) {
    const f = familyOf(r.op);
    const row = by.get(f) ?? { family: f, ms: 0, share: 0, calls: 0 };
    row.ms += r.totalMs; row.calls += r.calls;
    by.set(f, row);
  }
  return [...by.values()].map((r) => ({ ...r, share: total > 0 ? r.ms / total : 0 })).sort((a, b) => b.ms - a.ms);
}

export function familyTable(rows: FamilyRow[]): string {
  return [`${'op family'.padEnd(24)}${'calls'.padStart(7)}${'total ms'.padStart(11)}${'%'.padStart(7)}`,
    ...rows.map((r) => `${r.family.padEnd(24)}${String(r.calls).padStart(7)}${r.ms.toFixed(3).padStart(11)}${(100 * r.share).toFixed(1).padStart(7)}`)].join('\n');
}

/** Profiles `steps` repetitions of the workload (after one untimed run that compiles every pipeline). */
export async function profileModel(o: ModelProfileOptions): Promise<E.ProfileReport> {
  const channels = o.channels ?? 3, classes = o.classes ?? 2;
  const model = createModel(o.model, { imageSize: o.imageSize, inChannels: channels, classes, smallInput: o.imageSize <= 64, seed: 0 });
  const x = E.rand([o.batch, channels, o.imageSize, o.imageSize], { generator: new E.Generator(0) });
  const y = E.randint(0, classes, [o.batch], { generator: new E.Generator(1) });
  const opt = adamFor(model, { l2: 1e-4 });
  const pgd = attackConfig('pgd', { steps: 1 });
  const gen = new E.Generator(2);
  const step = (): void => {
    if (o.workload === 'train') { trainStep(model, opt, x, y).dispose(); return; }
    if (o.workload === 'eval') { model.eval(); E.noGrad(() => E.tidy(() => { model.forward(x); })); return; }
    model.eval();
    const restore = freeze(model);
    try { E.tidy(() => { perturb(model, x, y, null, pgd, 4 / 255, gen); }); } finally { restore(); }
  };
  try {
    step();
    await E.sync();
    return await E.profile(() => { for (let i = 0; i < o.steps; i++) step(); });
  } finally {
    E.dispose([x, y]);
    opt.dispose();
    model.dispose();
  }
}
