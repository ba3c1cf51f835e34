// Peer libraries on the same Dawn adapter as medgrad, for same-run comparisons. They reach
// WebGPU through navigator.gpu, which is pointed at the GPU object medgrad's device came from.
// Peers are devDependencies used by bench/ only.
import { init } from '../engine/node.js';

interface DawnHolder { __medgradDawn?: GPU; navigator?: { gpu?: GPU; userAgent?: string } }

async function exposeNavigator(): Promise<void> {
  await init();
  const g = globalThis as unknown as DawnHolder;
  if (!g.__medgradDawn) throw new Error('bench: medgrad did not create a Dawn instance');
  // jax-js reads navigator.userAgent; both peers read navigator.gpu.
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: g.__medgradDawn, userAgent: 'node' }, configurable: true, writable: true });
}

export type Tf = typeof import('@tensorflow/tfjs');
export type Jax = typeof import('@jax-js/jax');

let tf: Tf | null = null;
let jax: Jax | null = null;

/** TensorFlow.js with its WebGPU backend, or null (with the reason printed) if it cannot start. */
export async function loadTfjs(): Promise<Tf | null> {
  if (tf) return tf;
  try {
    await exposeNavigator();
    const lib = await import('@tensorflow/tfjs');
    await import('@tensorflow/tfjs-backend-webgpu');
    // Otherwise tfjs computes small ops on the CPU, which would not measure a GPU dispatch.
    lib.env().set('WEBGPU_CPU_FORWARD', false);
    if (!(await lib.setBackend('webgpu'))) throw new Error('setBackend(webgpu) returned false');
    await lib.ready();
    tf = lib;
    return lib;
  } catch (e) {
    console.warn(`bench: tfjs-webgpu unavailable: ${(e as Error).message}`);
    return null;
  }
}

/** jax-js with its WebGPU backend, or null (with the reason printed). */
export async function loadJax(): Promise<Jax | null> {
  if (jax) return jax;
  try {
    await exposeNavigator();
    const lib = await import('@jax-js/jax');
    const devices = await lib.init();
    if (!devices.includes('webgpu')) throw new Error(`no webgpu device (have ${devices.join(', ')})`);
    lib.defaultDevice('webgpu');
    jax = lib;
    return lib;
  } catch (e) {
    console.warn(`bench: jax-js webgpu unavailable: ${(e as Error).message}`);
    return null;
  }
}
