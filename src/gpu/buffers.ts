// GPU buffer helpers shared by the kernels, their tests and the worker: weight-shaped storage buffers that
// onnxruntime-web can take with Tensor.fromGpuBuffer (usage STORAGE | COPY_SRC | COPY_DST), and one-shot read-back.
// Usage flags are spelled as numbers because the GPUBufferUsage global is missing in Node until `webgpu` globals load.

export const USAGE_MAP_READ = 0x1;
export const USAGE_COPY_SRC = 0x4;
export const USAGE_COPY_DST = 0x8;
export const USAGE_UNIFORM = 0x40;
export const USAGE_STORAGE = 0x80;
const MAP_MODE_READ = 0x1; // GPUMapMode.READ
/** What ORT's `Tensor.fromGpuBuffer` and our kernels need of a weight buffer. */
export const WEIGHT_USAGE = USAGE_STORAGE | USAGE_COPY_SRC | USAGE_COPY_DST;

/**
 * A storage buffer of `byteLength` bytes (rounded up to 4), optionally filled with `data`.
 * Throws naming maxBufferSize when the device cannot hold it in one buffer.
 */
export function createWeightBuffer(
  device: GPUDevice,
  byteLength: number,
  options: { label?: string; data?: ArrayBufferView; usage?: GPUBufferUsageFlags } = {},
): GPUBuffer {
  const { label, data, usage = WEIGHT_USAGE } = options;
  if (!Number.isInteger(byteLength) || byteLength < 0) throw new Error(`buffer ${label ?? ''}: bad size ${byteLength}`);
  const size = Math.max(4, Math.ceil(byteLength / 4) * 4);
  if (size > device.limits.maxBufferSize) {
    throw new Error(`buffer ${label ?? ''}: ${size} bytes exceed maxBufferSize (${device.limits.maxBufferSize})`);
  }
  if (data && data.byteLength > size) throw new Error(`buffer ${label ?? ''}: ${data.byteLength} bytes of data for ${size}`);
  const buffer = device.createBuffer({ label, size, usage, mappedAtCreation: !!data });
  if (data) {
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer.unmap();
  }
  return buffer;
}

/**
 * Overwrites a weight buffer made by createWeightBuffer with `data` from byte 0. WebGPU's writeBuffer takes sizes in
 * multiples of 4 only, so an odd tail (a float16 tensor with an odd element count) is written as one padded word.
 */
export function writeWeightBuffer(device: GPUDevice, buffer: GPUBuffer, data: ArrayBufferView): void {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength > buffer.size) throw new Error(`buffer ${buffer.label}: ${bytes.byteLength} bytes of data for ${buffer.size}`);
  const whole = bytes.byteLength - (bytes.byteLength % 4);
  if (whole > 0) device.queue.writeBuffer(buffer, 0, bytes.buffer, bytes.byteOffset, whole);
  if (whole < bytes.byteLength) {
    const tail = new Uint8Array(4);
    tail.set(bytes.subarray(whole));
    device.queue.writeBuffer(buffer, whole, tail);
  }
}

/**
 * Copies `byteLength` bytes (default: all) of a COPY_SRC buffer, from byte `offset` (a multiple of 4), to the CPU.
 * The staging buffer is destroyed.
 */
export async function readBuffer(device: GPUDevice, buffer: GPUBuffer, byteLength = buffer.size, offset = 0): Promise<ArrayBuffer> {
  const size = Math.ceil(byteLength / 4) * 4;
  if (offset % 4 !== 0 || offset + size > buffer.size) throw new Error(`readBuffer: bytes [${offset}, ${offset + size}) outside a ${buffer.size}-byte buffer or unaligned`);
  const staging = device.createBuffer({ label: 'read-back', size, usage: USAGE_MAP_READ | USAGE_COPY_DST });
  try {
    const encoder = device.createCommandEncoder({ label: 'read-back' });
    encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_MODE_READ);
    const copy = staging.getMappedRange(0, size).slice(0, byteLength);
    staging.unmap();
    return copy;
  } finally {
    staging.destroy();
  }
}
