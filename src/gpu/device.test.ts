// acquireDevice on Dawn + SwiftShader: real adapter limits requested, f16 reported as the adapter has it,
// device loss and uncaptured errors reach the callbacks.
import { describe, expect, it } from 'vitest';
import { acquireDevice, REQUESTED_LIMITS, type DeviceLostInfo } from './device.ts';
import { createNodeGpu, requireNodeAdapter } from './node-gpu.ts';

describe('acquireDevice', () => {
  it("requests the adapter's limits, not WebGPU's defaults", async () => {
    const gpu = await createNodeGpu();
    const adapter = await requireNodeAdapter(gpu);
    const { device, limits, hasF16, adapterInfo } = await acquireDevice(gpu);
    for (const key of REQUESTED_LIMITS) {
      expect(limits[key], key).toBe(adapter.limits[key]);
      expect(device.limits[key], key).toBe(adapter.limits[key]);
    }
    // The default binding limit is 128 MiB; SwiftShader offers 1 GiB, so this proves the request took effect.
    expect(limits.maxStorageBufferBindingSize).toBeGreaterThan(128 * 2 ** 20);
    expect(hasF16).toBe(adapter.features.has('shader-f16'));
    expect(hasF16).toBe(device.features.has('shader-f16'));
    expect(typeof adapterInfo.vendor).toBe('string');
    device.destroy();
  });

  it('does not request shader-f16 when told not to', async () => {
    const { device, hasF16 } = await acquireDevice(await createNodeGpu(), { f16: false, optionalFeatures: [] });
    expect(hasF16).toBe(false);
    expect([...device.features]).not.toContain('shader-f16');
    device.destroy();
  });

  it('reports uncaptured errors and device loss through the callbacks', async () => {
    const errors: GPUError[] = [];
    let lost: DeviceLostInfo | undefined;
    const { device } = await acquireDevice(await createNodeGpu(), {
      onUncapturedError: (e) => errors.push(e),
      onLost: (info) => (lost = info),
    });
    device.createBuffer({ size: 16, usage: 0x1 | 0x80 }); // MAP_READ | STORAGE: a validation error
    await device.queue.onSubmittedWorkDone();
    await new Promise((r) => setTimeout(r, 20));
    expect(errors.length).toBe(1);
    expect(errors[0].message).toMatch(/usage/i);
    device.destroy();
    await device.lost;
    await Promise.resolve();
    expect(lost?.reason).toBe('destroyed');
  });
});
