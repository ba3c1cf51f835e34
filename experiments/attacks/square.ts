// The Square attack (Andriushchenko, Croce, Flammarion and Hein, ECCV 2020), L-infinity: a
// score-based random search that needs only the logits, the study's check that the
// gradient attacks are not fooled by masked gradients. Every perturbed pixel sits at a corner
// of the eps-ball (clipped to [0, 1]); each query proposes, per image still classified
// correctly, a new random sign per channel on one random square and keeps it if the margin
// loss falls. Candidates are built and judged on the CPU, so the GPU only runs forward passes.
//
// Random draws, all from o.gen, in this order (a float64 re-implementation replays them):
//   1. initialisation: per image, per channel, per column, one sign (vertical stripes);
//   2. each later round, per image still attacked in ascending order: the square's top row
//      gen.int(h - s + 1), its left column gen.int(w - s + 1), then one sign per channel,
//      the signs drawn again while they would leave the image unchanged.
// A sign is -1 when gen.random() < 0.5, else +1.
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import type { Classifier } from './gradient.js';

export interface SquareOptions {
  /** Query budget per image (forward passes), e.g. 1000. */
  queries: number;
  /** Initial fraction of pixels per square (AutoAttack's default for L-inf: 0.8). */
  pInit?: number;
  /** Seeded generator (E.Generator from engine) for every random choice; all randomness drawn on the CPU in a fixed order so a float64 re-implementation can replay it. */
  gen: E.Generator;
  /** Called after each query round (done, total) for progress. */
  onQuery?: (done: number, total: number) => void;
}

export interface SquareResult {
  xAdv: Tensor;
  logits: Tensor;
  /** margin loss max_{k!=y} z_k - z_y at xAdv per sample */
  obj: Tensor;
  /** queries used per image */
  queries: number[];
}

/** The iterations (on a 10,000-query scale) after which the square's area halves. */
const HALVINGS = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];

/**
 * The fraction of an image's pixels the square covers at round `i` (0 = the first after the
 * initialisation) of a `queries` budget: the reference's schedule, rescaled to 10,000 queries.
 */
export function squareFraction(i: number, queries: number, pInit = 0.8): number {
  const t = Math.floor((i / queries) * 10000);
  return pInit / 2 ** HALVINGS.filter((b) => t > b).length;
}

/** The square's side at round `i`: round(sqrt(p h w)), at least 1 and at most min(h, w) - 1. */
export function squareSide(i: number, queries: number, pInit: number, h: number, w: number): number {
  return Math.min(Math.max(roundHalfEven(Math.sqrt(squareFraction(i, queries, pInit) * h * w)), 1), Math.min(h, w) - 1);
}

/** Python's round() (the reference's), which sends halves to the even neighbour. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Attacks a batch with frozen weights (see freeze()) within `o.queries` forward passes per
 * image, the first being the stripes initialisation; an image stops being queried once its
 * margin z_y - max_{k!=y} z_k is negative (the reference stops at <= 0, but a tie is not a
 * misclassification under every tie-breaking). Acceptance is the reference's: a candidate
 * replaces the image's current point when its margin is strictly lower. The images
 * should be those the model classifies correctly: the attack starts from the stripes, not
 * from x. The result's tensors belong to the caller's scope; nothing else is left alive.
 */
