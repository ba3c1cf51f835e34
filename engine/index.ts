// medgrad's engine, independent of platform. node.ts and browser.ts add init().
import { Tensor } from './tensor/tensor.js';
import { METHODS } from './ops/index.js';

// Tensor's op methods, from the op records' `method` fields (x.add(y) === add(x, y)).
Tensor.defineMethods(METHODS);

export { Tensor, tidy, keep, dispose, startScope, endScope, DeviceLostError, type NestedArray } from './tensor/tensor.js';
export { DTYPES, dtypeInfo, type DType, type DTypeInfo } from './dtype.js';
export * from './ops/index.js';
export { noGrad, isGradEnabled } from './autograd/mode.js';
export { backward, grad, type BackwardOptions, type GradOptions } from './autograd/backward.js';
export { Generator, manualSeed, defaultGenerator } from './random.js';
export { Device, OPTIONAL_FEATURES, type AdapterDescription } from './device/device.js';
export { Engine, type MemoryInfo, type TuneStore } from './engine.js';
export { profile, setDebug, sync, fence, getDevice, getEngine, emptyCache, dispatchCount, memory } from './session.js';
export { kernels, VariantPolicy, type KernelDef, type Variant, type TuneTable } from './kernels/variants.js';
export { ProfileReport, type OpRow, type KernelEvent } from './profiler/profiler.js';
export { fmt as formatShape, type Shape } from './shape.js';
/** The engine's version, package.json's (as torch.__version__). */
export { ENGINE_VERSION as version } from './version.js';
