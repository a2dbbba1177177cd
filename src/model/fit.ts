// Will this model fit? Checked before a single byte of weights is downloaded, so a model too large for the browser is
// refused with the numbers instead of crashing the tab mid-load. The limits that bite (ENVIRONMENT.md, DESIGN §4):
//   - one ArrayBuffer / one protobuf: 2 GiB, so every file the manifest lists must be below it (prepare-model shards);
//   - WASM: 4 GiB of linear memory holds every session's weights plus activations;
//   - WebGPU: each weight lives in one GPU buffer, so the largest tensor must fit maxStorageBufferBindingSize and
//     maxBufferSize; the weights resident for NPO (θ_pos plus the θ_neg copies) must fit the memory we may assume.
import { isPrepared, type AnyManifest } from './manifest.ts';

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
  /** Bytes of all files; the largest file (path, bytes). */
  totalBytes: number;
  largest: { path: string; bytes: number };
}

export const ARRAY_BUFFER_LIMIT = 2 ** 31 - 1;
export const WASM_MEMORY_LIMIT = 4 * 2 ** 30;
/** Activations, ORT's arena and the page: a share of WASM memory weights cannot have. */
const WASM_HEADROOM = 0.25;

export function checkFit(manifest: AnyManifest, limits: DeviceLimits): FitReport {
  const files = manifest.files;
  const totalBytes = files.reduce((sum, f) => sum + f.bytes, 0);
  const largest = files.reduce((max, f) => (f.bytes > max.bytes ? { path: f.path, bytes: f.bytes } : max), { path: '', bytes: 0 });
  const problems: string[] = [];
  for (const f of files) {
    if (f.bytes > ARRAY_BUFFER_LIMIT) problems.push(`${f.path} is ${gib(f.bytes)}, over the browser's 2 GiB per file; prepare the model again (prepare-model writes shards under 2 GiB)`);
  }
  if (limits.backend === 'wasm' && totalBytes > WASM_MEMORY_LIMIT * (1 - WASM_HEADROOM)) {
    problems.push(`the model's ${gib(totalBytes)} of weights do not fit WebAssembly's 4 GiB memory with room for activations (at most ${gib(WASM_MEMORY_LIMIT * (1 - WASM_HEADROOM))}); use WebGPU or a float16 preparation`);
  }
  if (limits.backend === 'webgpu') {
    const bufferLimit = Math.min(limits.maxBufferSize ?? Infinity, limits.maxStorageBufferBindingSize ?? Infinity);
    const largestTensor = largestTensorBytes(manifest);
    if (largestTensor > bufferLimit) problems.push(`its largest weight is ${mib(largestTensor)}, over this GPU's buffer limit of ${mib(bufferLimit)}`);
    if (limits.deviceMemoryGiB && totalBytes > limits.deviceMemoryGiB * 2 ** 30) {
      problems.push(`the model's ${gib(totalBytes)} exceed this device's reported ${limits.deviceMemoryGiB} GiB of memory`);
    }
  }
  return { fits: problems.length === 0, problems, totalBytes, largest };
}

/** The largest single weight any session will hold, as prepare-model recorded it (0 where unknown: embedded). */
function largestTensorBytes(manifest: AnyManifest): number {
  if (!isPrepared(manifest)) return 0;
  const components = [manifest.unet, manifest.textEncoder, manifest.sdxl?.textEncoder2, manifest.vaeDecoder, manifest.vaeEncoder];
  return Math.max(0, ...components.map((c) => c?.largestTensorBytes ?? 0));
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
