// Per-sample attack state that lives between steps: batch-first tensors kept outside any scope
// (so a caller may await between steps), replaced as a whole by update(), which frees what it
// replaces, and narrowed by select() when some samples are done. Also the best-iterate record
// every attack keeps: the last point that fooled the model, else the point of highest objective.
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { misclassified, takeRows } from './gradient.js';

export class AttackState {
  private t = new Map<string, Tensor>();

  get(name: string): Tensor {
    const v = this.t.get(name);
    if (!v) throw new Error(`medgrad: attack state has no '${name}'`);
    return v;
  }

  has(name: string): boolean { return this.t.has(name); }

  /** Sets tensors (taking them out of the current scope) and frees those no longer referenced. */
  update(values: Record<string, Tensor | null>): void {
    const old = new Set(this.t.values());
    for (const [k, v] of Object.entries(values)) {
      if (v) this.t.set(k, E.keep(v));
      else this.t.delete(k);
    }
    const live = new Set(this.t.values());
    for (const v of old) if (!live.has(v)) v.dispose();
  }

  /** Keeps only the samples `rows` (sorted indices into the current batch) in every tensor. */
  select(rows: readonly number[]): void {
    const next: Record<string, Tensor> = {};
    const done = new Map<Tensor, Tensor>();
    for (const [k, v] of this.t) {
      if (!done.has(v)) done.set(v, takeRows(v, rows));
      next[k] = done.get(v)!;
    }
    this.update(next);
  }

  dispose(): void {
    for (const v of new Set(this.t.values())) v.dispose();
    this.t.clear();
  }
}

/** Per-sample where() for batch-first tensors of any rank. */
export function pick(mask: Tensor, a: Tensor, b: Tensor): Tensor {
  return E.where(E.reshape(mask, [mask.shape[0]!, ...a.shape.slice(1).map(() => 1)]), a, b);
}

/**
 * Folds one evaluated point into the best-iterate record held in `s` under the names xFooled,
 * logitsFooled, objFooled, fooled (the latest point where the prediction was not the label) and
 * xBest, logitsBest, objBest (the point of highest objective).
 */
export function track(s: AttackState, x: Tensor, logits: Tensor, obj: Tensor, y: Tensor): void {
  E.tidy(() => {
    const wrong = misclassified(logits, y);
    if (!s.has('fooled')) {
      s.update({ xFooled: x, logitsFooled: logits, objFooled: obj, fooled: wrong, xBest: x, logitsBest: logits, objBest: obj });
      return;
    }
    const better = E.gt(obj, s.get('objBest'));
    s.update({
      xFooled: pick(wrong, x, s.get('xFooled')), logitsFooled: pick(wrong, logits, s.get('logitsFooled')),
      objFooled: pick(wrong, obj, s.get('objFooled')), fooled: E.maximum(s.get('fooled'), wrong),
      xBest: pick(better, x, s.get('xBest')), logitsBest: pick(better, logits, s.get('logitsBest')), objBest: pick(better, obj, s.get('objBest')),
    });
  });
}

/** The best-iterate result: per sample the fooled point if there is one, else the highest-objective point (caller's scope). */
export function bestOf(s: AttackState): { xAdv: Tensor; logits: Tensor; obj: Tensor } {
  const f = s.get('fooled');
  return E.tidy(() => ({ xAdv: pick(f, s.get('xFooled'), s.get('xBest')), logits: pick(f, s.get('logitsFooled'), s.get('logitsBest')), obj: pick(f, s.get('objFooled'), s.get('objBest')) }));
}
