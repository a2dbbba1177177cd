// Buffer ownership for the worker's GPU state (issue 6, robustness): every buffer is created through a tracker under
// an owner name ('weights:pos', 'sampler', ...) and destroyed through it, so the live count and bytes can be read at
// any time (the e2e test checks they stay flat over many generations) and an owner's buffers go away together.
import { createWeightBuffer } from './buffers.ts';

export interface BufferTracker {
  create(owner: string, byteLength: number, options?: { label?: string; data?: ArrayBufferView; usage?: GPUBufferUsageFlags }): GPUBuffer;
  destroy(buffer: GPUBuffer): void;
  destroyOwner(owner: string): void;
  destroyAll(): void;
  stats(): { live: number; bytes: number; created: number; byOwner: Record<string, number> };
}

export function createBufferTracker(device: GPUDevice): BufferTracker {
  const live = new Map<GPUBuffer, string>();
  let created = 0;
  const tracker: BufferTracker = {
    create(owner, byteLength, options = {}) {
      const buffer = createWeightBuffer(device, byteLength, { ...options, label: options.label ?? owner });
      live.set(buffer, owner);
      created++;
      return buffer;
    },
    destroy(buffer) {
      if (!live.delete(buffer)) throw new Error(`tracker: buffer ${buffer.label} is not owned here (destroyed twice?)`);
      buffer.destroy();
    },
    destroyOwner(owner) {
      for (const [buffer, o] of [...live]) if (o === owner) tracker.destroy(buffer);
    },
    destroyAll() {
      for (const buffer of [...live.keys()]) tracker.destroy(buffer);
    },
    stats() {
      const byOwner: Record<string, number> = {};
      let bytes = 0;
      for (const [buffer, owner] of live) {
        byOwner[owner] = (byOwner[owner] ?? 0) + 1;
        bytes += buffer.size;
      }
      return { live: live.size, bytes, created, byOwner };
    },
  };
  return tracker;
}
