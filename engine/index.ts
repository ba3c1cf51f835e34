// medgrad's engine, independent of platform. node.ts and browser.ts add init().
export { Tensor, tidy, keep, dispose, memory, startScope, endScope, type DType, type MemoryInfo, type NestedArray } from './tensor.js';
export * from './ops/table.js';
export { noGrad, isGradEnabled } from './autograd/mode.js';
export { backward, grad, type BackwardOptions, type GradOptions } from './autograd/backward.js';
export { Generator, manualSeed, defaultGenerator } from './random.js';
export { Device, OPTIONAL_FEATURES, type AdapterDescription } from './device/device.js';
export { profile, setDebug, sync, fence, getDevice, emptyCache, dispatchCount } from './session.js';
export { ProfileReport, type OpRow, type KernelEvent } from './profiler/profiler.js';
export { fmt as formatShape, type Shape } from './shape.js';
