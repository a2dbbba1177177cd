// Node-only: onnxruntime-web's native WebGPU EP (the build the worker uses) on Dawn from the `webgpu` package, so the
// worker's GPU path can be tested without a browser. Two shims, both for differences of Dawn-in-Node from browsers:
// Node 20 has no `navigator` (ORT looks for navigator.gpu), and Dawn's queue.writeBuffer rejects views of a
// SharedArrayBuffer ("Invalid argument"), which is what ORT's wasm heap is; such views are copied first.
// `baselineWasm` is for tests: Node 20's V8 (11.3) spends about 90 s of CPU in TurboFan (BasicBlock::GetCommonDominator,
// seen with perf) on ORT's asyncify build before the first run can finish, even for a one-Add graph; with V8's baseline
// compiler only (--liftoff-only) that run takes 0.1 s and the tiny UNet's session starts in 2 s instead of 128 s.
// Chromium's V8 does not have the problem (the same one-Add run: 0.2 s), so the page is left alone. The flag is
// process-wide and slows WASM kernels, hence off by default: benchmarks of the WASM EP keep TurboFan.
import { setFlagsFromString } from 'node:v8';
import { acquireDevice, type AcquireOptions } from '../gpu/device.ts';
import { createNodeGpu } from '../gpu/node-gpu.ts';

export async function nodeWebGpuOrt(options: AcquireOptions & { baselineWasm?: boolean } = {}) {
  if (options.baselineWasm) setFlagsFromString('--liftoff-only'); // before ORT's module is compiled
  const gpu = await createNodeGpu();
  const g = globalThis as { navigator?: { gpu?: GPU } };
  g.navigator ??= {} as { gpu?: GPU };
  Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  const acquired = await acquireDevice(gpu, options);
  patchSharedWrites(acquired.device.queue);
  const ort = (await import('onnxruntime-web/webgpu')) as typeof import('onnxruntime-web/webgpu');
  ort.env.wasm.numThreads = 1;
  return { ort, ...acquired };
}

function patchSharedWrites(queue: GPUQueue) {
  const write = queue.writeBuffer.bind(queue);
  queue.writeBuffer = ((buffer: GPUBuffer, offset: number, data: BufferSource | SharedArrayBuffer, dataOffset = 0, size?: number) => {
    if (ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer) {
      const bytesPer = (data as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
      const count = size ?? data.byteLength / bytesPer - dataOffset;
      const copy = new Uint8Array(data.buffer, data.byteOffset + dataOffset * bytesPer, count * bytesPer).slice();
      return write(buffer, offset, copy);
    }
    return write(buffer, offset, data as BufferSource, dataOffset, size);
  }) as GPUQueue['writeBuffer'];
}
