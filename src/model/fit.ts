// Will this model fit? Checked before a single byte of weights is downloaded, so a model too large for the browser is
// refused with the numbers instead of crashing the tab mid-load. The limits that bite (ENVIRONMENT.md, DESIGN §4):
//   - one ArrayBuffer / one protobuf: 2 GiB, so every file the manifest lists must be below it (prepare-model shards);
//   - WASM: 4 GiB of linear memory holds every session's weights plus activations;
//   - WebGPU: each weight lives in its own GPU buffer (ORT's initializers, our weight-set inputs: no buffer holds the
//     whole model), so the largest one — a stacked [θ_pos; θ_neg] input is twice its weight — must fit
//     maxStorageBufferBindingSize and maxBufferSize; a float16 UNet needs 'shader-f16';
//   - and what the model holds in the worker's JS heap, ORT's WASM heap and on the GPU (memoryPlaces), summed, must
//     fit the memory the browser says the device has.
import { isPrepared, offsetFiles, type AnyManifest, type NpoFootprint, type OnnxComponent, type PreparedManifest } from './manifest.ts';

export interface DeviceLimits {
  backend: 'webgpu' | 'wasm';
  /** WebGPU adapter limits (bytes). */
  maxBufferSize?: number;
  maxStorageBufferBindingSize?: number;
  /** navigator.deviceMemory in GiB where the browser tells it (Chromium rounds it, capped at 8). */
  deviceMemoryGiB?: number;
  /** WebGPU: whether the device has 'shader-f16' (undefined: not known). */
  shaderF16?: boolean;
}

export interface FitReport {
  fits: boolean;
  /** Each a sentence with the numbers, for the page. */
  problems: string[];
  /** What may not fit but cannot be told (Chromium reports at most 8 GiB of device memory), for the page's notice. */
  warnings: string[];
  /** Bytes of all files; the largest file (path, bytes). */
  totalBytes: number;
  largest: { path: string; bytes: number };
  /** The largest single buffer a session is fed (a weight, or a stacked [θ_pos; θ_neg] input). */
  largestBufferBytes: number;
  /** Where the model's bytes live on this backend, with the engine as it is (memoryPlaces). */
  memory: MemoryPlaces;
}

/** Bytes the model holds in each place: the worker's JS heap, ORT's WASM heap, the GPU. */
export interface MemoryPlaces { js: number; wasm: number; gpu: number }

export const ARRAY_BUFFER_LIMIT = 2 ** 31 - 1;
export const WASM_MEMORY_LIMIT = 4 * 2 ** 30;
/** Activations, ORT's arena and the page: a share of WASM memory weights cannot have. */
const WASM_HEADROOM = 0.25;
/**
 * Bytes of UNet Conv weights the engine keeps as ORT initializers on WebGPU (src/engine/unet-files.ts: fed as inputs,
 * ORT re-lays them out on every call). They pass through the worker's JS once and ORT holds them in its WebAssembly
 * memory while it creates the session, beside the text encoders and the VAE, under its 4 GiB: 1 GiB keeps SD1.5's and
 * SDXL's largest untouched convolutions (3×3 at 1280 channels: 59 MB each in float32) and leaves SDXL fp16 room.
 */
export const KEPT_CONV_BUDGET = 1 << 30;
/**
 * On WASM the engine copies θ of the touched tensors out of the UNet's files and lets the files go once ORT has them,
 * where those tensors are at most this share of the files (LoRA offsets: the attention projections); a dense η touches
 * nearly everything, and then θ stays a view into the files, which stay (src/engine/engine.ts).
 */
export const KEEP_FILES_SHARE = 0.5;
/** Chromium rounds navigator.deviceMemory down and caps it at 8 (GiB): at the cap the real memory is unknown. */
const DEVICE_MEMORY_CAP_GIB = 8;

