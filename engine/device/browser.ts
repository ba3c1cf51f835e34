// Browser: navigator.gpu. Shader sources are bundled from the same ../../shaders/*.wgsl files
// (Vite's import.meta.glob); nothing here imports a Node module.
import { Device, deviceDescriptor, NO_ADAPTER_HELP } from './device.js';

interface GlobImportMeta { glob(pattern: string, options: { query: string; import: string; eager: true }): Record<string, string> }

export function bundledShaders(): Record<string, string> {
  const files = (import.meta as unknown as GlobImportMeta).glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true });
  const out: Record<string, string> = {};
  for (const [path, src] of Object.entries(files)) out[path.replace(/^.*\//, '').replace(/\.wgsl$/, '')] = src;
  return out;
}

export async function requestBrowserDevice(options: { powerPreference?: GPUPowerPreference } = {}, variantFeatures: readonly string[] = []): Promise<Device> {
  const nav = (globalThis as { navigator?: Navigator }).navigator;
  if (!nav?.gpu) throw new Error('medgrad: this browser has no WebGPU (navigator.gpu is missing).\n' + NO_ADAPTER_HELP);
  const adapter = await nav.gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error(NO_ADAPTER_HELP);
  const gpu = await adapter.requestDevice(deviceDescriptor(adapter, variantFeatures));
  return new Device(gpu, adapter, 'browser');
}