export async function squareAttack(model: Classifier, x: Tensor, y: Tensor, eps: number, o: SquareOptions): Promise<SquareResult> {
  if (x.rank !== 4 || x.dtype !== 'float32') throw new Error(`medgrad: squareAttack: images must be float32 [n, c, h, w], got ${x.dtype} ${E.formatShape(x.shape)}`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const pInit = o.pInit ?? 0.8;
  if (y.size !== n) throw new Error(`medgrad: squareAttack: ${y.size} labels for ${n} images`);
  if (!(Number.isInteger(o.queries) && o.queries >= 1)) throw new Error(`medgrad: squareAttack: queries must be a positive integer, got ${o.queries}`);
  if (!(pInit > 0 && pInit <= 1)) throw new Error(`medgrad: squareAttack: pInit must be in (0, 1], got ${pInit}`);
  if (!(eps >= 0)) throw new Error(`medgrad: squareAttack: eps must be non-negative, got ${eps}`);
  if (Math.min(h, w) < 2) throw new Error(`medgrad: squareAttack: images must be at least 2 x 2 pixels, got ${h} x ${w}`);

  const chw = c * h * w;
  const [x0, labels] = await Promise.all([x.data() as Promise<Float32Array>, y.data()]);
  // Each pixel's two candidate values, the corners of the ball clipped to [0, 1] (float32 as stored).
  const lo = x0.map((v) => Math.max(0, v - eps));
  const hi = x0.map((v) => Math.min(1, v + eps));
  const geo: Geometry = { c, h, w, lo, hi };

  const best = new Float32Array(n * chw);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      for (let col = 0; col < w; col++) {
        const corner = sign(o.gen) > 0 ? hi : lo;
        for (let row = 0; row < h; row++) {
          const j = i * chw + (ch * h + row) * w + col;
          best[j] = corner[j]!;
        }
      }
    }
  }
  const bestLogits = await forward(model, best, [n, c, h, w]);
  const k = bestLogits.length / n;
  const margins = Array.from({ length: n }, (_, i) => margin(bestLogits, i, k, labels[i]!));
  const queries = new Array<number>(n).fill(1);
  o.onQuery?.(1, o.queries);

  for (let round = 0; round < o.queries - 1; round++) {
    const active = margins.flatMap((m, i) => (m >= 0 ? [i] : []));
    if (!active.length) break;
    const s = squareSide(round, o.queries, pInit, h, w);
    const cand = new Float32Array(active.length * chw);
    active.forEach((i, a) => {
      const row = cand.subarray(a * chw, (a + 1) * chw);
      row.set(best.subarray(i * chw, (i + 1) * chw));
      proposeSquare(row, best.subarray(i * chw, (i + 1) * chw), i * chw, s, geo, o.gen);
    });
    const z = await forward(model, cand, [active.length, c, h, w]);
    active.forEach((i, a) => {
      queries[i]!++;
      const m = margin(z, a, k, labels[i]!);
      if (m < margins[i]!) {
        margins[i] = m;
        best.set(cand.subarray(a * chw, (a + 1) * chw), i * chw);
        bestLogits.set(z.subarray(a * k, (a + 1) * k), i * k);
      }
    });
    o.onQuery?.(round + 2, o.queries);
  }
  return {
    xAdv: E.tensor(best, [n, c, h, w]),
    logits: E.tensor(bestLogits, [n, k]),
    obj: E.tensor(Float32Array.from(margins, (m) => -m), [n]),
    queries,
  };
}

interface Geometry { c: number; h: number; w: number; lo: Float32Array; hi: Float32Array }

/** -1 or +1, one draw. */
const sign = (gen: E.Generator): number => (gen.random() < 0.5 ? -1 : 1);

/**
 * Writes a random square of per-channel signs into `cand` (a copy of the image's current
 * `best`, whose pixels start at offset `at` of lo/hi), redrawing the signs while the square
 * would change nothing, as the reference does, unless no sign could change it (eps ~ 0).
 * The square may touch the last row and column: the reference's exclusive upper bound
 * (randint(0, h - s)) never lets it, leaving those pixels at their initial stripes.
 */
function proposeSquare(cand: Float32Array, best: Float32Array, at: number, s: number, g: Geometry, gen: E.Generator): void {
  const top = gen.int(g.h - s + 1), left = gen.int(g.w - s + 1);
  let movable: boolean | undefined;
  for (;;) {
    let changed = false;
    for (let ch = 0; ch < g.c; ch++) {
      const corner = sign(gen) > 0 ? g.hi : g.lo;
      for (let r = top; r < top + s; r++) {
        for (let col = left; col < left + s; col++) {
          const j = (ch * g.h + r) * g.w + col;
          cand[j] = corner[at + j]!;
          if (cand[j] !== best[j]) changed = true;
        }
      }
    }
    if (changed || !(movable ??= squareMovable(at, top, left, s, g))) return;
  }
}

/** Whether some pixel of the square has two distinct corners, i.e. some sign would change it. */
function squareMovable(at: number, top: number, left: number, s: number, g: Geometry): boolean {
  for (let ch = 0; ch < g.c; ch++) {
    for (let r = top; r < top + s; r++) {
      for (let col = left; col < left + s; col++) {
        const j = at + (ch * g.h + r) * g.w + col;
        if (g.lo[j] !== g.hi[j]) return true;
      }
    }
  }
  return false;
}

/** The margin loss the attacker lowers, z_y - max_{k!=y} z_k, in float64 from float32 logits. */
function margin(z: Float32Array, row: number, k: number, label: number): number {
  let other = -Infinity;
  for (let c = 0; c < k; c++) if (c !== label) other = Math.max(other, z[row * k + c]!);
  return z[row * k + label]! - other;
}

/** One query: the logits of a batch of candidates, read back (the only GPU work). */
async function forward(model: Classifier, images: Float32Array, shape: number[]): Promise<Float32Array> {
  const logits = E.noGrad(() => E.tidy(() => model.forward(E.tensor(images, shape))));
  try {
    return (await logits.data()) as Float32Array;
  } finally {
    logits.dispose();
  }
}
