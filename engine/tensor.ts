// Tensor: a shape, a dtype and contiguous GPU storage, plus the autograd fields. Storage is
// reference-counted so that reshape is a free view. Every tensor is owned: freed by dispose()
// or by the tidy() scope it was created in.
import { runtime } from './context.js';
import { contiguousStrides, fmt, numel, type Shape } from './shape.js';

export type DType = 'float32' | 'int32';
export type TypedArrayFor<D extends DType> = D extends 'int32' ? Int32Array : Float32Array;
export type NestedArray = number | NestedArray[];

export class Storage {
  refs = 1;
  constructor(readonly buffer: GPUBuffer, readonly bytes: number) { liveStorageBytes += buffer.size; }
  release(): void {
    if (--this.refs === 0) {
      liveStorageBytes -= this.buffer.size;
      runtime().pool.release(this.buffer);
    }
  }
}

/** What an op leaves on its output so that backward can run. */
export interface GradNode {
  op: string;
  inputs: Tensor[];
  backward: (grad: Tensor) => Array<Tensor | null>;
}

let nextId = 1;
let liveStorageBytes = 0;
const live = new Set<Tensor>();
const scopes: Set<Tensor>[] = [];

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly size: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  /** Set on outputs of differentiable ops while grad mode is on. */
  node: GradNode | null = null;
  private _storage: Storage | null;

  constructor(shape: Shape, readonly dtype: DType, storage: Storage) {
    this.shape = Object.freeze([...shape]);
    this.size = numel(shape);
    this._storage = storage;
    live.add(this);
    scopes[scopes.length - 1]?.add(this);
  }

  get rank(): number { return this.shape.length; }
  get strides(): number[] { return contiguousStrides(this.shape); }
  get isDisposed(): boolean { return this._storage === null; }

  get storage(): Storage {
    if (!this._storage) throw new Error(`medgrad: tensor #${this.id} of shape ${fmt(this.shape)} was disposed and cannot be used`);
    return this._storage;
  }
  get buffer(): GPUBuffer { return this.storage.buffer; }

  /** A tensor sharing this one's storage under another shape (same number of elements). */
  view(shape: Shape): Tensor {
    const s = this.storage;
    s.refs++;
    return new Tensor(shape, this.dtype, s);
  }

  /** Frees the GPU storage (shared storage is freed when its last view goes). */
  dispose(): void {
    if (!this._storage) return;
    this._storage.release();
    this._storage = null;
    this.node = null;
    live.delete(this);
    for (const s of scopes) s.delete(this);
    if (this.grad) { this.grad.dispose(); this.grad = null; }
  }

  /** Replaces this tensor's contents with `value`'s, taking over its storage (value is consumed). */
  assign(value: Tensor): this {
    if (value.dtype !== this.dtype || value.shape.length !== this.shape.length || value.shape.some((d, i) => d !== this.shape[i])) {
      throw new Error(`medgrad: assign: value of shape ${fmt(value.shape)} (${value.dtype}) does not match tensor of shape ${fmt(this.shape)} (${this.dtype})`);
    }
    const s = value.storage;
    s.refs++;
    value.dispose();
    this.storage.release();
    this._storage = s;
    return this;
  }

  /** Copies the values to the host; the CPU waits for the GPU here (and in sync() and fences). */
  async data(): Promise<TypedArrayFor<DType>> {
    const raw = await runtime().read(this.buffer, this.size * 4);
    return this.dtype === 'int32' ? new Int32Array(raw) : new Float32Array(raw);
  }

  /** Values as nested arrays of the tensor's shape (a number for a scalar). */
  async toArray(): Promise<NestedArray> {
    const d = await this.data();
    const build = (dim: number, off: number): NestedArray => {
      if (dim === this.rank) return d[off]!;
      const stride = this.strides[dim]!;
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, off + i * stride));
    };
    return build(0, 0);
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`medgrad: item() needs a tensor of one element, got shape ${fmt(this.shape)}`);
    return (await this.data())[0]!;
  }

  toString(): string { return `Tensor(${fmt(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`; }
}

/** Allocates an uninitialised tensor from the buffer pool. */
export function empty(shape: Shape, dtype: DType = 'float32', what?: string): Tensor {
  const bytes = Math.max(numel(shape), 1) * 4;
  const buf = runtime().pool.acquire(bytes, undefined, what ?? `a tensor of shape ${fmt(shape)}`);
  return new Tensor(shape, dtype, new Storage(buf, bytes));
}

// ---- ownership: scopes, keep, dispose, memory ----

function collect(x: unknown, out: Set<Tensor>): void {
  if (x instanceof Tensor) out.add(x);
  else if (Array.isArray(x)) for (const v of x) collect(v, out);
  else if (x && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) for (const v of Object.values(x)) collect(v, out);
}

/**
 * Runs fn and disposes every tensor created inside it, except the tensors in its result
 * (which move to the enclosing scope) and those passed to keep(). fn must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  if (result instanceof Promise) throw new Error('medgrad: tidy() takes a synchronous function; use startScope()/endScope() around async work');
  const kept = new Set<Tensor>();
  collect(result, kept);
  for (const t of scope) if (!kept.has(t)) t.dispose();
  const parent = scopes[scopes.length - 1];
  if (parent) for (const t of kept) if (scope.has(t)) parent.add(t);
  return result;
}

/** Async-friendly scope: everything created until the matching endScope() is tracked. */
export function startScope(): void { scopes.push(new Set()); }
export function endScope(result?: unknown): void {
  const scope = scopes.pop();
  if (!scope) throw new Error('medgrad: endScope() without startScope()');
  const kept = new Set<Tensor>();
  collect(result, kept);
  for (const t of scope) if (!kept.has(t)) t.dispose();
  const parent = scopes[scopes.length - 1];
  if (parent) for (const t of kept) if (scope.has(t)) parent.add(t);
}

/** Exempts a tensor from every enclosing scope: the caller now owns it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

export function dispose(x: unknown): void {
  const s = new Set<Tensor>();
  collect(x, s);
  for (const t of s) t.dispose();
}

export interface MemoryInfo {
  /** Tensors not yet disposed. */
  tensors: number;
  /** Bytes of GPU storage held by live tensors. */
  bytes: number;
  /** Bytes of freed buffers kept in the pool for reuse. */
  pooledBytes: number;
  pooledBuffers: number;
  /** GPU buffers ever created by the pool. */
  buffersCreated: number;
}

export function memory(): MemoryInfo {
  const p = runtime().pool.snapshot();
  return { tensors: live.size, bytes: liveStorageBytes, pooledBytes: p.pooledBytes, pooledBuffers: p.pooledBuffers, buffersCreated: p.created };
}
