// Per-dispatch parameters of the sampling-loop kernels (sampler-kernels.ts, cast.ts): a uniform buffer of 256-byte slots
// that the caller owns. A slot may be rewritten after the submit that used it, because queue.writeBuffer and
// queue.submit execute in queue order. Also the 2D fold of a dispatch past maxComputeWorkgroupsPerDimension.
import { USAGE_COPY_DST, USAGE_UNIFORM } from './buffers.ts';

export const SLOT_BYTES = 256; // ≥ minUniformBufferOffsetAlignment on every adapter (WebGPU caps it at 256)
export const PARAM_USAGE = USAGE_UNIFORM | USAGE_COPY_DST;

export interface ParamSlots {
  buffer: GPUBuffer;
  slots: number;
}

/** A uniform buffer of `slots` parameter slots (`create` lets a tracker own it). */
export function createParamSlots(device: GPUDevice, slots: number, create?: (bytes: number, usage: GPUBufferUsageFlags) => GPUBuffer): ParamSlots {
  const size = slots * SLOT_BYTES;
  return { buffer: create ? create(size, PARAM_USAGE) : device.createBuffer({ label: 'sampler params', size, usage: PARAM_USAGE }), slots };
}

/** Writes a kernel's parameters into slot `slot` (`kernel` names it in errors); returns the binding range. */
export function writeParamSlot(device: GPUDevice, params: ParamSlots, slot: number, data: ArrayBuffer, kernel: string): GPUBufferBinding {
  if (!Number.isInteger(slot) || slot < 0 || slot >= params.slots) throw new Error(`${kernel}: parameter slot ${slot} outside [0, ${params.slots})`);
  device.queue.writeBuffer(params.buffer, slot * SLOT_BYTES, data);
  return { buffer: params.buffer, offset: slot * SLOT_BYTES, size: data.byteLength };
}

/** Workgroups [x, y] for `threads` threads of `workgroupSize`, folded into y past the per-dimension limit. */
export function dispatchGrid(threads: number, workgroupSize: number, maxPerDimension: number, kernel: string): [number, number] {
  const groups = Math.ceil(threads / workgroupSize);
  const x = Math.max(1, Math.min(groups, maxPerDimension)); // 0 threads: a [1, 0] no-op dispatch
  const y = Math.ceil(groups / x);
  if (y > maxPerDimension) throw new Error(`${kernel}: ${threads} threads exceed maxComputeWorkgroupsPerDimension² × ${workgroupSize}`);
  return [x, y];
}
