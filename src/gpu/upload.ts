// Weight bytes from a model source straight into GPU buffers (DESIGN decision 7): each data file is streamed once,
// in order, in bounded chunks, and every tensor's bytes are written into its own weight buffer (made through
// tracker.ts: usage STORAGE | COPY_SRC | COPY_DST, what Tensor.fromGpuBuffer takes) as they pass. JS holds a chunk at
// a time, never a shard. Tensors may span chunks and chunks hold many tensors; bytes between tensors are skipped. A
// chunk that comes again (a source restarting a file at offset 0) rewrites the same positions. On an error or a
// cancel every buffer made so far is destroyed: nothing half-written is left on the GPU.
import { ManifestError } from '../model/manifest.ts';
import { listedFile, type ModelChunk, type ModelSource } from '../model/source/source.ts';
import { createBufferTracker, type BufferTracker } from './tracker.ts';

/** Where one tensor's bytes are: `bytes` bytes of the model file `file` (a manifest path) from `offset`. */
export interface WeightPlacement {
  name: string;
  file: string;
  offset: number;
  bytes: number;
}

export interface UploadOptions {
  /** Bytes held in JS at a time (default: the source's, 8 MiB). */
  chunkBytes?: number;
  signal?: AbortSignal;
  /** Bytes of the files streamed so far, of `total` (whole files, the bytes between tensors included). */
  onBytes?: (streamed: number, total: number) => void;
  /** The tracker the buffers are made through (the engine's, so its GPU byte counts include them), under `owner`. */
  tracker?: BufferTracker;
  owner?: string;
  /**
   * Tensors wanted in JS instead, copied out of the same pass over the files: initializers kept in the ONNX graph
   * (inlined) where feeding them from a GPU buffer costs more, without reading a shard twice or holding it whole.
   */
  copies?: readonly WeightPlacement[];
}

export interface UploadedWeights {
  /** One buffer per placement, by tensor name; its size is the tensor's rounded up to 4 (zero padding). */
  buffers: Map<string, GPUBuffer>;
  /** The bytes of each of `options.copies`, by tensor name. */
  copies: Map<string, Uint8Array>;
  /** Bytes read from the source (whole files) and bytes written into buffers. */
  streamedBytes: number;
  tensorBytes: number;
  /** From the first request to the GPU having taken every write. */
  ms: number;
}

/**
 * writeBuffer copies into staging memory that the GPU process drains later; a multi-GB upload waits for it every
 * this many bytes, so staging stays bounded too.
 */
const SETTLE_EVERY_BYTES = 64 << 20;

export async function uploadWeights(device: GPUDevice, source: ModelSource, placements: readonly WeightPlacement[], options: UploadOptions = {}): Promise<UploadedWeights> {
  const { chunkBytes, signal, onBytes, tracker = createBufferTracker(device), owner = 'weights', copies = [] } = options;
  const start = performance.now();
  const files = planFiles(source, placements, copies);
  const total = files.reduce((sum, f) => sum + f.bytes, 0);
  const buffers = new Map<string, GPUBuffer>();
  const copied = new Map(copies.map((p) => [p.name, new Uint8Array(p.bytes)]));
  try {
    await createBuffers(device, placements, (p) => buffers.set(p.name, tracker.create(owner, p.bytes, { label: p.name })));
    let streamed = 0;
    let unsettled = 0;
    for (const file of files) {
      const write = fileWriter(device.queue, file.tensors, buffers);
      for await (const chunk of source.stream(file.path, { chunkBytes, signal, onBytes: (received) => onBytes?.(streamed + received, total) })) {
        write(chunk);
        for (const p of file.copies) copyOverlap(chunk, p, copied.get(p.name)!);
        unsettled += chunk.bytes.byteLength;
        if (unsettled >= SETTLE_EVERY_BYTES) {
          await device.queue.onSubmittedWorkDone();
          unsettled = 0;
        }
      }
      streamed += file.bytes;
    }
    await device.queue.onSubmittedWorkDone();
    const tensorBytes = placements.reduce((sum, p) => sum + p.bytes, 0);
    return { buffers, copies: copied, streamedBytes: streamed, tensorBytes, ms: performance.now() - start };
  } catch (error) {
    for (const buffer of buffers.values()) tracker.destroy(buffer);
    throw error;
  }
}

interface FilePlan {
  path: string;
  bytes: number;
  /** Its tensors for the GPU, by offset, and those copied to JS. */
  tensors: WeightPlacement[];
  copies: WeightPlacement[];
}

