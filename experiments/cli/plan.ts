// The options of `medgrad study --plan` (study.ts), read and checked before anything runs.
import * as E from '../../engine/node.js';
import { MODEL_NAMES, type ModelName } from '../../nn/models.js';
import type { StudyConfig } from '../study/config.js';
import { formatPlan, planStudy, type PlanOptions } from '../study/plan.js';
import { numberReader, POSITIVE, POSITIVE_INT } from './args.js';

export const PLAN_USAGE = `  --plan           print the study's cost instead of running it: units and cells, FLOPs per
                   cell, each model's measured rate (a short timed training step) and the time
                   on one machine and on --machines N with --shard
  --machines N     also price the study sharded over N machines (with --plan)
  --rate-size N    time the steps at N px instead of the dataset's size (faster; the rate is then
                   applied to the full size's FLOPs)
  --rate-batch N   batch of the timed steps (default the study's, capped at ~20 GFLOP a step)
  --rate-seconds S timed seconds per model (default 2; at least one step)
  --rates LIST     use these rates instead of timing the models, in GFLOP/s, e.g.
                   cbr-larget=7.7,resnet8=4 (another machine's; models not listed are timed)
  --json           with --plan, print the plan as JSON`;

export const PLAN_NUMBERS = { machines: POSITIVE_INT, 'rate-size': { int: true, min: 8 }, 'rate-batch': { int: true, min: 2 }, 'rate-seconds': POSITIVE };

export const PLAN_OPTIONS = {
  plan: { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
  machines: { type: 'string' }, 'rate-size': { type: 'string' }, 'rate-batch': { type: 'string' }, 'rate-seconds': { type: 'string' }, rates: { type: 'string' },
} as const;

/** The plan's options from the command line, or null without --plan; a plan-only option alone is an error. */
export function planOptions(values: Readonly<Record<string, unknown>>): (PlanOptions & { json: boolean }) | null {
  const num = numberReader('medgrad study', values, PLAN_NUMBERS);
  const o = { machines: num('machines', undefined), rateSize: num('rate-size', undefined), rateBatch: num('rate-batch', undefined), rateSeconds: num('rate-seconds', undefined) };
  if (!values.plan) {
    const stray = [...Object.keys(PLAN_NUMBERS), 'rates', 'json'].filter((k) => values[k] !== undefined && values[k] !== false);
    if (stray.length) throw new Error(`medgrad study: ${stray.map((k) => `--${k}`).join(', ')} only go${stray.length > 1 ? '' : 'es'} with --plan`);
    return null;
  }
  return { ...o, machines: o.machines ? [o.machines] : [], rates: typeof values.rates === 'string' ? parseRates(values.rates) : undefined, json: values.json === true };
}

/** "cbr-larget=7.7,resnet8=4" (GFLOP/s) as FLOP/s by model. */
export function parseRates(text: string): Partial<Record<ModelName, number>> {
  const out: Partial<Record<ModelName, number>> = {};
  for (const item of text.split(',')) {
    const m = /^\s*([a-z0-9-]+)\s*=\s*([0-9.eE+-]+)\s*$/.exec(item);
    const v = m ? Number(m[2]) : NaN;
    if (!m || !(v > 0) || !Number.isFinite(v)) throw new Error(`medgrad study: --rates must be MODEL=GFLOPS pairs, comma-separated, with positive rates (e.g. cbr-larget=7.7,resnet8=4), got '${text}'`);
    if (!MODEL_NAMES.includes(m[1] as ModelName)) throw new Error(`medgrad study: --rates: unknown model '${m[1]}' (have ${MODEL_NAMES.join(', ')})`);
    out[m[1] as ModelName] = v * 1e9;
  }
  return out;
}

export async function printPlan(config: StudyConfig, o: PlanOptions & { json: boolean }): Promise<number> {
  const p = await planStudy(config, { ...o, log: o.json ? undefined : (l) => console.error(l) });
  const device = E.getDevice().info.description || E.getDevice().info.vendor || 'this adapter';
  console.log(o.json ? JSON.stringify({ ...p, device }, null, 2) : formatPlan(p, device));
  return 0;
}
