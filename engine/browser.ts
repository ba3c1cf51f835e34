// Browser entry point: the engine plus init() on navigator.gpu. Imports no Node module; tuned
// variant choices are not kept between page loads.
import { bundledShaders, requestBrowserDevice } from './device/browser.js';
import { registerShaders } from './kernels/shaders.js';
import { attach, usableDevice } from './session.js';
import type { Device } from './device/device.js';
import { variantFeatures } from './kernels/variants.js';

export * from './index.js';

export async function init(options: { powerPreference?: GPUPowerPreference } = {}): Promise<Device> {
  const current = usableDevice();
  if (current) return current;
  const device = await requestBrowserDevice(options, variantFeatures());
  registerShaders(bundledShaders());
  attach(device);
  return device;
}
