// Will this model fit? Checked before a single byte of weights is downloaded, so a model too large for the browser is
// refused with the numbers instead of crashing the tab mid-load. The limits that bite (ENVIRONMENT.md, DESIGN §4):
//   - one ArrayBuffer / one protobuf: 2 GiB, so every file the manifest lists must be below it (prepare-model shards);
//   - WASM: 4 GiB of linear memory holds every session's weights plus activations;
//   - WebGPU: each weight lives in its own GPU buffer (ORT's initializers, our weight-set inputs: no buffer holds the
//     whole model), so the largest one — a stacked [θ_pos; θ_neg] input is twice its weight — must fit
//     maxStorageBufferBindingSize and maxBufferSize; the weights resident for NPO (the files plus the θ_neg copies)
//     and the worker's merge arrays (θ_pos/θ_neg of the touched weights in the model's dtype) must fit the memory
//     we may assume.
import { isPrepared, type AnyManifest, type NpoFootprint } from './manifest.ts';

export interface DeviceLimits {
  backend: 'webgpu' | 'wasm';
  /** WebGPU adapter limits (bytes). */
  maxBufferSize?: number;
  maxStorageBufferBindingSize?: number;
  /** navigator.deviceMemory in GiB where the browser tells it (Chromium rounds it, capped at 8). */
  deviceMemoryGiB?: number;
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
  /** Weights resident on the GPU (WebGPU) or in WASM memory: the files plus NPO's θ_neg copies of touched weights. */
  residentBytes: number;
  /** The worker's own memory: the downloaded files plus NPO's merge arrays (npoWorkerArrays). */
  workerBytes: number;
}

export const ARRAY_BUFFER_LIMIT = 2 ** 31 - 1;
export const WASM_MEMORY_LIMIT = 4 * 2 ** 30;
/** Activations, ORT's arena and the page: a share of WASM memory weights cannot have. */
const WASM_HEADROOM = 0.25;
/** Chromium rounds navigator.deviceMemory down and caps it at 8 (GiB): at the cap the real memory is unknown. */
const DEVICE_MEMORY_CAP_GIB = 8;

export function checkFit(manifest: AnyManifest, limits: DeviceLimits): FitReport {
  const files = manifest.files;
  const totalBytes = files.reduce((sum, f) => sum + f.bytes, 0);
  const largest = files.reduce((max, f) => (f.bytes > max.bytes ? { path: f.path, bytes: f.bytes } : max), { path: '', bytes: 0 });
  const npo = npoBytes(manifest);
  const residentBytes = totalBytes + npo.extraResident;
  const workerBytes = totalBytes + npo.mergeArrays;
  const largestBuffer = Math.max(largestTensorBytes(manifest), npo.largestInput);
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const f of files) {
    if (f.bytes > ARRAY_BUFFER_LIMIT) problems.push(`${f.path} is ${gib(f.bytes)}, over the browser's 2 GiB per file; prepare the model again (prepare-model writes shards under 2 GiB)`);
  }
  const withNpo = npo.extraResident ? ` (${gib(totalBytes)} of files + ${gib(npo.extraResident)} of θ_neg copies for NPO)` : '';
  if (limits.backend === 'wasm' && residentBytes > WASM_MEMORY_LIMIT * (1 - WASM_HEADROOM)) {
    problems.push(`the model's ${gib(residentBytes)} of weights${withNpo} do not fit WebAssembly's 4 GiB memory with room for activations (at most ${gib(WASM_MEMORY_LIMIT * (1 - WASM_HEADROOM))}); use WebGPU or a float16 preparation`);
  }
  if (limits.backend === 'webgpu') {
    const bufferLimit = Math.min(limits.maxBufferSize ?? Infinity, limits.maxStorageBufferBindingSize ?? Infinity);
    if (largestBuffer > bufferLimit) {
      const what = npo.largestInput >= largestTensorBytes(manifest) ? 'its largest weight input (a stacked [θ_pos; θ_neg] weight for NPO)' : 'its largest weight';
      problems.push(`${what} is ${mib(largestBuffer)}, over this GPU's buffer limit of ${mib(bufferLimit)}`);
    }
  }
  const memory = limits.deviceMemoryGiB;
  if (memory) {
    const need = Math.max(workerBytes, limits.backend === 'webgpu' ? residentBytes : 0);
    const sentence = `the model needs about ${gib(need)} (${gib(totalBytes)} of files${npo.mergeArrays ? ` + ${gib(npo.mergeArrays)} of merge arrays for NPO` : ''})`;
    if (need > memory * 2 ** 30) {
      if (memory < DEVICE_MEMORY_CAP_GIB) problems.push(`${sentence}, more than this device's reported ${memory} GiB of memory`);
      else warnings.push(`${sentence}; this browser reports at least ${memory} GiB of memory and cannot tell more`);
    }
  }
  return { fits: problems.length === 0, problems, warnings, totalBytes, largest, largestBufferBytes: largestBuffer, residentBytes, workerBytes };
}

/**
 * NPO's cost beyond the files, from prepare-model's count of the weights η and δ touch (src/pipelines/unet-weights.ts):
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
 * What the worker holds for NPO beyond the files (unet-weights.ts createSets), in bytes:
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
