// Batch assembly on the CPU: gather images, repeat grey to the model's channels, and the
// protocol's augmentation (random shifts up to 10% of width and height with nearest fill,
// random horizontal flips), drawn from a seeded generator.
import type { Generator } from '../../engine/index.js';
import type { ImageDataset } from './dataset.js';

export interface BatchOptions { channels: number; augment?: { shift: number; flip: boolean; generator: Generator } }

export function makeBatch(ds: ImageDataset, idx: readonly number[], o: BatchOptions): { x: Float32Array; y: Int32Array } {
  const s = ds.size, plane = s * s;
  if (o.channels !== ds.channels && ds.channels !== 1) {
    throw new Error(`medgrad: the model expects ${o.channels} channels but ${ds.source} has ${ds.channels}`);
  }
  const x = new Float32Array(idx.length * o.channels * plane);
  const y = new Int32Array(idx.length);
  idx.forEach((i, k) => {
    // Checked where labels become a batch: crossEntropy would give NaN for a label out of range.
    if (!(Number.isInteger(i) && i >= 0 && i < ds.n)) throw new Error(`medgrad: batch index ${i} is outside the ${ds.n} images of ${ds.source}`);
    const label = ds.y[i]!;
    if (!(label >= 0 && label < ds.classes.length)) throw new Error(`medgrad: ${ds.source}: label ${label} of image ${i} is outside [0, ${ds.classes.length}) (classes ${ds.classes.join(', ')})`);
    y[k] = label;
    let dx = 0, dy = 0, flip = false;
    if (o.augment) {
      const m = Math.round(o.augment.shift * s);
      dx = o.augment.generator.int(2 * m + 1) - m;
      dy = o.augment.generator.int(2 * m + 1) - m;
      flip = o.augment.flip && o.augment.generator.random() < 0.5;
    }
    for (let c = 0; c < o.channels; c++) {
      const src = ds.x.subarray((i * ds.channels + (ds.channels === 1 ? 0 : c)) * plane, (i * ds.channels + (ds.channels === 1 ? 0 : c) + 1) * plane);
      const dst = x.subarray((k * o.channels + c) * plane, (k * o.channels + c + 1) * plane);
      for (let r = 0; r < s; r++) {
        const sr = Math.min(s - 1, Math.max(0, r - dy));
        for (let col = 0; col < s; col++) {
          const c0 = flip ? s - 1 - col : col;
          dst[r * s + col] = src[sr * s + Math.min(s - 1, Math.max(0, c0 - dx))]!;
        }
      }
    }
  });
  return { x, y };
}
