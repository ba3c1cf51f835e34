// Dtypes as descriptors: what a dtype is on the host, in WGSL and in memory. Code that sizes a
// buffer, counts bytes or picks a typed array asks the descriptor instead of assuming 4 bytes.
// float16 is a storage type: 2 bytes a value on the GPU (kernels load it into f32 and do their
// arithmetic there), float32 values on the host (converted by engine/half.ts on upload and read).

export interface DTypeInfo {
  readonly name: 'float32' | 'float16' | 'int32';
  /** Bytes per element in GPU storage. */
  readonly bytes: number;
  /** The WGSL element type of storage arrays. */
  readonly wgsl: 'f32' | 'f16' | 'i32';
  /** The WGSL type kernels accumulate in. */
  readonly accumulate: 'f32' | 'i32';
  /** Host arrays of this dtype (float16: float32 values, converted on upload and readback). */
  readonly array: Float32ArrayConstructor | Int32ArrayConstructor;
  /** Whether gradients can flow through tensors of this dtype. */
  readonly differentiable: boolean;
}

export const DTYPES = {
  float32: { name: 'float32', bytes: 4, wgsl: 'f32', accumulate: 'f32', array: Float32Array, differentiable: true },
  float16: { name: 'float16', bytes: 2, wgsl: 'f16', accumulate: 'f32', array: Float32Array, differentiable: true },
  int32: { name: 'int32', bytes: 4, wgsl: 'i32', accumulate: 'i32', array: Int32Array, differentiable: false },
} as const satisfies Record<string, DTypeInfo>;

export type DType = keyof typeof DTYPES;
export type TypedArrayFor<D extends DType> = D extends 'int32' ? Int32Array : Float32Array;

export function dtypeInfo(d: DType): DTypeInfo {
  const info = DTYPES[d] as DTypeInfo | undefined;
  if (!info) throw new Error(`medgrad: unknown dtype '${String(d)}'; known: ${Object.keys(DTYPES).join(', ')}`);
  return info;
}

/** Bytes of `n` elements of dtype `d`. */
export const byteSize = (n: number, d: DType = 'float32'): number => n * dtypeInfo(d).bytes;
