// GPU buffers reused by size class. A freed buffer returns to its class's free list and the
// next request of that class takes it, so a loop that allocates the same shapes each step
// creates no new GPU buffers after its first step. Classes are four per power of two, so at
// most ~19% of a buffer is slack.

// GPUBufferUsage's values, spelled out because Node defines that global only once Dawn loads.
export const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 } as const;
export const STORAGE_USAGE = USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST;

export function sizeClass(bytes: number): number {
  const b = Math.max(bytes, 256);
  const pow = 2 ** Math.floor(Math.log2(b));
  const step = Math.max(pow / 4, 256);
  return Math.ceil(b / step) * step;
}

export interface PoolStats { pooledBuffers: number; pooledBytes: number; liveBuffers: number; liveBytes: number; created: number }

export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  private stats = { pooledBuffers: 0, pooledBytes: 0, liveBuffers: 0, liveBytes: 0, created: 0 };

  constructor(private readonly device: GPUDevice, private readonly maxBufferSize: number) {}

  acquire(bytes: number, usage: number = STORAGE_USAGE, what = 'a tensor'): GPUBuffer {
    const size = sizeClass(bytes);
    if (size > this.maxBufferSize) {
      throw new Error(`medgrad: ${what} needs ${bytes} bytes, more than this device's largest buffer (${this.maxBufferSize} bytes)`);
    }
    const key = `${usage}:${size}`;
    const list = this.free.get(key);
    let buf = list?.pop();
    if (buf) {
      this.stats.pooledBuffers--;
      this.stats.pooledBytes -= size;
    } else {
      buf = this.device.createBuffer({ size, usage });
      this.stats.created++;
    }
    this.stats.liveBuffers++;
    this.stats.liveBytes += size;
    return buf;
  }

  release(buf: GPUBuffer): void {
    const key = `${buf.usage}:${buf.size}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(buf);
    this.stats.liveBuffers--;
    this.stats.liveBytes -= buf.size;
    this.stats.pooledBuffers++;
    this.stats.pooledBytes += buf.size;
  }

  /** Destroys every pooled (free) buffer, returning their memory to the driver. */
  emptyCache(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.stats.pooledBuffers = 0;
    this.stats.pooledBytes = 0;
  }

  snapshot(): PoolStats { return { ...this.stats }; }
}
