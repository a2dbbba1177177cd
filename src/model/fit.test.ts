// The fit check refuses, before any download, what the browser cannot hold, and says why with the numbers.
import { describe, expect, it } from 'vitest';
import { activationFitProblem, checkFit, KEPT_CONV_BUDGET, npoWorkerArrays } from './fit.ts';
import type { NpoFootprint, PreparedManifest } from './manifest.ts';
import { deltaSites } from './npo-memory.ts';
import { numel, SDXL_UNET_CONFIG, unetParameters } from './unet-params.ts';

const component = (file: string, largestTensorBytes: number) => ({ file, externalData: [], inputs: {}, outputs: [], dtype: 'float32' as const, largestTensorBytes });
/** SD1.5 fp32 as prepare-model would describe it: 3.44 GB of UNet weights in two shards, 492 MB text encoder, 198 MB VAE. */
const sd15 = {
  format: 2, kind: 'sd15', name: 'sd15', status: 'prepared',
  unet: component('unet/model.onnx', 1280 * 2560 * 4 * 3 * 3 / 4), textEncoder: component('text_encoder/model.onnx', 49408 * 768 * 4), vaeDecoder: component('vae_decoder/model.onnx', 512 * 512 * 9 * 4),
  files: [
    { path: 'unet/weights-00.bin', bytes: 1_900_000_000, sha256: '' },
    { path: 'unet/weights-01.bin', bytes: 1_538_000_000, sha256: '' },
    { path: 'text_encoder/model.onnx', bytes: 492_000_000, sha256: '' },
    { path: 'vae_decoder/model.onnx', bytes: 198_000_000, sha256: '' },
  ],
} as unknown as PreparedManifest;

