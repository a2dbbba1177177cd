// WGSL kernels of the GPU-resident sampling loop (sampler.wgsl; the UNet's input c_in·x_k is written by the cast
// kernel, cast.ts, which also converts to a float16 UNet's type): `step` does the CFG combine and the scheduler's linear step (src/diffusion/schedulers/linear-step.ts) in one pass,
// `preview` writes a block-averaged low-resolution x̂₀ (or x) of one image for a small read-back.
// Parameters go through a uniform buffer of 256-byte slots that the caller owns (param-slots.ts).
import { dispatchGrid, writeParamSlot, type ParamSlots } from './param-slots.ts';
import source from './sampler.wgsl?raw';

const WG = 256;
const STEP_PARAMS_BYTES = 112;
const PREVIEW_PARAMS_BYTES = 48;
export const MAX_RING = 8; // coefficients per history in StepParams (2 × vec4)

export interface StepDispatch {
  /** UNet outputs holding this image's positive and negative predictions (may be the same buffer). */
  pos: GPUBuffer;
  posOffset: number;
  neg: GPUBuffer;
  negOffset: number;
  /** Rings of `ring` × `count` floats: x history and guided-ε history. */
  xs: GPUBuffer;
  eps: GPUBuffer;
  /** z_k (`count` floats); read only when noiseCoef ≠ 0. */
  noise: GPUBuffer;
  count: number;
  slot: number;
  ring: number;
  omega: number;
  sampleCoefs: number[];
  outputCoefs: number[];
  noiseCoef: number;
}

export interface PreviewDispatch {
  /** UNet outputs of this image's two branches; read only when b ≠ 0. */
  pos: GPUBuffer;
  posOffset: number;
  neg: GPUBuffer;
  negOffset: number;
  /** Where x sits: a ring buffer and the element offset of its slot. */
  xs: GPUBuffer;
  xOffset: number;
  /** Receives channels × ⌊height/factor⌋ × ⌊width/factor⌋ floats. */
  out: GPUBuffer;
  channels: number;
  height: number;
  width: number;
  factor: number;
  omega: number;
  /** preview = block mean of a·x + b·ε. */
  a: number;
  b: number;
}

export interface SamplerKernels {
  encodeStep(pass: GPUComputePassEncoder, params: ParamSlots, slot: number, d: StepDispatch): void;
  encodePreview(pass: GPUComputePassEncoder, params: ParamSlots, slot: number, d: PreviewDispatch): void;
}

export function createSamplerKernels(device: GPUDevice): SamplerKernels {
  const module = device.createShaderModule({ label: 'sampler', code: source });
  const pipeline = (entryPoint: string) => device.createComputePipeline({ label: `sampler ${entryPoint}`, layout: 'auto', compute: { module, entryPoint } });
  const stepPipeline = pipeline('step');
  const previewPipeline = pipeline('preview');
  const maxGrid = device.limits.maxComputeWorkgroupsPerDimension;

  const grid = (count: number) => dispatchGrid(count, WG, maxGrid, 'sampler');
  const writeParams = (params: ParamSlots, slot: number, data: ArrayBuffer) => writeParamSlot(device, params, slot, data, 'sampler');
  /** Binds the parameters at 0 and `buffers` at 1, 2, … (the order of the entry point's bindings) and dispatches. */
  const dispatch = (pass: GPUComputePassEncoder, pipeline: GPUComputePipeline, uniform: GPUBufferBinding, buffers: GPUBuffer[], gx: number, gy: number) => {
    const entries = [{ binding: 0, resource: uniform }, ...buffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } }))];
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
    pass.dispatchWorkgroups(gx, gy);
  };

  return {
    encodeStep(pass, params, slot, d) {
      if (d.ring < 1 || d.ring > MAX_RING) throw new Error(`sampler: history ring of ${d.ring} slots (1..${MAX_RING})`);
      if (d.sampleCoefs.length > d.ring || d.outputCoefs.length > d.ring) throw new Error('sampler: more coefficients than history slots');
      const [gx, gy] = grid(d.count);
      const u = new ArrayBuffer(STEP_PARAMS_BYTES);
      new Uint32Array(u, 0, 8).set([d.count, d.posOffset, d.negOffset, d.slot, d.ring, gx, 0, 0]);
      const f = new Float32Array(u, 32, 20);
      f.set([d.omega, d.noiseCoef], 0);
      f.set(d.sampleCoefs, 4);
      f.set(d.outputCoefs, 12);
      dispatch(pass, stepPipeline, writeParams(params, slot, u), [d.pos, d.neg, d.xs, d.eps, d.noise], gx, gy);
    },
    encodePreview(pass, params, slot, d) {
      if (!Number.isInteger(d.factor) || d.factor < 1 || d.factor > Math.min(d.height, d.width)) throw new Error(`sampler: preview factor ${d.factor} for ${d.height}×${d.width}`);
      const count = d.channels * Math.floor(d.height / d.factor) * Math.floor(d.width / d.factor);
      const [gx, gy] = grid(count);
      const u = new ArrayBuffer(PREVIEW_PARAMS_BYTES);
      new Uint32Array(u, 0, 8).set([d.channels, d.height, d.width, d.factor, d.xOffset, d.posOffset, d.negOffset, gx]);
      new Float32Array(u, 32, 3).set([d.omega, d.a, d.b]);
      dispatch(pass, previewPipeline, writeParams(params, slot, u), [d.pos, d.neg, d.xs, d.out], gx, gy);
    },
  };
}
