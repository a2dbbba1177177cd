// Streaming weights into GPU buffers (upload.ts) on Dawn/SwiftShader: read back byte for byte at every chunk size
// from 1 to 9 bytes (every alignment of a chunk boundary against every tensor start), for tensors at odd offsets,
// of odd sizes (float16 with an odd element count), with gaps, overlaps and a tensor of 0 bytes; the embedded UNet's
// external initializers found through externalInitializers; tensors copied to JS from the same pass; a corrupt byte
// and a cancel leave no buffer behind.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAnyManifest, type AnyManifest } from '../model/manifest.ts';
import { memorySource } from '../model/source/memory.ts';
import { createModelSource, verifiedChunks, type ModelChunk, type ModelSource } from '../model/source/source.ts';
import { externalInitializers, externalizeWeights, inlineTensor, readModel, writeModel } from '../onnx/model-io.ts';
import { DataType } from '../onnx/proto.ts';
import { createRandom } from '../train/random.ts';
import { readBuffer } from './buffers.ts';
import { acquireDevice } from './device.ts';
import { createNodeGpu } from './node-gpu.ts';
import { createBufferTracker } from './tracker.ts';
import { uploadWeights, type WeightPlacement } from './upload.ts';

let device: GPUDevice;
beforeAll(async () => {
  ({ device } = await acquireDevice(await createNodeGpu()));
});
afterAll(() => device?.destroy());

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A source over files made here: only `files[]` of the manifest is read by sources and the upload. */
function sourceOf(files: Record<string, Uint8Array>): ModelSource {
  const manifest = { files: Object.entries(files).map(([path, bytes]) => ({ path, bytes: bytes.byteLength, sha256: sha256(bytes) })) } as AnyManifest;
  return memorySource(manifest, new Map(Object.entries(files)));
}

function randomBytes(seed: number, length: number): Uint8Array {
  const r = createRandom(seed);
  return Uint8Array.from({ length }, () => r.int(256));
}

/** Reads every buffer back: its tensor's bytes, then zero padding up to the buffer's size. */
async function expectUploaded(buffers: Map<string, GPUBuffer>, placements: readonly WeightPlacement[], files: Record<string, Uint8Array>, why: string) {
  for (const p of placements) {
    const buffer = buffers.get(p.name)!;
    expect(buffer.size, `${why}: ${p.name} size`).toBe(Math.max(4, Math.ceil(p.bytes / 4) * 4));
    const back = new Uint8Array(await readBuffer(device, buffer));
    const expected = new Uint8Array(buffer.size);
    expected.set(files[p.file].subarray(p.offset, p.offset + p.bytes));
    expect(Buffer.from(back).equals(Buffer.from(expected)), `${why}: ${p.name} [${p.offset}, ${p.offset + p.bytes})`).toBe(true);
  }
}

const destroyAll = (buffers: Map<string, GPUBuffer>) => buffers.forEach((b) => b.destroy());

async function* tap(chunks: AsyncIterable<ModelChunk>, see: (chunk: ModelChunk) => void): AsyncGenerator<ModelChunk> {
  for await (const chunk of chunks) {
    see(chunk);
    yield chunk;
  }
}