describe('checkFit', () => {
  it('lets SD1.5 fp32 onto a WebGPU adapter with 1 GiB buffers', () => {
    const report = checkFit(sd15, { backend: 'webgpu', maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30 });
    expect(report).toMatchObject({ fits: true, problems: [], totalBytes: 4_128_000_000 });
  });

  it('refuses SD1.5 fp32 on WASM (4 GiB memory) with the numbers', () => {
    const report = checkFit(sd15, { backend: 'wasm' });
    expect(report.fits).toBe(false);
    expect(report.problems.join()).toMatch(/3\.84 GiB of weights do not fit WebAssembly's 4 GiB/);
  });

  it('refuses a weight larger than the adapter buffer limit, naming both sizes', () => {
    const report = checkFit(sd15, { backend: 'webgpu', maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 128 * 2 ** 20 });
    expect(report.problems).toEqual(['its largest weight is 145 MiB, over this GPU\'s buffer limit of 128 MiB']);
  });

  it('refuses a file over 2 GiB (an unsharded export)', () => {
    const big = { ...sd15, files: [{ path: 'unet/weights.pb', bytes: 3_438_000_000, sha256: '' }] } as PreparedManifest;
    expect(checkFit(big, { backend: 'webgpu' }).problems[0]).toMatch(/unet\/weights\.pb is 3\.20 GiB, over the browser's 2 GiB per file/);
  });

  it('still reports the totals and the largest buffer of a model that fits; on WebGPU the UNet is on the GPU only', () => {
    const report = checkFit(sd15, { backend: 'webgpu' });
    expect(report).toMatchObject({ warnings: [], largestBufferBytes: 49408 * 768 * 4 });
    // Every weight on the GPU; the text encoder and VAE in WebAssembly memory too, and the UNet's Conv weights kept as
    // initializers (at most KEPT_CONV_BUDGET), which also pass through the worker, which reads one component whole at a time.
    expect(report.memory).toEqual({ gpu: 4_128_000_000, wasm: 690_000_000 + KEPT_CONV_BUDGET, js: 492_000_000 + KEPT_CONV_BUDGET });
    // On WASM every weight is in WebAssembly memory, and the UNet's files stay in the worker for ORT and the merge.
    expect(checkFit(sd15, { backend: 'wasm' }).memory).toEqual({ wasm: 4_128_000_000, js: 3_438_000_000 + 492_000_000, gpu: 0 });
  });

  it('refuses a float16 UNet on a WebGPU device without shader-f16 (ORT cannot run it there)', () => {
    const fp16 = { ...sd15, unet: { ...sd15.unet, dtype: 'float16' } } as PreparedManifest;
    expect(checkFit(fp16, { backend: 'webgpu', shaderF16: false }).problems).toEqual(['its float16 UNet needs the GPU feature shader-f16 (onnxruntime-web\'s WebGPU kernels require it), which this adapter lacks; use WASM or a float32 preparation']);
    expect(checkFit(fp16, { backend: 'webgpu', shaderF16: true }).fits).toBe(true);
  });
});

// SDXL base in fp16 as prepare-model describes it, from the exact parameter list of diffusers' SDXL UNet
// (unet-params.ts): UNet 2,567,463,684 parameters; CLIP-L 123,060,480 and OpenCLIP-bigG 694,659,840 (with projection);
// the VAE decoder kept float32 (force_upcast) 49,490,179 parameters. Their largest tensors: the UNet's
// ff.net.0.proj [10240, 1280], the encoders' token embeddings [49408, 768] and [49408, 1280], the VAE's 3×3 convs.
describe('checkFit for SDXL fp16 (per tensor and total)', () => {
  const params = unetParameters(SDXL_UNET_CONFIG);
  const unetElements = params.reduce((a, p) => a + numel(p.shape), 0);
  const largestUnet = Math.max(...params.map((p) => numel(p.shape)));
  const sites = deltaSites(params);
  const files = [
    ...[0, 1, 2].map((i) => ({ path: `unet/weights-0${i}.bin`, bytes: Math.ceil((2 * unetElements) / 3), sha256: '' })),
    { path: 'text_encoder/model.onnx_data', bytes: 2 * 123_060_480, sha256: '' },
    { path: 'text_encoder_2/model.onnx_data', bytes: 2 * 694_659_840, sha256: '' },
    { path: 'vae_decoder/model.onnx_data', bytes: 4 * 49_490_179, sha256: '' },
  ];
  const sdxl = (npoFootprint?: NpoFootprint) => ({
    ...sd15, kind: 'sdxl', files, npoFootprint,
    unet: component('unet/model.onnx', 2 * largestUnet), textEncoder: component('text_encoder/model.onnx', 2 * 49408 * 768),
    vaeDecoder: component('vae_decoder/model.onnx', 4 * 512 * 512 * 9), sdxl: { textEncoder2: component('text_encoder_2/model.onnx', 2 * 49408 * 1280) },
  }) as unknown as PreparedManifest;
  /** The released NPO LoRA δ on all 560 attention projections: stacked [θ_pos; θ_neg] there. */
  const loraDelta: NpoFootprint = {
    touchedElements: sites.reduce((a, p) => a + numel(p.shape), 0), largestTouchedElements: Math.max(...sites.map((p) => numel(p.shape))),
    stacked: true, offsetArrays: 1, elementBytes: 2,
  };
  /** DPO-SDXL (dense η, a full fine-tune) and δ: every UNet weight touched, θ_pos and θ_neg separate (grouped). */
  const denseEta: NpoFootprint = { touchedElements: unetElements, largestTouchedElements: largestUnet, stacked: false, offsetArrays: 2, elementBytes: 2 };

  it('the largest buffer is text_encoder_2\'s token embedding (121 MiB): fits the default 128 MiB, not 64 MiB', () => {
    expect(sites).toHaveLength(560);
    const limits = { backend: 'webgpu' as const, maxBufferSize: 256 * 2 ** 20, maxStorageBufferBindingSize: 128 * 2 ** 20 };
    expect(checkFit(sdxl(loraDelta), limits)).toMatchObject({ fits: true, largestBufferBytes: 2 * 49408 * 1280 });
    const small = checkFit(sdxl(loraDelta), { ...limits, maxStorageBufferBindingSize: 64 * 2 ** 20 });
    expect(small.problems).toEqual(['its largest weight is 121 MiB, over this GPU\'s buffer limit of 64 MiB']);
  });

  it('a stacked [θ_pos; θ_neg] input counts twice its weight against the buffer limit', () => {
    // attn2's to_k/to_v [1280, 2048] are the largest attention projections: stacked in fp16, 10 MiB
    expect(loraDelta.largestTouchedElements).toBe(1280 * 2048);
    const tiny = { ...sdxl(loraDelta), sdxl: { textEncoder2: component('t', 0) }, textEncoder: component('t', 0), vaeDecoder: component('v', 0), unet: component('u', 0) } as unknown as PreparedManifest;
    const report = checkFit(tiny, { backend: 'webgpu', maxStorageBufferBindingSize: 8 * 2 ** 20 });
    expect(report.largestBufferBytes).toBe(2 * 2 * 1280 * 2048);
    expect(report.problems).toEqual(['its largest weight input (a stacked [θ_pos; θ_neg] weight for NPO) is 10 MiB, over this GPU\'s buffer limit of 8 MiB']);
  });

  it('places: on WebGPU every weight and NPO\'s θ_neg copies on the GPU, of the UNet only kept Conv weights in the worker and WebAssembly', () => {
    const [unet, te1, te2, vae] = [2 * unetElements, 2 * 123_060_480, 2 * 694_659_840, 4 * 49_490_179];
    const lora = checkFit(sdxl(loraDelta), { backend: 'webgpu' });
    expect(lora.totalBytes).toBeCloseTo(unet + te1 + te2 + vae, -1);
    // θ_neg at δ's sites (stacked [θ_pos; θ_neg]) is the only copy NPO adds; of the UNet's 5 GB only the kept Conv
    // weights pass through JS and WASM
    expect(lora.memory.gpu - lora.totalBytes).toBe(2 * loraDelta.touchedElements);
    expect(lora.memory.wasm).toBe(te1 + te2 + vae + KEPT_CONV_BUDGET);
    expect(lora.memory.js).toBe(te2 + KEPT_CONV_BUDGET); // the largest component, read whole before ORT takes it
    const dense = checkFit(sdxl(denseEta), { backend: 'webgpu' });
    expect(dense.memory.gpu - dense.totalBytes).toBe(2 * unetElements); // θ_neg everywhere: θ_pos + θ_neg + η is 3× the UNet
    // On WASM the UNet is in WebAssembly memory and its files in the worker, with [θ_pos; θ_neg] per touched weight there
    const wasm = checkFit(sdxl(loraDelta), { backend: 'wasm' });
    expect(wasm.memory.wasm - (unet + te1 + te2 + vae)).toBeCloseTo(2 * 2 * loraDelta.touchedElements, -1);
    // JS at its peak: the files, θ of the touched sites copied out of them (then the files go), the merge arrays
    expect(wasm.memory.js - unet - te2).toBe(2 * loraDelta.touchedElements + 2 * 2 * loraDelta.touchedElements + 2 * 4 * 1280 * 2048);
    // A dense η touches everything: θ stays a view into the files (no copy); its η files and merge arrays come on top
    const denseWasm = checkFit(sdxl(denseEta), { backend: 'wasm' });
    const { sets, scratch } = npoWorkerArrays(denseEta);
    expect(denseWasm.memory.js - unet - te2 - sets - scratch).toBe(0); // the fixture lists no η file
    // WASM cannot hold SDXL; a 4 GiB device refuses, Chromium's 8 GiB cap only warns
    expect(wasm.problems[0]).toMatch(/^the model's \d+\.\d\d GiB of weights \(with 1\.\d\d GiB of θ_neg copies for NPO\) do not fit WebAssembly/);
    const four = checkFit(sdxl(loraDelta), { backend: 'webgpu', deviceMemoryGiB: 4 });
    expect(four.problems[0]).toMatch(/needs about \d+\.\d\d GiB \(\d\.\d\d GiB in the worker, \d\.\d\d GiB in WebAssembly memory, \d\.\d\d GiB on the GPU\), more than this device's reported 4 GiB/);
    const capped = checkFit(sdxl(loraDelta), { backend: 'webgpu', deviceMemoryGiB: 8 });
    expect(capped).toMatchObject({ fits: true });
    expect(capped.warnings[0]).toMatch(/reports at least 8 GiB of memory and cannot tell more/);
  });
});

describe('activations at a size', () => {
  const MiB = 2 ** 20;
  it('fits when the peak, the largest value again and 64 MiB of scratch fit what is left', () => {
    expect(activationFitProblem({ peakBytes: 100 * MiB, largestBytes: 36 * MiB }, { memoryBytes: 200 * MiB }, '512×512')).toBeNull();
    expect(activationFitProblem({ peakBytes: 100 * MiB, largestBytes: 37 * MiB }, { memoryBytes: 200 * MiB }, '512×512')).toMatch(/at 512×512 the UNet's activations need about 0\.20 GiB beside its weights/);
  });
  it("refuses an activation over the GPU's per-buffer limit, naming both sizes", () => {
    expect(activationFitProblem({ peakBytes: 300 * MiB, largestBytes: 256 * MiB }, { maxBufferBytes: 128 * MiB }, '1024×1024')).toBe(
      "at 1024×1024 the UNet needs a 256 MiB activation buffer; this GPU allows 128 MiB per buffer. Choose a smaller size");
  });
});
