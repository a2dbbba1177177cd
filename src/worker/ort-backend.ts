// Chooses and starts ORT's execution provider in the worker, each on its own onnxruntime-web build:
// - WebGPU: `onnxruntime-web/webgpu`, the build whose WebGPU EP accepts our own GPUDevice (ENVIRONMENT.md), compiled
//   with asyncify (a 27 MB .wasm);
// - WASM: `onnxruntime-web/wasm`, the plain build (14 MB), loaded only when chosen. Measured in Chromium 156 on the
//   embedded UNet, a page with the asyncify build took 15.5 s to a first run, with the plain one 8.8 s (the session
//   4.8-5.7 s vs 2.9 s to create): the asyncify build is bigger to fetch and to compile, and WASM needs none of it.
// 'auto' takes WebGPU on a hardware adapter and WASM otherwise: where WebGPU is missing, and where the only adapter is
// a software one (SwiftShader on a machine without a GPU), which runs the embedded UNet ~50× slower than WASM
// (ENVIRONMENT.md: 5.3 s vs 0.1 s per call; the first two images 126 s vs 0.9 s). The choice carries its reason, which
// the page shows beside the backend. An explicitly requested backend is used even on a software adapter; one that
// fails is an error, not a silent fallback.
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
  /** Why this backend: asked for, or what 'auto' found ("WebGPU adapter is software (SwiftShader)"). */
  reason: string;
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
  if (preference === 'wasm') return wasm('asked for (?backend=wasm)');
  const found = await findAdapter();
  const software = found.ok ? softwareAdapter(found.adapter.info) : undefined;
  if (preference === 'auto' && software) return wasm(`WebGPU adapter is software (${software})`);
  const gpu = found.ok ? await openDevice(found.adapter) : found;
  if (!gpu.ok) {
    if (preference === 'webgpu') throw new Error(`WebGPU was requested (?backend=webgpu) but is not available: ${gpu.reason}`);
    return wasm(`WebGPU unavailable: ${gpu.reason}`);
  }
  // On WebGPU the WebAssembly side only runs shape ops: threads would cost start-up and memory for nothing.
  ort.env.wasm.numThreads = 1;
  const adapter = found.ok ? describeAdapter(found.adapter.info) : 'webgpu';
  const reason = preference === 'webgpu' ? `asked for (?backend=webgpu)${software ? `, on a software adapter (${software})` : ''}` : `hardware adapter (${adapter})`;
  return { backend: 'webgpu', ort, adapter, device: gpu.device, reason, sessionOptions: { executionProviders: [{ name: 'webgpu', device: gpu.device } as ort.InferenceSession.ExecutionProviderConfig] } };
}

async function wasm(reason: string): Promise<BackendChoice> {
  const built = await loadWasmBuild();
  built.env.wasm.numThreads = wasmThreads();
  return { backend: 'wasm', ort: built, adapter: `wasm ×${built.env.wasm.numThreads}`, reason, sessionOptions: { executionProviders: ['wasm'] } };
}

/** Software renderers' names as adapters report them (architecture or description). */
const SOFTWARE_RENDERERS: [RegExp, string][] = [[/swiftshader/i, 'SwiftShader'], [/llvmpipe/i, 'llvmpipe'], [/lavapipe/i, 'lavapipe'], [/\bwarp\b|basic render/i, 'WARP']];

/**
 * The software renderer behind an adapter, or undefined for a hardware one. WebGPU's own flag is
 * `GPUAdapterInfo.isFallbackAdapter` (Chromium 156 has it there and no longer on the adapter); the names catch
 * browsers that do not set it. A browser that says neither is taken at its word: a GPU.
 */
export function softwareAdapter(info: GPUAdapterInfo): string | undefined {
  const text = `${info.architecture} ${info.description}`;
  const named = SOFTWARE_RENDERERS.find(([pattern]) => pattern.test(text))?.[1];
  return named ?? (info.isFallbackAdapter ? 'fallback adapter' : undefined);
}

const describeAdapter = (info: GPUAdapterInfo) => [info.vendor, info.architecture].filter(Boolean).join(' ') || 'webgpu';

async function findAdapter(): Promise<{ ok: true; adapter: GPUAdapter } | { ok: false; reason: string }> {
  if (!('gpu' in navigator) || !navigator.gpu) return { ok: false, reason: 'this browser has no navigator.gpu' };
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (!adapter) return { ok: false, reason: 'no WebGPU adapter (on Chromium without a GPU, start it with --enable-unsafe-webgpu)' };
  return { ok: true, adapter };
}

async function openDevice(adapter: GPUAdapter): Promise<{ ok: true; device: GPUDevice } | { ok: false; reason: string }> {
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
    return { ok: true, device };
  } catch (error) {
    return { ok: false, reason: `requestDevice failed: ${(error as Error).message}` };
  }
}
