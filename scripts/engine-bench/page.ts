// Browser side of `npm run bench:chromium` (scripts/bench-engine-chromium.ts bundles this file into a page): loads the
// model files the Node side serves, picks the backend exactly as the app's worker does (ort-backend.ts: onnxruntime-web's
// WebGPU build, our own GPUDevice) and runs the shared measurements. Runs on the page's main thread, not in a worker:
// the engine code is the same, and the measurements time only engine calls. Not imported by the app.
import { parseManifest } from '../../src/model/manifest.ts';
import { createModelEngine } from '../../src/pipelines/index.ts';
import { chooseBackend, ort } from '../../src/worker/ort-backend.ts';
import type { GenerateParams } from '../../src/worker/protocol.ts';
import { measureEngine, type BenchBackend, type BenchRow } from './measure.ts';
import { memorySource } from '../../src/model/source/memory.ts';

async function fetchBytes(url: string) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function loadModel(base: string) {
  const manifest = parseManifest(new TextDecoder().decode(await fetchBytes(`${base}/manifest.json`)));
  const entries = await Promise.all(manifest.files.map(async (f) => [f.path, await fetchBytes(`${base}/${f.path}`)] as const));
  return { manifest, files: new Map(entries) };
}

/** 'vendor/architecture (description)' of the device's adapter, and whether it is a software one (SwiftShader). */
function describeAdapter(device: GPUDevice | undefined, fallback: string) {
  const info = device?.adapterInfo;
  if (!info) return { adapter: fallback, software: false };
  const adapter = `${info.vendor}/${info.architecture}${info.description ? ` (${info.description})` : ''}`;
  return { adapter, software: info.isFallbackAdapter || /swiftshader/i.test(`${info.architecture} ${info.description}`) };
}

/** One backend's row; `wasmPaths` is where the page is served ORT's .wasm/.mjs files. */
async function runBackend(backend: BenchBackend, steps: number, repeats: number, modelBase: string, wasmPaths: string): Promise<BenchRow> {
  ort.env.wasm.wasmPaths = wasmPaths;
  const { manifest, files } = await loadModel(modelBase);
  const params: GenerateParams = { ...manifest.defaults, steps };
  const choice = await chooseBackend(backend);
  const engine = await createModelEngine(choice.ort, memorySource(manifest, files), { sessionOptions: choice.sessionOptions, gpu: choice.device && { device: choice.device } });
  try {
    const measured = await measureEngine(engine, params, repeats);
    return { backend, ...describeAdapter(choice.device, choice.adapter), ...measured };
  } finally {
    await engine.release();
    choice.device?.destroy();
  }
}

export const engineBench = { runBackend };
export type EngineBenchPage = typeof engineBench;
(globalThis as { engineBench?: EngineBenchPage }).engineBench = engineBench;
