// What an attack is: a named, fully specified L-infinity attack, and the epsilon units.
// Epsilon is stored as a fraction of the [0, 1] pixel range everywhere; 1/255 units (the
// paper's) are only a way of writing it, and every output shows both.

import type { LossName } from './losses.js';

export type AttackKind = 'fgsm' | 'pgd' | 'apgd' | 'square';

export interface AttackSpec {
  kind: AttackKind;
  /**
   * 'least-likely': toward the clean prediction's least likely class (the paper's);
   * 'runner-up': toward the most likely wrong class (APGD-T's first target); 'none': untargeted.
   */
  target: 'least-likely' | 'runner-up' | 'none';
  /** The loss the attack ascends (losses.ts): cross-entropy, the Carlini-Wagner margin, or DLR (3+ classes). */
  loss: LossName;
  /** Gradient steps (FGSM: 1); for Square, queries per image. */
  steps: number;
  /** PGD's step as a fraction of eps (the paper: 0.1); FGSM steps by eps; APGD sets its own. */
  stepFraction: number;
  /** Runs from fresh starts; each sample keeps its worst case. In an evaluation, runs after the first attack only the images not yet broken. */
  restarts: number;
  /** Start at a uniform random point of the eps-ball (PGD, APGD) instead of the clean image. */
  randomStart: boolean;
  /** With random starts, the first run starts at the clean image all the same. */
  cleanFirst: boolean;
  /**
   * Keep, per image, the best point of any iterate (the last that fooled the model, else the
   * highest objective) rather than the final iterate. Off only for the paper's two attacks, as it ran them.
   */
  bestIterate: boolean;
  /** In an evaluation, attack only the images that every earlier attack at this eps left correct (AutoAttack's order). */
  cascade: boolean;
}

const DEFAULTS = { restarts: 1, randomStart: true, cleanFirst: false, bestIterate: true, cascade: false } as const;

/** The attacks a study names, with the paper's settings for its own two. */
export const ATTACK_PRESETS: Record<string, AttackSpec> = {
  'fgsm-ll': { ...DEFAULTS, kind: 'fgsm', target: 'least-likely', loss: 'ce', steps: 1, stepFraction: 1, randomStart: false, bestIterate: false },
  'pgd-ll': { ...DEFAULTS, kind: 'pgd', target: 'least-likely', loss: 'ce', steps: 20, stepFraction: 0.1, bestIterate: false },
  fgsm: { ...DEFAULTS, kind: 'fgsm', target: 'none', loss: 'ce', steps: 1, stepFraction: 1, randomStart: false },
  'fgsm-margin': { ...DEFAULTS, kind: 'fgsm', target: 'none', loss: 'margin', steps: 1, stepFraction: 1, randomStart: false },
  // Madry et al.'s rule of thumb: steps of 2.5 eps / steps, so the walk can cross the ball.
  pgd: { ...DEFAULTS, kind: 'pgd', target: 'none', loss: 'ce', steps: 20, stepFraction: 0.125 },
  'pgd-margin': { ...DEFAULTS, kind: 'pgd', target: 'none', loss: 'margin', steps: 20, stepFraction: 0.125 },
  // Croce and Hein's default budget: 100 iterations.
  'apgd-ce': { ...DEFAULTS, kind: 'apgd', target: 'none', loss: 'ce', steps: 100, stepFraction: 0 },
  'apgd-margin': { ...DEFAULTS, kind: 'apgd', target: 'none', loss: 'margin', steps: 100, stepFraction: 0 },
  'apgd-dlr': { ...DEFAULTS, kind: 'apgd', target: 'none', loss: 'dlr', steps: 100, stepFraction: 0 },
  'apgd-t': { ...DEFAULTS, kind: 'apgd', target: 'runner-up', loss: 'dlr', steps: 100, stepFraction: 0 },
  // Gradient-free: 1,000 queries per image, only on the images every gradient attack left correct.
  square: { ...DEFAULTS, kind: 'square', target: 'none', loss: 'margin', steps: 1000, stepFraction: 0, randomStart: false, cascade: true },
};

export interface AttackConfig extends AttackSpec { name: string }

export interface AttackOverrides { steps?: number; restarts?: number; stepFraction?: number; cleanFirst?: boolean; cascade?: boolean }

