// An image classification dataset in memory: images as float32 NCHW in [0, 1], int32 labels,
// class names, an optional group id per image (a patient) and the source's own split if any.

export interface ImageDataset {
  /** N x C x S x S, scaled to [0, 1]. */
  x: Float32Array;
  y: Int32Array;
  n: number;
  channels: number;
  size: number;
  classes: string[];
  /** Patient (or other group) id per image, when the source has one. */
  groups?: string[];
  /** The source's own split per image, when it has one (the .npz files do). */
  split?: Array<'train' | 'val' | 'test'>;
  /** Where it came from, for logs and metrics. */
  source: string;
}

export interface Splits { train: number[]; val: number[]; test: number[]; kind: string }

/** The images and labels at the given indices, as a new dataset (shares nothing). */
export function subset(ds: ImageDataset, idx: readonly number[]): ImageDataset {
  const per = ds.channels * ds.size * ds.size;
  const x = new Float32Array(idx.length * per);
  idx.forEach((i, k) => x.set(ds.x.subarray(i * per, (i + 1) * per), k * per));
  return {
    ...ds, x, n: idx.length, y: Int32Array.from(idx, (i) => ds.y[i]!),
    groups: ds.groups ? idx.map((i) => ds.groups![i]!) : undefined,
    split: ds.split ? idx.map((i) => ds.split![i]!) : undefined,
  };
}

export function classCounts(ds: ImageDataset): number[] {
  const c = new Array<number>(ds.classes.length).fill(0);
  for (const v of ds.y) c[v] = c[v]! + 1;
  return c;
}

/** Checks labels against the class list; a label out of range names the image. */
export function validateLabels(ds: ImageDataset): void {
  if (ds.y.length !== ds.n || ds.x.length !== ds.n * ds.channels * ds.size * ds.size) {
    throw new Error(`medgrad: ${ds.source}: ${ds.n} images but ${ds.y.length} labels (or image data of the wrong size)`);
  }
  ds.y.forEach((v, i) => {
    if (!(v >= 0 && v < ds.classes.length)) throw new Error(`medgrad: ${ds.source}: label ${v} of image ${i} is outside [0, ${ds.classes.length})`);
  });
}
