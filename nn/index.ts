// nn's public surface, the package's `medgrad/nn` entry. It uses the engine through
// ../engine/index.js only, so it works with either entry point (Node or browser).
export * from './module.js';
export * from './layers.js';
export * from './init.js';
export * from './models.js';
export * from './optim.js';
export * from './update-bn.js';
export * from './safetensors.js';
