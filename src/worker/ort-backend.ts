// Chooses and starts ORT's execution provider in the worker, each on its own onnxruntime-web build:
// - WebGPU: `onnxruntime-web/webgpu`, the build whose WebGPU EP accepts our own GPUDevice (ENVIRONMENT.md), compiled
//   with asyncify (a 27 MB .wasm);
// - WASM: `onnxruntime-web/wasm`, the plain build (14 MB), loaded only when chosen. Measured in Chromium 156 on the
//   embedded UNet, a page with the asyncify build took 15.5 s to a first run, with the plain one 8.8 s (the session
//   4.8-5.7 s vs 2.9 s to create): the asyncify build is bigger to fetch and to compile, and WASM needs none of it.
// 'auto' tries WebGPU and falls back to WASM with a notice the page shows; an explicitly requested backend that fails is
// an error, not a silent fallback.
import * as ort from 'onnxruntime-web/webgpu';
import type { Backend, BackendPreference } from './protocol.ts';

/** The WebGPU build; also the one transformers.js shares in the CLIP worker (clip-worker.ts). */
export { ort };
export type Ort = typeof ort;

export interface BackendChoice {
  backend: Backend;
  /** The onnxruntime-web build that runs this backend: sessions and tensors must come from it. */
  ort: Ort;
  adapter: string;
  sessionOptions: ort.InferenceSession.SessionOptions;
  notice?: string;
  /** The device ORT's WebGPU EP runs on (our own, so our kernels can share buffers with it). */
  device?: GPUDevice;
}

/**
 * ORT's emscripten modules and their .wasm, each at its own URL. The `onnxruntime-web/webgpu` bundle embeds its module,
 * and an embedded module starts its pthread workers from `import.meta.url`: after bundling, this worker's own script,
 * which would run the whole worker again in every pthread. Loaded from its own file (`wasmPaths.mjs`), the module's
 * pthreads start from that file. `new URL(<package path>, import.meta.url)` (not `?url`) so that Vite emits both files
 * as assets (dev: served from node_modules), while other bundlers (esbuild in scripts/bench-engine-chromium.ts) leave
 * the expression alone; such embedders set `ort.env.wasm.wasmPaths` themselves, which is then kept.
 * The webgpu build asks for the `asyncify` files, the wasm build for the plain ones.
 */
const ORT_WASM_PATHS = {
  webgpu: {
    mjs: new URL('onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs', import.meta.url),
    wasm: new URL('onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm', import.meta.url),
  },
  wasm: {
    mjs: new URL('onnxruntime-web/ort-wasm-simd-threaded.mjs', import.meta.url),
    wasm: new URL('onnxruntime-web/ort-wasm-simd-threaded.wasm', import.meta.url),
  },
};

/**
 * Points the WebGPU build at its WebAssembly files of this origin. An embedder that set `ort.env.wasm.wasmPaths` to a
 * folder (a string) keeps it, and the WASM build gets the same folder.
 */
export function useOwnWasmFiles(): void {
  ort.env.wasm.wasmPaths ??= ORT_WASM_PATHS.webgpu;
}

let wasmBuild: Promise<Ort> | undefined;
/** The plain WASM build, fetched the first time WASM is chosen. */
function loadWasmBuild(): Promise<Ort> {
  wasmBuild ??= import('onnxruntime-web/wasm').then((built) => {
    const folder = ort.env.wasm.wasmPaths;
    built.env.wasm.wasmPaths ??= typeof folder === 'string' ? folder : ORT_WASM_PATHS.wasm;
    return built as unknown as Ort;
  });
  return wasmBuild;
}

/** WASM threads: they need SharedArrayBuffer, i.e. cross-origin isolation (COOP/COEP, vite.config.ts); else one. */
function wasmThreads(): number {
  if (!globalThis.crossOriginIsolated) return 1;
  return Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
}

export async function chooseBackend(preference: BackendPreference): Promise<BackendChoice> {
  // Settings are read once, when ORT's first session starts its WebAssembly; a later call (device-loss recovery)
  // sets the same values.
  useOwnWasmFiles();
  if (preference === 'wasm') return wasm();
  const gpu = await probeWebGpu();
  if (gpu.ok) {
    // On WebGPU the WebAssembly side only runs shape ops: threads would cost start-up and memory for nothing.
    ort.env.wasm.numThreads = 1;
    return { backend: 'webgpu', ort, adapter: gpu.adapter, device: gpu.device, sessionOptions: { executionProviders: [{ name: 'webgpu', device: gpu.device } as ort.InferenceSession.ExecutionProviderConfig] } };
  }
  if (preference === 'webgpu') throw new Error(`WebGPU was requested (?backend=webgpu) but is not available: ${gpu.reason}`);
  return { ...(await wasm()), notice: `WebGPU unavailable (${gpu.reason}); running on WASM` };
}

async function wasm(): Promise<BackendChoice> {
  const built = await loadWasmBuild();
  built.env.wasm.numThreads = wasmThreads();
  return { backend: 'wasm', ort: built, adapter: `wasm ×${built.env.wasm.numThreads}`, sessionOptions: { executionProviders: ['wasm'] } };
}

async function probeWebGpu(): Promise<{ ok: true; device: GPUDevice; adapter: string } | { ok: false; reason: string }> {
  if (!('gpu' in navigator) || !navigator.gpu) return { ok: false, reason: 'this browser has no navigator.gpu' };
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (!adapter) return { ok: false, reason: 'no WebGPU adapter (on Chromium without a GPU, start it with --enable-unsafe-webgpu)' };
  try {
    const device = await adapter.requestDevice({
      // shader-f16 where the adapter has it, as ORT asks for its own devices: training's fp16 weights need it
      requiredFeatures: adapter.features.has('shader-f16') ? ['shader-f16'] : [],
      requiredLimits: {
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxBufferSize: adapter.limits.maxBufferSize,
        maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      },
    });
    const info = adapter.info;
    return { ok: true, device, adapter: [info.vendor, info.architecture].filter(Boolean).join(' ') || 'webgpu' };
  } catch (error) {
    return { ok: false, reason: `requestDevice failed: ${(error as Error).message}` };
  }
}
