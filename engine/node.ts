// Node entry point: the engine plus init() on Dawn, with the tune cache in the user's cache folder.
import { loadShaderSources, requestNodeDevice } from './device/node.js';
import { registerShaders } from './kernels/shaders.js';
import { attach, usableDevice } from './session.js';
import { fileTuneStore } from './kernels/tune-store.js';
import type { Device } from './device/device.js';
import { variantFeatures } from './kernels/variants.js';

export * from './index.js';
export { tuneCacheFile } from './kernels/tune-store.js';

/**
 * Finds a GPU adapter through Dawn and makes an engine on it; later calls return the same device.
 * After the device is lost, init() makes a new engine on a new device and says so.
 */
export async function init(options: { powerPreference?: GPUPowerPreference } = {}): Promise<Device> {
  const current = usableDevice();
  if (current) return current;
  const device = await requestNodeDevice(options, variantFeatures());
  registerShaders(loadShaderSources());
  attach(device, fileTuneStore(device.info));
  return device;
}
