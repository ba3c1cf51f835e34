// Browser entry point: the engine plus init() on navigator.gpu. Imports no Node module.
import { requestBrowserDevice } from './device/browser.js';
import { getDevice, useDevice } from './session.js';
import { hasRuntime } from './context.js';
import type { Device } from './device/device.js';

export * from './index.js';

export async function init(options: { powerPreference?: GPUPowerPreference } = {}): Promise<Device> {
  if (hasRuntime()) return getDevice();
  return useDevice(await requestBrowserDevice(options));
}
