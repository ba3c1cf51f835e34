// Tensor: a shape, a dtype and contiguous GPU storage, plus the autograd fields. Storage is
// reference-counted so that reshape is a free view, and belongs to the engine that allocated
// it. Every tensor is owned: freed by dispose() or by the tidy() scope it was created in.
import { engine } from '../context.js';
import type { Engine } from '../engine.js';
import { contiguousStrides, fmt, numel, type Shape } from '../shape.js';
import { dtypeInfo, type DType, type DTypeInfo, type TypedArrayFor } from '../dtype.js';
import { DeviceLostError } from '../device/device.js';
import { halfToFloat32 } from '../half.js';

export { DeviceLostError };

export type { DType, TypedArrayFor };
export type NestedArray = number | NestedArray[];

// Version stamps: unique across storages, so a tensor given other storage (assign) or whose
// storage is written in place reads a stamp no graph node recorded.
let clock = 0;

export class Storage {
  refs = 1;
  /** Changes with every in-place write of the values (shared by all views of the storage). */
  version = ++clock;
  constructor(readonly owner: Engine, readonly buffer: GPUBuffer, readonly bytes: number) { owner.liveBytes += buffer.size; }
  markChanged(): void { this.version = ++clock; }
  release(): void {
    if (--this.refs > 0) return;
    this.owner.liveBytes -= this.buffer.size;
    if (!this.owner.lost) this.owner.pool.release(this.buffer);
  }
}

/**
 * What an op leaves on its output so that backward can run. The node owns the tensors it saved
 * for backward (statistics, argmax indices): they go when the node is released, which happens
 * after a backward pass that does not retain the graph, or when the output is disposed.
 */
export interface GradNode {
  op: string;
  inputs: Tensor[];
  /** Versions of the inputs, the output and the saved tensors when the node was made: backward refuses values changed since. */
  versions: number[];
  outVersion: number;
  savedVersions: number[];
  saved: Tensor[];
  backward: (grad: Tensor) => Array<Tensor | null>;
  /** Set once a backward pass consumed the node without retainGraph. */
  freed: boolean;
}

/** Disposes a node's saved tensors and marks it consumed. */
export function releaseNode(node: GradNode): void {
  for (const t of node.saved) t.dispose();
  node.saved = [];
  node.freed = true;
}

let nextId = 1;
const scopes: Set<Tensor>[] = [];