export function checkFit(manifest: AnyManifest, limits: DeviceLimits): FitReport {
  const files = manifest.files;
  const totalBytes = files.reduce((sum, f) => sum + f.bytes, 0);
  const largest = files.reduce((max, f) => (f.bytes > max.bytes ? { path: f.path, bytes: f.bytes } : max), { path: '', bytes: 0 });
  const npo = npoBytes(manifest);
  const largestBuffer = Math.max(largestTensorBytes(manifest), npo.largestInput);
  const memory = memoryPlaces(manifest, limits.backend);
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const f of files) {
    if (f.bytes > ARRAY_BUFFER_LIMIT) problems.push(`${f.path} is ${gib(f.bytes)}, over the browser's 2 GiB per file; prepare the model again (prepare-model writes shards under 2 GiB)`);
  }
  const withNpo = limits.backend === 'wasm' && npo.extraResident ? ` (with ${gib(npo.extraResident)} of θ_neg copies for NPO)` : '';
  if (memory.wasm > WASM_MEMORY_LIMIT * (1 - WASM_HEADROOM)) {
    const what = limits.backend === 'wasm' ? `the model's ${gib(memory.wasm)} of weights${withNpo}` : `the text encoders' and VAE's ${gib(memory.wasm)} of weights (ORT holds them in its WebAssembly memory)`;
    problems.push(`${what} do not fit WebAssembly's 4 GiB memory with room for activations (at most ${gib(WASM_MEMORY_LIMIT * (1 - WASM_HEADROOM))}); ${limits.backend === 'wasm' ? 'use WebGPU or a float16 preparation' : 'prepare the model in float16'}`);
  }
  if (limits.backend === 'webgpu') {
    const bufferLimit = Math.min(limits.maxBufferSize ?? Infinity, limits.maxStorageBufferBindingSize ?? Infinity);
    if (largestBuffer > bufferLimit) {
      const what = npo.largestInput >= largestTensorBytes(manifest) ? 'its largest weight input (a stacked [θ_pos; θ_neg] weight for NPO)' : 'its largest weight';
      problems.push(`${what} is ${mib(largestBuffer)}, over this GPU's buffer limit of ${mib(bufferLimit)}`);
    }
    // ORT's WebGPU kernels run a float16 graph only with the device feature (its MatMul programs "require f16").
    if (isPrepared(manifest) && manifest.unet.dtype === 'float16' && limits.shaderF16 === false) {
      problems.push(`its float16 UNet needs the GPU feature shader-f16 (onnxruntime-web's WebGPU kernels require it), which this adapter lacks; use WASM or a float32 preparation`);
    }
  }
  const deviceMemory = limits.deviceMemoryGiB;
  if (deviceMemory) {
    // Summed: an integrated GPU shares the machine's memory, and what cannot be told apart is counted once each.
    const need = memory.js + memory.wasm + memory.gpu;
    const sentence = `the model needs about ${gib(need)} (${gib(memory.js)} in the worker, ${gib(memory.wasm)} in WebAssembly memory${memory.gpu ? `, ${gib(memory.gpu)} on the GPU` : ''})`;
    if (need > deviceMemory * 2 ** 30) {
      if (deviceMemory < DEVICE_MEMORY_CAP_GIB) problems.push(`${sentence}, more than this device's reported ${deviceMemory} GiB of memory`);
      else warnings.push(`${sentence}; this browser reports at least ${deviceMemory} GiB of memory and cannot tell more`);
    }
  }
  return { fits: problems.length === 0, problems, warnings, totalBytes, largest, largestBufferBytes: largestBuffer, memory };
}

/**
 * Where the model's bytes are with the one engine (src/engine; README "the engine"), per backend:
 *   WebGPU  GPU:  every weight (UNet, text encoders, VAE decoder), the offsets (a dense η, LoRA factors) and NPO's
 *                 θ_neg copies; the UNet's weights come from our own buffers, streamed from the files.
 *           WASM: the text encoders' and VAE's weights (ORT's initializers, counted as held) and the UNet's Conv
 *                 weights kept as initializers (at most KEPT_CONV_BUDGET; counted in full, as if no offset touched them).
 *           JS:   the largest component read whole at a time (handed to ORT), the kept Conv weights and the LoRA files.
 *   WASM    WASM: every weight, plus the touched weights fed per call (a stacked [θ_pos; θ_neg] input twice).
 *           JS:   at its peak, the UNet's files (ORT's external data) and θ of the touched tensors copied out of them
 *                 (where they are at most KEEP_FILES_SHARE of the files; after the session is made only this copy
 *                 stays), the offsets' files, NPO's merge arrays (npoWorkerArrays) and the largest other component.
 * The VAE encoder is for training only and is not counted. Files of the embedded model are small: counted whole.
 */
export function memoryPlaces(manifest: AnyManifest, backend: DeviceLimits['backend']): MemoryPlaces {
  const total = manifest.files.reduce((sum, f) => sum + f.bytes, 0);
  if (!isPrepared(manifest)) return backend === 'webgpu' ? { js: total, wasm: total, gpu: total } : { js: total, wasm: total, gpu: 0 };
  const bytes = (component: OnnxComponent | undefined) => componentBytes(manifest, component);
  const unet = bytes(manifest.unet);
  const others = [manifest.textEncoder, manifest.sdxl?.textEncoder2, manifest.vaeDecoder].map(bytes);
  const encodersAndVae = others.reduce((a, b) => a + b, 0);
  const offsetFiles = offsetFileBytes(manifest);
  const npo = npoBytes(manifest);
  const f = manifest.npoFootprint;
  if (backend === 'webgpu') {
    const kept = Math.min(KEPT_CONV_BUDGET, unet);
    return { gpu: unet + encodersAndVae + offsetFiles.dense + offsetFiles.lora + npo.extraResident, wasm: encodersAndVae + kept, js: Math.max(...others) + kept + offsetFiles.lora };
  }
  const touched = f ? f.touchedElements * f.elementBytes : 0;
  const fed = f ? (f.stacked ? 2 : 1) * touched : 0;
  const copied = touched <= KEEP_FILES_SHARE * unet ? touched : 0;
  return { wasm: unet + encodersAndVae + fed, js: unet + copied + offsetFiles.dense + offsetFiles.lora + npo.mergeArrays + Math.max(...others), gpu: 0 };
}

