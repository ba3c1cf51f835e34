// Node entry point: the engine plus init() on Dawn.
import { requestNodeDevice } from './device/node.js';
import { useDevice } from './session.js';
import { hasRuntime } from './context.js';
import type { Device } from './device/device.js';
import { getDevice } from './session.js';

export * from './index.js';

/** Finds a GPU adapter through Dawn and attaches it; later calls return the same device. */
export async function init(options: { powerPreference?: GPUPowerPreference } = {}): Promise<Device> {
  if (hasRuntime()) return getDevice();
  return useDevice(await requestNodeDevice(options));
}
