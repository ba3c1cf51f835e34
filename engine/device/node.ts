// Node: Dawn through the `webgpu` package. Shader sources are read from ../../shaders.
import { readdirSync, readFileSync } from 'node:fs';
import { create, globals } from 'webgpu';
import { Device, deviceDescriptor, NO_ADAPTER_HELP } from './device.js';
import { registerShaders } from '../kernels/shaders.js';

const SHADER_DIR = new URL('../../shaders/', import.meta.url);

export function loadShaderSources(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(SHADER_DIR)) {
    if (f.endsWith('.wgsl')) out[f.slice(0, -5)] = readFileSync(new URL(f, SHADER_DIR), 'utf8');
  }
  return out;
}

interface Holder { __medgradDawn?: GPU }

export async function requestNodeDevice(options: { powerPreference?: GPUPowerPreference } = {}): Promise<Device> {
  Object.assign(globalThis, globals);
  // Dawn crashes at random if this object is garbage-collected: keep it for the process's life.
  const holder = globalThis as unknown as Holder;
  holder.__medgradDawn ??= create([]) as GPU;
  const adapter = await holder.__medgradDawn.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error(NO_ADAPTER_HELP);
  const gpu = await adapter.requestDevice(deviceDescriptor(adapter));
  registerShaders(loadShaderSources());
  return new Device(gpu, adapter, 'dawn (node)');
}
