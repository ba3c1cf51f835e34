// Node: Dawn through the `webgpu` package. Shader sources are read from ../../shaders (the entry
// point registers them with the kernels layer).
import { readdirSync, readFileSync } from 'node:fs';
import { create, globals } from 'webgpu';
import { Device, deviceDescriptor, NO_ADAPTER_HELP } from './device.js';
import { filterNativeStderr } from './native-stderr.js';

const SHADER_DIR = new URL('../../shaders/', import.meta.url);

export function loadShaderSources(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(SHADER_DIR)) {
    if (f.endsWith('.wgsl')) out[f.slice(0, -5)] = readFileSync(new URL(f, SHADER_DIR), 'utf8');
  }
  return out;
}

interface Holder { __medgradDawn?: GPU }

// Dawn caps these two limits at 16 whatever the driver reports (lavapipe reports 1,000,000) and
// says so on stderr while it enumerates adapters, whatever the device later requests. The engine
// uses no dynamic offsets, so the notice is noise; MEDGRAD_DEBUG=1 shows it.
const HARMLESS_DAWN_WARNING = /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced/;

export async function requestNodeDevice(options: { powerPreference?: GPUPowerPreference } = {}, variantFeatures: readonly string[] = []): Promise<Device> {
  Object.assign(globalThis, globals);
  // Dawn crashes at random if this object is garbage-collected: keep it for the process's life.
  const holder = globalThis as unknown as Holder;
  // Dawn offers `chromium-experimental-subgroup-matrix` (tensor cores) only behind its
  // allow_unsafe_apis toggle, set when the instance is made: opt-in (MEDGRAD_DAWN_UNSAFE_APIS=1,
  // as bench/gpu.sh does), so that ordinary runs keep Dawn's default checks.
  const toggles = process.env.MEDGRAD_DAWN_UNSAFE_APIS === '1' ? ['enable-dawn-features=allow_unsafe_apis'] : [];
  holder.__medgradDawn ??= create(toggles) as GPU;
  const dawn = holder.__medgradDawn;
  const request = () => dawn.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  // Adapters are enumerated synchronously inside the call, the only place the warning is printed.
  const adapter = await (process.env.MEDGRAD_DEBUG === '1' ? request() : filterNativeStderr(request, HARMLESS_DAWN_WARNING));
  if (!adapter) throw new Error(NO_ADAPTER_HELP);
  const gpu = await adapter.requestDevice(deviceDescriptor(adapter, variantFeatures));
  return new Device(gpu, adapter, 'dawn (node)');
}
