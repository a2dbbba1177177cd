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

export async function chooseBackend(preference: BackendPreference): Promise<BackendChoice> {
  // One WASM thread: ORT's pthreads re-load the script that imported ORT, which after bundling is this worker itself.
  // The embedded model is small enough that threads would not pay for their start-up anyway.
  ort.env.wasm.numThreads = 1;
  if (preference === 'wasm') return wasm();
  const gpu = await probeWebGpu();
  if (gpu.ok) {
    return { backend: 'webgpu', adapter: gpu.adapter, device: gpu.device, sessionOptions: { executionProviders: [{ name: 'webgpu', device: gpu.device } as ort.InferenceSession.ExecutionProviderConfig] } };
  }
  if (preference === 'webgpu') throw new Error(`WebGPU was requested (?backend=webgpu) but is not available: ${gpu.reason}`);
  return { ...wasm(), notice: `WebGPU unavailable (${gpu.reason}); running on WASM` };
}

function wasm(): BackendChoice {
  return { backend: 'wasm', adapter: `wasm ×${ort.env.wasm.numThreads}`, sessionOptions: { executionProviders: ['wasm'] } };
}

async function probeWebGpu(): Promise<{ ok: true; device: GPUDevice; adapter: string } | { ok: false; reason: string }> {
  if (!('gpu' in navigator) || !navigator.gpu) return { ok: false, reason: 'this browser has no navigator.gpu' };
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (!adapter) return { ok: false, reason: 'no WebGPU adapter (on Chromium without a GPU, start it with --enable-unsafe-webgpu)' };
  try {
    const device = await adapter.requestDevice({
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
