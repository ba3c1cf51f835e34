// Shape arithmetic shared by tensors and ops. Everything here is pure and checked on the CPU,
// so a bad shape or axis throws before any GPU work, naming the shapes involved.

export type Shape = readonly number[];

export const MAX_RANK = 8;

export function fmt(shape: Shape): string { return `[${shape.join(', ')}]`; }

export function numel(shape: Shape): number { return shape.reduce((a, b) => a * b, 1); }

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]!; }
  return s;
}

export function checkShape(shape: Shape, what = 'shape'): void {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`medgrad: ${what} must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (shape.length > MAX_RANK) throw new Error(`medgrad: ${what} ${fmt(shape)} has rank ${shape.length}; at most ${MAX_RANK} is supported`);
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** NumPy broadcasting of two shapes; throws naming both when they do not broadcast. */
export function broadcastShapes(a: Shape, b: Shape, op = 'broadcast'): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`medgrad: ${op}: shapes ${fmt(a)} and ${fmt(b)} do not broadcast (dimension ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides that read a contiguous tensor of `shape` as if broadcast to `target`. */
export function broadcastStrides(shape: Shape, target: Shape): number[] {
  const s = contiguousStrides(shape);
  const off = target.length - shape.length;
  return target.map((_, i) => (i < off || shape[i - off] === 1 ? 0 : s[i - off]!));
}

/** Normalises a possibly negative axis; throws naming the shape when out of range. */
export function normAxis(axis: number, rank: number, shape: Shape, op: string): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= Math.max(rank, 1)) {
    throw new Error(`medgrad: ${op}: axis ${axis} is out of range for shape ${fmt(shape)} (rank ${rank})`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Sorted unique axes; `undefined` means all axes. */
export function normAxes(axes: number | readonly number[] | undefined, shape: Shape, op: string): number[] {
  if (axes === undefined) return shape.map((_, i) => i);
  const list = (typeof axes === 'number' ? [axes] : [...axes]).map((a) => normAxis(a, shape.length, shape, op));
  if (new Set(list).size !== list.length) throw new Error(`medgrad: ${op}: repeated axis in ${JSON.stringify(axes)} for shape ${fmt(shape)}`);
  return list.sort((x, y) => x - y);
}

/** Resolves one -1 entry in a reshape target. */
export function inferReshape(from: Shape, to: readonly number[]): number[] {
  const n = numel(from);
  const unknown = to.filter((d) => d === -1).length;
  if (unknown > 1 || to.some((d) => !Number.isInteger(d) || d < -1)) {
    throw new Error(`medgrad: reshape: bad target shape ${fmt(to)} for a tensor of shape ${fmt(from)}`);
  }
  const known = to.reduce((a, d) => (d === -1 ? a : a * d), 1);
  const out = to.map((d) => (d === -1 ? (known === 0 ? 0 : n / known) : d));
  if (numel(out) !== n || out.some((d) => !Number.isInteger(d))) {
    throw new Error(`medgrad: reshape: cannot reshape ${fmt(from)} (${n} elements) to ${fmt(to)}`);
  }
  return out;
}
