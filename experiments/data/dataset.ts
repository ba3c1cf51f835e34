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