/**
 * An attack from its preset name and overrides (`steps`, `restarts`, `stepFraction`), e.g.
 * attackConfig('pgd', { steps: 50, restarts: 3 }). The name in outputs records the overrides.
 */
export function attackConfig(name: string, o: AttackOverrides = {}): AttackConfig {
  const base = ATTACK_PRESETS[name];
  if (!base) throw new Error(`medgrad: unknown attack '${name}' (have ${Object.keys(ATTACK_PRESETS).join(', ')})`);
  const spec: AttackSpec = { ...base };
  if (o.steps !== undefined && base.kind !== 'fgsm') {
    if (!(Number.isInteger(o.steps) && o.steps >= 1)) throw new Error(`medgrad: attack '${name}': steps must be a positive integer, got ${o.steps}`);
    // PGD keeps its total travel when its step count changes: 2 eps for the paper's (20 x eps/10),
    // Madry's 2.5 eps for the untargeted one; otherwise fewer steps would make a weaker attack.
    if (base.kind === 'pgd' && o.stepFraction === undefined) spec.stepFraction = travel(base) / o.steps;
    spec.steps = o.steps;
  }
  if (o.restarts !== undefined) {
    if (!(Number.isInteger(o.restarts) && o.restarts >= 1)) throw new Error(`medgrad: attack '${name}': restarts must be a positive integer, got ${o.restarts}`);
    spec.restarts = base.kind === 'fgsm' ? 1 : o.restarts;
  }
  if (o.stepFraction !== undefined) {
    if (!(o.stepFraction > 0)) throw new Error(`medgrad: attack '${name}': stepFraction must be positive, got ${o.stepFraction}`);
    spec.stepFraction = o.stepFraction;
  }
  if (o.cleanFirst !== undefined) spec.cleanFirst = o.cleanFirst;
  if (o.cascade !== undefined) spec.cascade = o.cascade;
  return { ...spec, name: attackLabel(name, spec) };
}

/** A PGD preset's total step length in units of eps. */
const travel = (base: AttackSpec): number => base.steps * base.stepFraction;

function attackLabel(name: string, s: AttackSpec): string {
  if (s.kind === 'fgsm') return name;
  const preset = ATTACK_PRESETS[name]!;
  const parts = [`${s.steps}`];
  if (s.restarts > 1) parts.push(`x${s.restarts}`);
  if (s.cleanFirst !== preset.cleanFirst) parts.push('clean');
  if (s.kind === 'pgd' && Math.abs(s.stepFraction - travel(preset) / s.steps) > 1e-12) parts.push(`a${s.stepFraction}`);
  return `${name}-${parts.join('-')}`;
}

/**
 * Parses epsilons. Plain numbers are in `unit` (default 1/255, as the paper writes them);
 * 'N/255' is always 1/255 units; with unit 'fraction', plain numbers are fractions of [0, 1].
 */
export function parseEps(list: string | ReadonlyArray<string | number>, unit: '255' | 'fraction' = '255', what = '--eps'): number[] {
  const items = typeof list === 'string' ? list.split(',').map((s) => s.trim()).filter(Boolean) : list.map(String);
  if (!items.length) throw new Error(`medgrad: ${what}: no epsilon given`);
  return items.map((s) => {
    const m = /^([0-9.eE+-]+)\/255$/.exec(s);
    const v = Number(m ? m[1] : s);
    if (!Number.isFinite(v) || v < 0) throw new Error(`medgrad: ${what}: '${s}' is not a non-negative number`);
    const frac = m || unit === '255' ? v / 255 : v;
    if (frac > 1) throw new Error(`medgrad: ${what}: '${s}' is more than the whole [0, 1] pixel range${unit === 'fraction' && !m ? ' (values are fractions; did you mean 1/255 units?)' : ''}`);
    return frac;
  });
}

/** "4/255 (0.0157)": both units, so no reader has to guess. */
export function formatEps(eps: number): string {
  return `${+(eps * 255).toFixed(4)}/255 (${+eps.toFixed(5)})`;
}

/** The epsilon in 1/255 units, rounded to hide float noise (for table columns and ids). */
export const eps255 = (eps: number): number => +(eps * 255).toFixed(4);