/** A component's files: its graph and external data, or everything in its folder where they are not listed. */
function componentBytes(manifest: PreparedManifest, component: OnnxComponent | undefined): number {
  if (!component) return 0;
  const folder = component.file.includes('/') ? component.file.slice(0, component.file.lastIndexOf('/') + 1) : undefined;
  const listed = new Set([component.file, ...component.externalData]);
  return manifest.files.filter((f) => listed.has(f.path) || (folder && f.path.startsWith(folder))).reduce((sum, f) => sum + f.bytes, 0);
}

/** Bytes of the offsets' files: dense ones (held on the GPU, or whole in the worker on WASM) and LoRA files. */
function offsetFileBytes(manifest: PreparedManifest): { dense: number; lora: number } {
  const size = (path: string) => manifest.files.find((f) => f.path === path)?.bytes ?? 0;
  const out = { dense: 0, lora: 0 };
  for (const offset of [manifest.offsets?.eta, manifest.offsets?.delta]) {
    if (offset) out[offset.kind === 'dense' ? 'dense' : 'lora'] += offsetFiles(offset).reduce((sum, p) => sum + size(p), 0);
  }
  return out;
}

/**
 * NPO's cost beyond the files, from prepare-model's count of the weights η and δ touch (src/engine/weights-cpu.ts, weights-gpu.ts):
 * θ_neg copies of them on the device; the largest input (stacked [θ_pos; θ_neg] doubles a weight); and the worker's
 * merge arrays (npoWorkerArrays).
 */
function npoBytes(manifest: AnyManifest): { extraResident: number; largestInput: number; mergeArrays: number } {
  const f = isPrepared(manifest) ? manifest.npoFootprint : undefined;
  if (!f) return { extraResident: 0, largestInput: 0, mergeArrays: 0 };
  const worker = npoWorkerArrays(f);
  return {
    extraResident: f.touchedElements * f.elementBytes,
    largestInput: (f.stacked ? 2 : 1) * f.largestTouchedElements * f.elementBytes,
    mergeArrays: worker.sets + worker.scratch,
  };
}

/**
 * What the worker holds for NPO beyond the files (src/engine/weights-cpu.ts createSets), in bytes:
 *   sets          θ_pos and θ_neg of each touched weight in the model's dtype: stacked, one [θ_pos; θ_neg] input each;
 *                 grouped, at most the same (θ_pos is θ's file view where η leaves a weight alone, θ_neg θ_pos's array
 *                 where α = 1 and no δ) — 2 × touched × element bytes, exact for the stacked route;
 *   scratch       while one weight is merged, two float32 arrays of it per offset: a LoRA's ΔW and the stack's sum,
 *                 or a dense η's bytes copied and decoded (offsets are never held dense: they are made per weight).
 */
export function npoWorkerArrays(f: NpoFootprint): { sets: number; scratch: number } {
  return {
    sets: 2 * f.touchedElements * f.elementBytes,
    scratch: 2 * f.offsetArrays * 4 * f.largestTouchedElements,
  };
}

/** The largest single weight any session will hold, as prepare-model recorded it (0 where unknown: embedded). */
function largestTensorBytes(manifest: AnyManifest): number {
  if (!isPrepared(manifest)) return 0;
  const components = [manifest.unet, manifest.textEncoder, manifest.sdxl?.textEncoder2, manifest.vaeDecoder, manifest.vaeEncoder];
  return Math.max(0, ...components.map((c) => c?.largestTensorBytes ?? 0));
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** What a UNet call's activations may take: memory left beside the weights, and the largest single buffer. */
export interface ActivationLimits { memoryBytes?: number; maxBufferBytes?: number }

/**
 * Kernel scratch that is not a graph value (Conv's im2col, GEMM packing) and ORT's own buffers, beside the simulated
 * peak of the values: the largest value once more and 64 MiB (an inference call has no backward's second copy of it;
 * the training plan, src/train/memory-plan.ts, allows more).
 */
const activationNeed = (a: { peakBytes: number; largestBytes: number }) => a.peakBytes + a.largestBytes + 64 * 2 ** 20;

/**
 * Null when a UNet call at `size` fits; else a sentence with the numbers. `activations`: the simulated peak of the
 * UNet graph's intermediate values at that size, with attention chunked (src/engine/unet-graph.ts unetAttentionAt).
 */
export function activationFitProblem(activations: { peakBytes: number; largestBytes: number }, limits: ActivationLimits, size: string): string | null {
  const need = activationNeed(activations);
  if (limits.memoryBytes !== undefined && need > limits.memoryBytes) {
    return `at ${size} the UNet's activations need about ${gib(need)} beside its weights; this backend has ${gib(Math.max(0, limits.memoryBytes))} left for them. Choose a smaller size`;
  }
  if (limits.maxBufferBytes !== undefined && activations.largestBytes > limits.maxBufferBytes) {
    return `at ${size} the UNet needs a ${mib(activations.largestBytes)} activation buffer; this GPU allows ${mib(limits.maxBufferBytes)} per buffer. Choose a smaller size`;
  }
  return null;
}