// Called with every tensor whose values are read while set (autograd sets it around one node's
// backward, to refuse inputs changed in place since the forward pass).
let readHook: ((t: Tensor) => void) | null = null;
/** Runs fn with `hook` seeing every tensor whose storage is read. */
export function watchReads<T>(hook: (t: Tensor) => void, fn: () => T): T {
  const prev = readHook;
  readHook = hook;
  try { return fn(); } finally { readHook = prev; }
}

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
    storage.owner.live.add(this);
    scopes[scopes.length - 1]?.add(this);
  }

  get rank(): number { return this.shape.length; }
  get strides(): number[] { return contiguousStrides(this.shape); }
  get isDisposed(): boolean { return this._storage === null; }
  get dtypeInfo(): DTypeInfo { return dtypeInfo(this.dtype); }
  /** Bytes of the elements (not of the pooled buffer, which may be larger). */
  get nbytes(): number { return this.size * dtypeInfo(this.dtype).bytes; }

  /**
   * A stamp that changes whenever the values change in place (assign, an optimiser step, running
   * statistics; shared by views): PyTorch's version counter, as an opaque number. Backward
   * refuses to read a tensor whose version moved since the forward pass, rather than
   * differentiate with the new values.
   */
  get version(): number {
    if (!this._storage) void this.storage; // throws the disposed tensor's error (the read hook is not re-entered for a live one)
    return this._storage!.version;
  }
  /** Records an in-place change of the values (for ops that write a tensor's storage). */
  markChanged(): void { this.storage.markChanged(); }

  get storage(): Storage {
    if (readHook) readHook(this);
    const s = this._storage;
    if (!s) throw new Error(`medgrad: tensor #${this.id} of shape ${fmt(this.shape)} was disposed and cannot be used`);
    if (s.owner.lost) throw new DeviceLostError(`medgrad: tensor #${this.id} of shape ${fmt(this.shape)} lived on a GPU device that was lost; recreate it on the new device (init() makes one)`);
    return s;
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
    const s = this._storage;
    if (!s) return;
    s.release();
    this._storage = null;
    if (this.node) releaseNode(this.node);
    this.node = null;
    s.owner.live.delete(this);
    for (const sc of scopes) sc.delete(this);
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
    this._storage = s; // another storage, so another version stamp: nodes that used the old values see it
    return this;
  }

  /** Copies the values to the host; the CPU waits for the GPU here (and in sync() and fences). */
  async data(): Promise<TypedArrayFor<DType>> {
    const s = this.storage;
    const raw = await s.owner.runtime.read(s.buffer, this.nbytes);
    if (this.dtype === 'float16') return halfToFloat32(new Uint16Array(raw), this.size);
    return new (dtypeInfo(this.dtype).array)(raw);
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

  /**
   * Installs the op methods (x.add(y) === add(x, y)) from a table of functions whose first
   * argument is the tensor. The engine's entry point passes the table generated from the op
   * records, so each method is declared once, in its op's record.
   */
  static defineMethods(table: Readonly<Record<string, (self: Tensor, ...args: never[]) => unknown>>): void {
    for (const [name, fn] of Object.entries(table)) {
      Object.defineProperty(Tensor.prototype, name, {
        value: function (this: Tensor, ...args: unknown[]) { return (fn as (...a: unknown[]) => unknown)(this, ...args); },
        writable: true, configurable: true,
      });
    }
  }
}

/** Allocates an uninitialised tensor from the current engine's buffer pool. */
export function empty(shape: Shape, dtype: DType = 'float32', what?: string): Tensor {
  const e = engine();
  if (dtype === 'float16' && !e.device.features.has('shader-f16')) {
    throw new Error(`medgrad: ${what ?? `a tensor of shape ${fmt(shape)}`}: float16 needs the adapter feature 'shader-f16', which this adapter (${e.device.info.description || e.device.info.vendor}) lacks; use float32`);
  }
  // Rounded up to whole 4-byte words: GPU copies and writes move words (an odd float16 count).
  const bytes = Math.ceil(Math.max(numel(shape), 1) * dtypeInfo(dtype).bytes / 4) * 4;
  const buf = e.pool.acquire(bytes, undefined, what ?? `a tensor of shape ${fmt(shape)}`);
  return new Tensor(shape, dtype, new Storage(e, buf, bytes));
}

// ---- ownership: scopes, keep, dispose ----

function collect(x: unknown, out: Set<Tensor>): void {
  if (x instanceof Tensor) out.add(x);
  else if (Array.isArray(x)) for (const v of x) collect(v, out);
  else if (x && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) for (const v of Object.values(x)) collect(v, out);
}

/** Disposes what `scope` holds except the tensors in `result`, which move to the parent scope. */
function close(scope: Set<Tensor>, result: unknown): void {
  const kept = new Set<Tensor>();
  collect(result, kept);
  for (const t of scope) if (!kept.has(t)) t.dispose();
  const parent = scopes[scopes.length - 1];
  if (parent) for (const t of kept) if (scope.has(t)) parent.add(t);
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
  } catch (e) {
    scopes.pop();
    close(scope, undefined); // what the failed function made is freed too
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) throw new Error('medgrad: tidy() takes a synchronous function; use startScope()/endScope() around async work');
  close(scope, result);
  return result;
}

/** Async-friendly scope: everything created until the matching endScope() is tracked. */
export function startScope(): void { scopes.push(new Set()); }
export function endScope(result?: unknown): void {
  const scope = scopes.pop();
  if (!scope) throw new Error('medgrad: endScope() without startScope()');
  close(scope, result);
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
