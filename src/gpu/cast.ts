// Cast kernel of the GPU latent loop (cast.wgsl): dst[dstOffset + i] = scale · src[srcOffset + i] for i < count, each
// side float32 or float16, offsets in elements of any parity (a float16 word may hold one element of this cast and one
// of its neighbour, which is kept bit for bit). f32 → f16 writes a float16 UNet's input from our float32 latents,
// with the input scaling folded in; f16 → f32 reads a float16 UNet's output, or turns float16 weight bytes into a
// float32 weight where ORT cannot run float16 (no 'shader-f16', see merge.ts). The kernel itself needs no
// 'shader-f16' (half.wgsl). src and dst are bound as windows over the cast's range, so the buffers may be larger than
// one storage binding; one cast's range may not (cast in parts).
// Parameters go through the caller's uniform slots (param-slots.ts), as the sampler kernels' do.
//
// Use:
//   const cast = createCastKernels(device);
//   const params = createParamSlots(device, 2);
//   const pass = encoder.beginComputePass();
//   cast.encodeCast(pass, params, 0, { src: latents, srcOffset: 0, dst: unetInput, dstOffset: n, count: n, from: 'f32', to: 'f16', scale });
//   cast.encodeCast(pass, params, 1, { src: unetOutput, srcOffset: 0, dst: eps, dstOffset: 0, count: 2 * n, from: 'f16', to: 'f32' });
//   pass.end(); device.queue.submit([encoder.finish()]);
import { USAGE_STORAGE } from './buffers.ts';
import { bytesToHold, checkElementType, windowOf, withHalfFunctions, wordsTouched, type ElementType, type Region, type Window } from './element-type.ts';
import source from './cast.wgsl?raw';
import { dispatchGrid, writeParamSlot, type ParamSlots } from './param-slots.ts';

const WG = 256; // must match WG in cast.wgsl
const PARAMS_BYTES = 32; // struct CastParams, rounded up to 16

export interface CastDispatch {
  src: GPUBuffer;
  /** Element index of the first element read. */
  srcOffset: number;
  dst: GPUBuffer;
  /** Element index of the first element written. */
  dstOffset: number;
  count: number;
  from: ElementType;
  to: ElementType;
  /** Multiplies every value, in f32, before it is stored (default 1). */
  scale?: number;
}

export interface CastKernels {
  encodeCast(pass: GPUComputePassEncoder, params: ParamSlots, slot: number, d: CastDispatch): void;
}

/** Validates a cast; returns the src and dst binding windows (so buffers may exceed one binding, a cast may not). */
function checkCast(d: CastDispatch, maxBinding: number, alignment: number): { src: Window; dst: Window } {
  checkElementType(d.from, 'cast', 'from');
  checkElementType(d.to, 'cast', 'to');
  if (!Number.isInteger(d.count) || d.count < 1) throw new Error(`cast: count must be a positive integer, got ${d.count}`);
  for (const [what, offset] of [['srcOffset', d.srcOffset], ['dstOffset', d.dstOffset]] as const) {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`cast: ${what} must be a non-negative integer, got ${offset}`);
  }
  if (d.scale !== undefined && !Number.isFinite(d.scale)) throw new Error(`cast: non-finite scale ${d.scale}`);
  if (d.src === d.dst) throw new Error('cast: src and dst are one buffer; WebGPU cannot bind it read-only and writable in one dispatch');
  const window = (what: string, buffer: GPUBuffer, region: Region): Window => {
    const need = bytesToHold(region, d.count);
    if (buffer.size < need) throw new Error(`cast: ${what} is ${buffer.size} bytes, needs at least ${need} for ${d.count} ${region.type} at element ${region.offset}`);
    if (!(buffer.usage & USAGE_STORAGE)) throw new Error(`cast: ${what} lacks GPUBufferUsage.STORAGE`);
    const w = windowOf(region, 0, d.count, alignment);
    if (w.size > maxBinding) throw new Error(`cast: ${what} needs a ${w.size}-byte binding for ${d.count} elements, over maxStorageBufferBindingSize (${maxBinding}); cast in parts`);
    return w;
  };
  return { src: window('src', d.src, { type: d.from, offset: d.srcOffset }), dst: window('dst', d.dst, { type: d.to, offset: d.dstOffset }) };
}

export function createCastKernels(device: GPUDevice): CastKernels {
  const module = device.createShaderModule({ label: 'cast', code: withHalfFunctions(source) });
  const pipelines = new Map<string, GPUComputePipeline>();
  const pipelineFor = (from: ElementType, to: ElementType): GPUComputePipeline => {
    const key = `${from} ${to}`;
    let pipeline = pipelines.get(key);
    if (!pipeline) {
      const constants = { SRC_F16: Number(from === 'f16'), DST_F16: Number(to === 'f16') };
      pipeline = device.createComputePipeline({ label: `cast ${from} → ${to}`, layout: 'auto', compute: { module, entryPoint: 'main', constants } });
      pipelines.set(key, pipeline);
    }
    return pipeline;
  };
  const maxGrid = device.limits.maxComputeWorkgroupsPerDimension;
  const maxBinding = device.limits.maxStorageBufferBindingSize;
  const alignment = device.limits.minStorageBufferOffsetAlignment;

  return {
    encodeCast(pass, params, slot, d) {
      const windows = checkCast(d, maxBinding, alignment);
      const [gx, gy] = dispatchGrid(wordsTouched(d.to, windows.dst.index, d.count), WG, maxGrid, 'cast');
      const data = new ArrayBuffer(PARAMS_BYTES);
      new Uint32Array(data, 0, 4).set([d.count, windows.src.index, windows.dst.index, gx]);
      new Float32Array(data, 16, 1)[0] = d.scale ?? 1;
      const pipeline = pipelineFor(d.from, d.to);
      const bind = (buffer: GPUBuffer, w: Window): GPUBufferBinding => ({ buffer, offset: w.offset, size: w.size });
      const entries = [
        { binding: 0, resource: writeParamSlot(device, params, slot, data, 'cast') },
        { binding: 1, resource: bind(d.src, windows.src) },
        { binding: 2, resource: bind(d.dst, windows.dst) },
      ];
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, device.createBindGroup({ label: 'cast', layout: pipeline.getBindGroupLayout(0), entries }));
      pass.dispatchWorkgroups(gx, gy);
    },
  };
}
