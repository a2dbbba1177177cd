// Weight buffers: data round-trips through the GPU byte-exact; sizes over maxBufferSize fail with the limit's name.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWeightBuffer, readBuffer, WEIGHT_USAGE, writeWeightBuffer } from './buffers.ts';
import { acquireDevice } from './device.ts';
import { createNodeGpu } from './node-gpu.ts';

let device: GPUDevice;
beforeAll(async () => {
  ({ device } = await acquireDevice(await createNodeGpu()));
});
afterAll(() => device?.destroy());

describe('weight buffers', () => {
  it('uploads and reads back exactly, odd byte lengths included', async () => {
    const data = new Uint16Array([1, 2, 3, 65535, 7]); // 10 bytes: buffer rounds up to 12
    const buffer = createWeightBuffer(device, data.byteLength, { data, label: 'w' });
    expect(buffer.size).toBe(12);
    expect(buffer.usage).toBe(WEIGHT_USAGE);
    expect(new Uint16Array(await readBuffer(device, buffer, 10))).toEqual(data);
    const f = new Float32Array([Math.PI, -0, 1e-40, -3.5e38]);
    const fb = createWeightBuffer(device, f.byteLength, { data: f });
    expect(new Float32Array(await readBuffer(device, fb))).toEqual(f);
    buffer.destroy();
    fb.destroy();
  });

  it('rewrites a buffer with an odd byte length (a float16 tensor of odd size) exactly', async () => {
    const first = new Uint16Array([1, 2, 3, 4, 5]); // 10 bytes: not a multiple of 4, which writeBuffer refuses
    const buffer = createWeightBuffer(device, first.byteLength, { data: first });
    const second = new Uint16Array([9, 8, 7, 6, 5, 4, 3]).subarray(1, 6); // at a byte offset of 2, too
    device.pushErrorScope('validation');
    writeWeightBuffer(device, buffer, second);
    expect((await device.popErrorScope())?.message).toBeUndefined();
    expect(new Uint16Array(await readBuffer(device, buffer, 10))).toEqual(second);
    expect(() => writeWeightBuffer(device, buffer, new Uint8Array(13))).toThrow(/13 bytes of data for 12/);
    buffer.destroy();
  });

  it('names maxBufferSize when a weight cannot fit one buffer', () => {
    const over = device.limits.maxBufferSize + 4;
    expect(() => createWeightBuffer(device, over, { label: 'huge' })).toThrow(/huge: \d+ bytes exceed maxBufferSize/);
    expect(() => createWeightBuffer(device, 8, { data: new Float32Array(3) })).toThrow(/12 bytes of data for 8/);
  });
});