/** The files to stream, in manifest order, with their tensors; a placement outside its file is refused up front. */
function planFiles(source: ModelSource, placements: readonly WeightPlacement[], copies: readonly WeightPlacement[]): FilePlan[] {
  const names = new Set<string>();
  const plans = new Map<string, FilePlan>();
  const isCount = (n: number) => Number.isSafeInteger(n) && n >= 0;
  for (const [list, p] of [...placements.map((p) => ['tensors', p] as const), ...copies.map((p) => ['copies', p] as const)]) {
    if (names.has(p.name)) throw new Error(`weight ${p.name} is placed twice`);
    names.add(p.name);
    const { bytes } = listedFile(source.manifest, p.file);
    if (!isCount(p.offset) || !isCount(p.bytes) || p.offset + p.bytes > bytes) {
      throw new ManifestError(`weight ${p.name}: bytes ${p.offset}..${p.offset + p.bytes} are not inside ${p.file} (${bytes} bytes)`);
    }
    if (!plans.has(p.file)) plans.set(p.file, { path: p.file, bytes, tensors: [], copies: [] });
    plans.get(p.file)![list].push(p);
  }
  for (const plan of plans.values()) plan.tensors.sort((a, b) => a.offset - b.offset);
  return source.manifest.files.filter((f) => plans.has(f.path)).map((f) => plans.get(f.path)!);
}

/** Copies the part of `chunk` that lies in `p`'s bytes into `out` (the tensor's bytes), at its position. */
function copyOverlap(chunk: ModelChunk, p: WeightPlacement, out: Uint8Array): void {
  const [from, to] = [Math.max(p.offset, chunk.offset), Math.min(p.offset + p.bytes, chunk.offset + chunk.bytes.byteLength)];
  if (from < to) out.set(chunk.bytes.subarray(from - chunk.offset, to - chunk.offset), from - p.offset);
}

/** One buffer per placement; a GPU that cannot make them (out of memory, a limit) is an error naming the total. */
async function createBuffers(device: GPUDevice, placements: readonly WeightPlacement[], create: (p: WeightPlacement) => void): Promise<void> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let thrown: unknown;
  try {
    for (const p of placements) create(p);
  } catch (error) {
    thrown = error; // e.g. a tensor over maxBufferSize, named by createWeightBuffer
  }
  const validation = await device.popErrorScope();
  const gpuError = (await device.popErrorScope()) ?? validation;
  if (thrown) throw thrown;
  if (gpuError) {
    const bytes = placements.reduce((sum, p) => sum + p.bytes, 0);
    throw new Error(`the GPU could not make ${placements.length} weight buffers (${bytes} bytes): ${gpuError.message}`);
  }
}

/**
 * Writes a file's chunks into the buffers of the tensors they overlap. Chunks come in order from offset 0; a chunk
 * at offset 0 again starts the file over.
 */
function fileWriter(queue: GPUQueue, tensors: readonly WeightPlacement[], buffers: ReadonlyMap<string, GPUBuffer>) {
  let next = 0; // where the next chunk starts
  let first = 0; // tensors before this one end before `next`
  const words = new Map<string, Uint8Array>(); // per tensor, a 4-byte word cut by a chunk boundary
  return ({ offset, bytes }: ModelChunk) => {
    if (offset === 0) [next, first] = [0, 0];
    if (offset !== next) throw new Error(`upload: a chunk at byte ${offset}, expected ${next}`);
    const end = offset + bytes.byteLength;
    while (first < tensors.length && tensors[first].offset + tensors[first].bytes <= offset) first++;
    for (let i = first; i < tensors.length && tensors[i].offset < end; i++) {
      const t = tensors[i];
      const [from, to] = [Math.max(t.offset, offset), Math.min(t.offset + t.bytes, end)];
      if (from >= to) continue; // a tensor that ended earlier (shorter than one placed before it), or of 0 bytes
      if (!words.has(t.name)) words.set(t.name, new Uint8Array(4));
      writeSpan(queue, buffers.get(t.name)!, t.bytes, from - t.offset, bytes.subarray(from - offset, to - offset), words.get(t.name)!);
    }
    next = end;
  };
}

/**
 * Writes `data` at byte `at` of a tensor of `size` bytes. writeBuffer takes offsets and sizes in multiples of 4, so
 * a word cut by a chunk boundary waits in `word` for its other bytes; the tensor's last word, when partial, is
 * written padded with zeros.
 */
function writeSpan(queue: GPUQueue, buffer: GPUBuffer, size: number, at: number, data: Uint8Array, word: Uint8Array): void {
  const source = data.buffer as ArrayBuffer;
  const head = at % 4;
  let i = 0;
  if (head) {
    i = Math.min(4 - head, data.byteLength); // completes the word the previous chunk began
    word.set(data.subarray(0, i), head);
    if (head + i === 4) queue.writeBuffer(buffer, at - head, word);
  }
  const aligned = data.byteLength - i - ((data.byteLength - i) % 4);
  if (aligned > 0) queue.writeBuffer(buffer, at + i, source, data.byteOffset + i, aligned);
  i += aligned;
  if (i < data.byteLength) {
    word.fill(0);
    word.set(data.subarray(i));
  }
  const end = at + data.byteLength;
  if (end === size && end % 4 !== 0) queue.writeBuffer(buffer, end - (end % 4), word);
}
