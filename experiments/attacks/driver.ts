// Running one attack on one batch for an evaluation: restarts only on the images the attack has
// not broken yet, and, for attacks that keep their best iterate, images dropped from the batch
// as soon as they are fooled (at APGD's checkpoints), so a full-strength attack costs little
// where the model already fails. Per-image results are read back to the CPU.
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { ball, type Classifier, takeRows } from './gradient.js';
import { checkpoints } from './apgd.js';
import { type Outcome, stepperFor } from './pgd.js';
import { squareAttack } from './square.js';
import type { AttackSpec } from './spec.js';

export interface BatchResult {
  pred: number[];
  /** The attack's objective at the result (higher: worse for the model). */
  obj: number[];
  /** Cross-entropy against the true label at the result. */
  loss: number[];
  /** max |x_adv - x| per image. */
  linf: number[];
  /** The adversarial images, [n * c * h * w], when asked for (transfer attacks). */
  xAdv: Float32Array | null;
  /** Per step (restart-major): images with an exactly zero input gradient, and images still attacked. */
  zero: number[];
  active: number[];
  /** Summed objective before each step and after the last, over the whole batch (first run; attacks that never drop images). */
  trace: number[];
}

export interface BatchOptions { keepImages?: boolean }

/** Attacks x (labels y, targets or null) at eps; the model is frozen by the caller. */
export async function attackBatch(model: Classifier, x: Tensor, y: Tensor, target: Tensor | null, spec: AttackSpec, eps: number, gen: E.Generator, o: BatchOptions = {}): Promise<BatchResult> {
  const n = x.shape[0]!, per = x.size / n;
  const r: BatchResult = { pred: [], obj: [], loss: [], linf: [], xAdv: o.keepImages ? new Float32Array(n * per) : null, zero: [], active: [], trace: [] };
  const labels = Array.from(await y.data());
  const record = async (rows: readonly number[], out: Outcome, xs: Tensor, ys: Tensor): Promise<void> => {
    const t = E.noGrad(() => E.tidy(() => [E.argmax(out.logits, -1), out.obj, E.crossEntropy(out.logits, ys, { reduction: 'none' }), E.max(E.abs(E.sub(out.xAdv, xs)), [1, 2, 3])]));
    const [pred, obj, loss, linf] = await Promise.all(t.map((v) => v.data()));
    const img = r.xAdv ? await out.xAdv.data() : null;
    E.dispose(t);
    rows.forEach((i, k) => {
      const first = r.pred[i] === undefined;
      const wasRight = r.pred[i] === labels[i], nowWrong = pred![k] !== labels[i];
      // Keep the worse outcome for the model: a misclassification, else the higher objective.
      if (!first && !(wasRight && nowWrong) && !(wasRight === !nowWrong && obj![k]! > r.obj[i]!)) return;
      r.pred[i] = pred![k]!; r.obj[i] = obj![k]!; r.loss[i] = loss![k]!; r.linf[i] = linf![k]!;
      if (img && r.xAdv) r.xAdv.set(img.subarray(k * per, (k + 1) * per), i * per);
    });
  };
  const box = ball(x, eps);
  try {
    let alive = [...Array(n).keys()];
    for (let restart = 0; restart < spec.restarts && alive.length; restart++) {
      const rows = alive;
      const [xs, ys, ts, lo, hi] = E.tidy(() => [takeRows(x, rows), takeRows(y, rows), target ? takeRows(target, rows) : null, takeRows(box.lo, rows), takeRows(box.hi, rows)]);
      try {
        if (spec.kind === 'square') {
          const out = await squareAttack(model, xs!, ys!, eps, { queries: spec.steps, gen });
          await record(rows, out, xs!, ys!);
          E.dispose([out.xAdv, out.logits, out.obj]);
        } else {
          await runSteps(model, xs!, ys!, ts ?? null, { lo: lo!, hi: hi! }, spec, eps, gen, restart, rows, r, record);
        }
      } finally {
        E.dispose([xs!, ys!, lo!, hi!, ...(ts ? [ts] : [])]);
      }
      alive = alive.filter((i) => r.pred[i] === labels[i]);
    }
  } finally {
    E.dispose([box.lo, box.hi]);
  }
  return r;
}

type Record_ = (rows: readonly number[], out: Outcome, xs: Tensor, ys: Tensor) => Promise<void>;

/** One run of a gradient attack, dropping fooled images at the checkpoints when it keeps its best iterate. */
async function runSteps(model: Classifier, xs: Tensor, ys: Tensor, ts: Tensor | null, box: { lo: Tensor; hi: Tensor }, spec: AttackSpec, eps: number, gen: E.Generator,
  restart: number, rows0: readonly number[], r: BatchResult, record: Record_): Promise<void> {
  const run = stepperFor(spec)(model, xs, ys, ts, spec, eps, box, gen, restart);
  let rows = [...rows0];
  let x = E.keep(E.detach(xs)), y = E.keep(E.detach(ys));
  const drops = spec.bestIterate ? new Set(checkpoints(spec.steps).filter((s) => s < spec.steps)) : new Set<number>();
  const sums: Tensor[] = restart === 0 && !spec.bestIterate ? [E.keep(E.detach(run.start))] : [];
  const counts: Tensor[] = [];
  try {
    for (let s = 1; s <= spec.steps; s++) {
      const { obj, zero } = run.step();
      counts.push(zero);
      r.active.push(rows.length);
      if (sums.length) sums.push(E.keep(obj)); else obj.dispose();
      if (!drops.has(s)) continue;
      const fooledT = run.fooled();
      const fooled = await fooledT.data();
      fooledT.dispose();
      const done = rows.flatMap((_, k) => (fooled[k] ? [k] : []));
      if (!done.length) continue;
      const out = run.outcome();
      const [xd, yd, od] = E.tidy(() => [takeRows(x, done), takeRows(y, done), { xAdv: takeRows(out.xAdv, done), logits: takeRows(out.logits, done), obj: takeRows(out.obj, done) }] as const);
      await record(done.map((k) => rows[k]!), od, xd, yd);
      E.dispose([out.xAdv, out.logits, out.obj, od.xAdv, od.logits, od.obj, xd, yd]);
      const keep = rows.flatMap((_, k) => (fooled[k] ? [] : [k]));
      if (!keep.length) { rows = []; break; }
      run.select(keep);
      const [x2, y2] = E.tidy(() => [E.keep(takeRows(x, keep)), E.keep(takeRows(y, keep))]);
      E.dispose([x, y]);
      x = x2!; y = y2!;
      rows = keep.map((k) => rows[k]!);
    }
    if (rows.length) {
      const out = run.outcome();
      await record(rows, out, x, y);
      E.dispose([out.xAdv, out.logits, out.obj]);
    }
    const z = await Promise.all(counts.map((t) => t.data()));
    r.zero.push(...z.map((v) => v[0]!));
    if (sums.length) r.trace = (await Promise.all(sums.map((t) => t.data()))).map((v) => v[0]!);
  } finally {
    E.dispose([...counts, ...sums, x, y]);
    run.dispose();
  }
}
