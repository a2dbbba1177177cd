// Chooses and starts ORT's execution provider in the worker. `onnxruntime-web/webgpu` is the build whose WebGPU EP
// accepts our own GPUDevice (ENVIRONMENT.md); it runs the WASM EP too. 'auto' tries WebGPU and falls back to WASM with
// a notice the page shows; an explicitly requested backend that fails is an error, not a silent fallback.
import * as ort from 'onnxruntime-web/webgpu';
import type { Backend, BackendPreference } from './protocol.ts';

export { ort };

export interface BackendChoice {
  backend: Backend;
  adapter: string;
  sessionOptions: ort.InferenceSession.SessionOptions;
  notice?: string;
  /** The device ORT's WebGPU EP runs on (our own, so our kernels can share buffers with it). */
  device?: GPUDevice;
}

/**
 * ORT's emscripten module and its .wasm, each at its own URL. The `onnxruntime-web/webgpu` bundle embeds that module,
 * and an embedded module starts its pthread workers from `import.meta.url`: after bundling, this worker's own script,
 * which would run the whole worker again in every pthread. Loaded from its own file (`wasmPaths.mjs`), the module's
 * pthreads start from that file. `new URL(<package path>, import.meta.url)` (not `?url`) so that Vite emits both files
 * as assets (dev: served from node_modules), while other bundlers (esbuild in scripts/bench-engine-chromium.ts) leave
 * the expression alone; such embedders set `ort.env.wasm.wasmPaths` themselves, which is then kept.
 * These are the files the webgpu build asks for (`asyncify`), not the `.jsep` ones of the plain build.
 */
const ORT_WASM_PATHS = {
  mjs: new URL('onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs', import.meta.url),
  wasm: new URL('onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm', import.meta.url),
};

/** Points ORT at its WebAssembly files of this origin (kept if an embedder set its own). */
export function useOwnWasmFiles(): void {
  ort.env.wasm.wasmPaths ??= ORT_WASM_PATHS;
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
    return { backend: 'webgpu', adapter: gpu.adapter, device: gpu.device, sessionOptions: { executionProviders: [{ name: 'webgpu', device: gpu.device } as ort.InferenceSession.ExecutionProviderConfig] } };
  }
  if (preference === 'webgpu') throw new Error(`WebGPU was requested (?backend=webgpu) but is not available: ${gpu.reason}`);
  return { ...wasm(), notice: `WebGPU unavailable (${gpu.reason}); running on WASM` };
}

function wasm(): BackendChoice {
  ort.env.wasm.numThreads = wasmThreads();
  return { backend: 'wasm', adapter: `wasm ×${ort.env.wasm.numThreads}`, sessionOptions: { executionProviders: ['wasm'] } };
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
