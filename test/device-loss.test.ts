// Device loss, simulated by destroying the GPUDevice behind the engine's back: the old engine's
// tensors refuse to run with a DeviceLostError, and init() makes a new engine on a new device
// and says so. (Its own file: it ends its process's first device.)
import { describe, expect, it, vi } from 'vitest';
import * as E from '../engine/node.js';

describe('device loss', () => {
  it('init() replaces a lost device with a new engine, and old tensors say they are gone', async () => {
    const first = await E.init();
    const engine = E.getEngine();
    const x = E.tensor([1, 2, 3]);
    expect(Array.from(await x.add(1).data())).toEqual([2, 3, 4]);
    first.gpu.destroy(); // not through the engine: an unexpected loss
    await first.gpu.lost;
    expect(engine.lost).toBe(true);
    expect(() => x.add(1)).toThrow(E.DeviceLostError);
    await expect(x.data()).rejects.toThrow(/device that was lost/);

    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const second = await E.init();
    expect(warn.mock.calls.flat().join(' ')).toMatch(/device was lost.*new engine/);
    warn.mockRestore();
    expect(second).not.toBe(first);
    expect(E.getEngine()).not.toBe(engine);
    // An op on a lost tensor is refused before it allocates anything on the new engine.
    expect(() => x.mul(3)).toThrow(E.DeviceLostError);
    expect(E.memory().tensors).toBe(0);
    const y = E.tensor([4, 5]);
    const z = y.mul(2);
    expect(Array.from(await z.data())).toEqual([8, 10]);
    expect(await E.init()).toBe(second);
    expect(E.memory().tensors).toBe(2); // the new engine counts only its own tensors
    E.dispose([y, z]);
    x.dispose(); // disposing a lost engine's tensor is harmless
  });
});