describe('uploadWeights', () => {
  // Two files; tensors at every offset modulo 4 and of every size modulo 4 (float16 tensors of 3, 5, 7 elements are
  // 6, 10, 14 bytes), back to back, with gaps, one inside another, one of 0 bytes, one spanning most of a file.
  const files: Record<string, Uint8Array> = { 'unet/weights-00.bin': randomBytes(1, 2053), 'unet/weights-01.bin': randomBytes(2, 777) };
  const placements: WeightPlacement[] = [
    { name: 'a', file: 'unet/weights-00.bin', offset: 0, bytes: 6 },
    { name: 'b', file: 'unet/weights-00.bin', offset: 6, bytes: 10 },
    { name: 'c', file: 'unet/weights-00.bin', offset: 17, bytes: 14 },
    { name: 'd', file: 'unet/weights-00.bin', offset: 35, bytes: 1 },
    { name: 'e', file: 'unet/weights-00.bin', offset: 38, bytes: 3 },
    { name: 'f', file: 'unet/weights-00.bin', offset: 64, bytes: 1900 },
    { name: 'g-inside-f', file: 'unet/weights-00.bin', offset: 101, bytes: 33 },
    { name: 'empty', file: 'unet/weights-00.bin', offset: 1999, bytes: 0 },
    { name: 'last', file: 'unet/weights-00.bin', offset: 2050, bytes: 3 },
    { name: 'h', file: 'unet/weights-01.bin', offset: 5, bytes: 771 },
  ];

  it('writes every tensor byte for byte at every chunk size from 1 to 9 bytes, and at larger ones', async () => {
    const source = sourceOf(files);
    for (const chunkBytes of [1, 2, 3, 4, 5, 6, 7, 8, 9, 64, 1000, 4096]) {
      const progress: number[] = [];
      const result = await uploadWeights(device, source, placements, { chunkBytes, onBytes: (streamed, total) => progress.push(streamed / total) });
      await expectUploaded(result.buffers, placements, files, `chunkBytes ${chunkBytes}`);
      expect(result.streamedBytes).toBe(2053 + 777);
      expect(result.tensorBytes).toBe(placements.reduce((s, p) => s + p.bytes, 0));
      expect(progress.at(-1)).toBe(1);
      destroyAll(result.buffers);
    }
  });

  it("uploads the embedded UNet's external initializers, found in its graph, equal to the graph's own bytes", async () => {
    const models = new URL('../../models/', import.meta.url);
    const manifest = parseAnyManifest(readFileSync(new URL('manifest.json', models), 'utf8'));
    const files = new Map(manifest.files.map((f) => [f.path, new Uint8Array(readFileSync(new URL(f.path, models)))]));
    const graph = readModel(files.get('unet.onnx')!);
    const weights = externalInitializers(graph, 'unet.onnx');
    expect(weights.length).toBeGreaterThan(10);
    expect(new Set(weights.map((w) => w.file))).toEqual(new Set(['unet.onnx.data']));
    const tracker = createBufferTracker(device);
    const { buffers } = await uploadWeights(device, memorySource(manifest, files), weights, { chunkBytes: 1 << 20, tracker, owner: 'θ' });
    expect(tracker.stats().byOwner).toEqual({ θ: weights.length });
    const data = new Map([['unet.onnx.data', files.get('unet.onnx.data')!]]);
    for (const tensor of graph.graph!.initializer!.filter((t) => buffers.has(t.name!))) {
      const bytes = inlineTensor(tensor, data).rawData!;
      const back = new Uint8Array(await readBuffer(device, buffers.get(tensor.name!)!, bytes.byteLength));
      expect(Buffer.from(back).equals(Buffer.from(bytes)), tensor.name!).toBe(true);
    }
    tracker.destroyAll();
  });

  it('places float16 tensors of odd sizes from a graph in a subfolder (locations relative to the graph)', async () => {
    const r = createRandom(5);
    const half = (name: string, dims: number[]) => {
      const raw = Uint16Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => r.int(0x7c00)); // finite halves
      return { name, dims, dataType: DataType.FLOAT16, rawData: new Uint8Array(raw.buffer) };
    };
    const initializer = [half('w3', [3]), half('w5x7', [5, 7]), half('w1', [1]), half('w9x9x3', [9, 9, 3])];
    const { model, data } = externalizeWeights({ irVersion: 8, graph: { name: 'g', initializer } }, './weights.bin', 0);
    const graph = readModel(writeModel(model));
    const weights = externalInitializers(graph, 'unet/model.onnx');
    expect(weights.map((w) => [w.name, w.file, w.bytes, w.dims, w.dataType])).toEqual(initializer.map((t) => [t.name, 'unet/weights.bin', t.rawData.byteLength, t.dims, DataType.FLOAT16]));
    const files = { 'unet/weights.bin': data };
    const { buffers } = await uploadWeights(device, sourceOf(files), weights, { chunkBytes: 7 });
    await expectUploaded(buffers, weights, files, 'float16');
    destroyAll(buffers);
  });

  it('a file that starts over at offset 0 (a corrupt cache entry, then the network) ends with the good bytes', async () => {
    const good = sourceOf(files);
    const corrupt = new Map(Object.entries(files).map(([path, bytes]) => [path, bytes.map((b) => b ^ 0x5a)]));
    // As url.ts does: the cached copy's chunks until its check fails, then the download's from offset 0.
    const restarting = createModelSource(good.manifest, async function* (entry, options) {
      try {
        yield* verifiedChunks(entry, 'cache', (async function* () { yield corrupt.get(entry.path)!; })(), options);
      } catch {
        yield* good.stream(entry.path, options);
      }
    });
    const offsets: number[] = [];
    const counting: ModelSource = { ...restarting, stream: (path, options) => tap(restarting.stream(path, options), (c) => offsets.push(c.offset)) };
    const { buffers } = await uploadWeights(device, counting, placements, { chunkBytes: 301 });
    // The corrupt copy's chunks but its last (1806..2053, held back until the hash is known), then the file again.
    expect(offsets.slice(0, 8)).toEqual([0, 301, 602, 903, 1204, 1505, 0, 301]);
    await expectUploaded(buffers, placements, files, 'restarted');
    destroyAll(buffers);
  });

  it('copies the tensors wanted in JS out of the same single pass over each file', async () => {
    const source = sourceOf(files);
    const streamed: string[] = [];
    const counting: ModelSource = { ...source, stream: (path, options) => (streamed.push(path), source.stream(path, options)) };
    const [toGpu, toJs] = [placements.filter((_, i) => i % 2 === 0), placements.filter((_, i) => i % 2 === 1)];
    const { buffers, copies } = await uploadWeights(device, counting, toGpu, { chunkBytes: 5, copies: toJs });
    expect(streamed).toEqual(['unet/weights-00.bin', 'unet/weights-01.bin']);
    await expectUploaded(buffers, toGpu, files, 'with copies');
    expect([...buffers.keys()]).toEqual(toGpu.map((p) => p.name));
    for (const p of toJs) expect(Buffer.from(copies.get(p.name)!).equals(Buffer.from(files[p.file].subarray(p.offset, p.offset + p.bytes))), p.name).toBe(true);
    destroyAll(buffers);
  });

  it('a corrupt byte fails with the SHA-256 message and leaves no buffer alive', async () => {
    const tracker = createBufferTracker(device);
    const corrupt = files['unet/weights-01.bin'].slice();
    corrupt[400] ^= 1;
    const manifest = sourceOf(files).manifest; // the hashes of the good files
    const bad = memorySource(manifest, new Map([['unet/weights-00.bin', files['unet/weights-00.bin']], ['unet/weights-01.bin', corrupt]]));
    await expect(uploadWeights(device, bad, placements, { chunkBytes: 256, tracker })).rejects.toThrow(/^unet\/weights-01\.bin: SHA-256 .* does not match the manifest's/);
    expect(tracker.stats()).toMatchObject({ live: 0, created: placements.length });
  });

  it('a cancel mid-stream is an AbortError and leaves no buffer alive', async () => {
    const tracker = createBufferTracker(device);
    const controller = new AbortController();
    const run = uploadWeights(device, sourceOf(files), placements, {
      chunkBytes: 100, tracker, signal: controller.signal,
      onBytes: (streamed) => streamed >= 1000 && controller.abort(),
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(tracker.stats()).toMatchObject({ live: 0, created: placements.length });
  });

  it('refuses placements outside their file, unlisted files and a name placed twice, before making any buffer', async () => {
    const tracker = createBufferTracker(device);
    const source = sourceOf(files);
    const one = (p: Partial<WeightPlacement>) => uploadWeights(device, source, [{ name: 'x', file: 'unet/weights-01.bin', offset: 0, bytes: 4, ...p }], { tracker });
    await expect(one({ offset: 775, bytes: 4 })).rejects.toThrow('weight x: bytes 775..779 are not inside unet/weights-01.bin (777 bytes)');
    await expect(one({ offset: -1 })).rejects.toThrow(/weight x: bytes -1\.\.3 are not inside/);
    await expect(one({ bytes: 2 ** 60 })).rejects.toThrow(/are not inside/);
    await expect(one({ file: 'unet/other.bin' })).rejects.toThrow("unet/other.bin is not listed in the model's manifest");
    await expect(uploadWeights(device, source, [placements[0], placements[0]], { tracker })).rejects.toThrow('weight a is placed twice');
    await expect(uploadWeights(device, source, [placements[0]], { tracker, copies: [placements[0]] })).rejects.toThrow('weight a is placed twice');
    expect(tracker.stats().created).toBe(0);
  });

  it('names maxBufferSize when a tensor cannot be one buffer, and destroys the buffers made before it', async () => {
    const tracker = createBufferTracker(device);
    const size = device.limits.maxBufferSize + 4;
    // Refused before a byte is read: the file itself need not exist.
    const source = memorySource({ files: [{ path: 'big.bin', bytes: size + 8, sha256: '0'.repeat(64) }] } as AnyManifest, new Map());
    const run = uploadWeights(device, source, [{ name: 'small', file: 'big.bin', offset: 0, bytes: 8 }, { name: 'huge', file: 'big.bin', offset: 8, bytes: size }], { tracker });
    await expect(run).rejects.toThrow(/huge: \d+ bytes exceed maxBufferSize/);
    expect(tracker.stats()).toMatchObject({ live: 0, created: 1 });
  });
});
