// The engine's version (package.json's; a test keeps them equal). Tuned kernel choices are
// keyed by it, since a new version may change the kernels they were measured on.
export const ENGINE_VERSION = '0.2.0';
