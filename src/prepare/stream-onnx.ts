// Streaming an ONNX export's weights: the graph (a few MB when its weights are external) is decoded in memory, each
// initializer's bytes are read on demand from its external file with a positioned read (never the whole 3.4 GB
// `weights.pb` / `model.onnx_data`), and the component is rewritten with its weights re-sharded (shard-writer.ts).
// External references are hostile input: the location must stay inside the graph's folder, and offset + length must
// lie inside the file as it is (model-io.ts checks the same against bytes in memory). The files come from an input
// folder (io.ts: disk, chosen files, the Hub) and go to an output folder.
import { isExternal, readModel, writeModel } from '../onnx/model-io.ts';
import { DataType, OnnxError, int, onnx, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto.ts';
import { bytesPer, dataTypeName, elementCount } from '../onnx/tensor.ts';
import { joinPath, parentPath, readWhole, type InputFolder, type OutputFolder } from './io.ts';
import { createShardSet, DEFAULT_SHARD_BYTES, writeWhole, type WrittenFile } from './shard-writer.ts';

/** Inline initializers at least this large move into the shards too (a text encoder exported with inline weights). */
export const MIN_EXTERNAL_BYTES = 1024;

export type InputDtype = 'float32' | 'float16' | 'int32' | 'int64';

/** Reads and decodes a graph file; anything that is not an ONNX model with a graph of nodes is refused. */
export async function readGraph(folder: InputFolder, path: string): Promise<ModelProto> {
  const name = folder.name(path);
  if ((await folder.size(path)) === undefined) throw new OnnxError(`${name}: no such file`);
  let model: ModelProto;
  try {
    model = readModel(await readWhole(folder, path));
  } catch (error) {
    throw new OnnxError(`${name} is not an ONNX model: ${(error as Error).message}`);
  }
  if (!model.graph?.node?.length) throw new OnnxError(`${name} is not an ONNX model: its graph has no nodes`);
  return model;
}

/** Where one initializer's bytes are, after every check. */
export interface ExternalSpan {
  file: string;
  location: string;
  offset: number;
  length: number;
}

function externalEntries(tensor: TensorProto): Map<string, string> {
  return new Map((tensor.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
}

/** An inline tensor's size for sharding decisions (0 for element types we do not size: they stay inline). */
function inlineSize(tensor: TensorProto): number {
  try {
    return tensorByteSize(tensor);
  } catch {
    return 0;
  }
}

/** A tensor's declared byte size from dims and data type. */
export function tensorByteSize(tensor: TensorProto): number {
  const dims = (tensor.dims ?? []).map(int);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new OnnxError(`tensor ${tensor.name}: bad dims [${dims}]`);
  return elementCount(dims) * bytesPer(tensor.dataType ?? 0);
}

/** An absolute path, a drive letter or a `..` segment: a location that would leave the graph's folder. */
const leavesFolder = (location: string) => /^([\\/]|[A-Za-z]:)/.test(location) || location.split(/[\\/]/).includes('..');

/**
 * Resolves and bounds-checks an external tensor against the file in `folder` (`dir` is the graph's folder in it).
 * `sizes` caches file sizes by location. The location must be a plain relative path inside `dir` (no absolute path,
 * no `..`): a hostile graph must not make us read /etc/passwd into a shard.
 */
export async function externalSpan(tensor: TensorProto, folder: InputFolder, dir: string, sizes: Map<string, number>): Promise<ExternalSpan> {
  const name = tensor.name ?? '(unnamed)';
  const entries = externalEntries(tensor);
  const location = entries.get('location');
  if (!location) throw new OnnxError(`tensor ${name}: external data without a location`);
  if (leavesFolder(location)) {
    throw new OnnxError(`tensor ${name}: external data location ${JSON.stringify(location)} leaves the graph's folder`);
  }
  const byteSize = tensorByteSize(tensor);
  const rawOffset = entries.get('offset') ?? '0';
  const rawLength = entries.get('length') ?? String(byteSize);
  const offset = /^\d+$/.test(rawOffset) ? Number(rawOffset) : NaN;
  const length = /^\d+$/.test(rawLength) ? Number(rawLength) : NaN;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length)) {
    throw new OnnxError(`tensor ${name}: bad external data offset/length (${rawOffset}, ${rawLength}) in ${location}`);
  }
  if (length !== byteSize) {
    throw new OnnxError(`tensor ${name}: external data length ${length} does not match its shape [${(tensor.dims ?? []).map(int)}] of ${dataTypeName(tensor.dataType ?? 0)} (${byteSize} bytes)`);
  }
  const file = joinPath(dir, location);
  let size = sizes.get(location);
  if (size === undefined) {
    size = await folder.size(file);
    if (size === undefined) throw new OnnxError(`tensor ${name}: external data file ${folder.name(file)} does not exist`);
    sizes.set(location, size);
  }
  if (offset + length > size) {
    throw new OnnxError(`tensor ${name}: external data bytes ${offset}..${offset + length} lie past the end of ${location} (${size} bytes); file truncated?`);
  }
  return { file, location, offset, length };
}

/** The raw little-endian bytes of an inline tensor, whichever field holds them; null for forms we leave inline. */
export function inlineBytes(tensor: TensorProto): Uint8Array | null {
  const n = elementCount((tensor.dims ?? []).map(int));
  const asBytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (tensor.rawData && tensor.rawData.length > 0) {
    if (tensor.rawData.length !== tensorByteSize(tensor)) {
      throw new OnnxError(`tensor ${tensor.name}: ${tensor.rawData.length} bytes of raw data, its shape needs ${tensorByteSize(tensor)}`);
    }
    return tensor.rawData;
  }
  const t = tensor.dataType;
  if (t === DataType.FLOAT && tensor.floatData?.length === n) return asBytes(Float32Array.from(tensor.floatData));
  if (t === DataType.DOUBLE && tensor.doubleData?.length === n) return asBytes(Float64Array.from(tensor.doubleData));
  if (t === DataType.INT32 && tensor.int32Data?.length === n) return asBytes(Int32Array.from(tensor.int32Data));
  if (t === DataType.FLOAT16 && tensor.int32Data?.length === n) return asBytes(Uint16Array.from(tensor.int32Data));
  if (t === DataType.INT64 && tensor.int64Data?.length === n) return asBytes(BigInt64Array.from(tensor.int64Data.map((v) => BigInt(int(v)))));
  return null;
}

/** Reads initializers' bytes from the folder `dir` of `folder` (a graph's folder). */
export function createTensorReader(folder: InputFolder, dir: string) {
  const sizes = new Map<string, number>();
  return {
    span: (tensor: TensorProto) => externalSpan(tensor, folder, dir, sizes),
    /** The tensor's bytes (a fresh buffer for external tensors, the inline bytes otherwise), or null (left inline). */
    async read(tensor: TensorProto): Promise<Uint8Array | null> {
      if (!isExternal(tensor)) return inlineBytes(tensor);
      const span = await externalSpan(tensor, folder, dir, sizes);
      return folder.read(span.file, span.offset, span.offset + span.length);
    },
  };
}

export type TensorReader = ReturnType<typeof createTensorReader>;

const INPUT_DTYPES: Record<number, InputDtype> = {
  [DataType.FLOAT]: 'float32', [DataType.FLOAT16]: 'float16', [DataType.INT32]: 'int32', [DataType.INT64]: 'int64',
};

/** The graph's real inputs (not initializers listed as inputs, as older exporters do) and their element types. */
export function graphInputs(model: ModelProto): Record<string, InputDtype> {
  const inits = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  const out: Record<string, InputDtype> = {};
  for (const v of model.graph?.input ?? []) {
    if (inits.has(v.name)) continue;
    const elem = v.type?.tensorType?.elemType ?? 0;
    const dtype = INPUT_DTYPES[elem];
    if (!dtype) throw new OnnxError(`graph input ${v.name} has element type ${dataTypeName(elem)}; expected float32, float16, int32 or int64`);
    out[v.name ?? ''] = dtype;
  }
  return out;
}

/** Static dims of a graph input (symbolic dims as their names). */
export function inputDims(model: ModelProto, name: string): (number | string)[] | undefined {
  const v = (model.graph?.input ?? []).find((i) => i.name === name);
  return v?.type?.tensorType?.shape?.dim?.map((d) => (d.dimParam ? d.dimParam : d.dimValue != null ? int(d.dimValue) : '?'));
}

/** Optional per-tensor conversion while streaming (e.g. float32 → float16). */
export type TensorTransform = (tensor: TensorProto, bytes: Uint8Array) => { dataType: number; bytes: Uint8Array };

export interface RewriteOptions {
  maxShardBytes?: number;
  transform?: TensorTransform;
  /** Called after each tensor with the bytes read so far and the total to read. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Checked between tensors: a cancel stops the copy there. */
  signal?: AbortSignal;
}

export interface RewrittenComponent {
  model: ModelProto;
  shards: WrittenFile[];
  graph: WrittenFile;
  /** Initializers moved into shards, and their bytes (as written). */
  tensors: number;
  bytes: number;
  /** Bytes of the largest initializer (as written): the page checks it against GPU buffer limits. */
  largestTensorBytes: number;
}

/** Which initializers move into shards: external ones, and inline ones of at least 1 KiB we can read. */
const movingInitializers = (model: ModelProto) =>
  (model.graph?.initializer ?? []).map((t) => isExternal(t) || (inlineSize(t) >= MIN_EXTERNAL_BYTES && inlineBytes(t) !== null));

/** The bytes rewriteComponent will read for a graph's weights (progress totals). */
export function movingBytes(model: ModelProto): number {
  const moving = movingInitializers(model);
  return (model.graph?.initializer ?? []).reduce((sum, t, i) => sum + (moving[i] ? tensorByteSize(t) : 0), 0);
}

/**
 * Rewrites graph `srcPath` of `input` into `outDir/graphName` of `out` with every external (and every large inline)
 * initializer copied, one at a time, into `outDir/weights-NN.bin` shards; the graph's locations then name those
 * shards. `decoded`: the graph if the caller already read it (a text encoder with inline weights is ~500 MB: read it
 * once).
 */
export async function rewriteComponent(
  input: InputFolder, srcPath: string, out: OutputFolder, outDir: string, options: RewriteOptions = {}, graphName = 'model.onnx', decoded?: ModelProto,
): Promise<RewrittenComponent> {
  const reader = createTensorReader(input, parentPath(srcPath));
  const shardSet = createShardSet(out, outDir, 'weights', options.maxShardBytes ?? DEFAULT_SHARD_BYTES);
  try {
    const model = await inlineConstantNodes(decoded ?? await readGraph(input, srcPath), reader);
    checkNodeTensors(model);
    const initializers = model.graph!.initializer ?? [];
    // Weights go to shards; tensors under 1 KiB stay (or become) inline.
    const moving = movingInitializers(model);
    // Check every external reference before writing anything: a bad one fails fast and costs nothing.
    for (const t of initializers) if (isExternal(t)) await reader.span(t);
    const total = movingBytes(model);
    let done = 0;
    let tensors = 0;
    let written = 0;
    let largest = 0;
    const rewritten: TensorProto[] = [];
    for (const [i, tensor] of initializers.entries()) {
      options.signal?.throwIfAborted();
      if (!moving[i]) {
        rewritten.push(tensor);
        continue;
      }
      const raw = (await reader.read(tensor))!;
      done += raw.length;
      const { dataType, bytes } = options.transform ? options.transform(tensor, raw) : { dataType: tensor.dataType ?? 0, bytes: raw };
      // Small external tensors become inline, as onnx.save_model's size_threshold keeps them (ORT's shape inference
      // needs shape constants inline).
      if (raw.length < MIN_EXTERNAL_BYTES) {
        rewritten.push(inlineTensor({ ...tensor, dataType }, bytes));
        continue;
      }
      const place = await shardSet.place(tensor.name ?? '', bytes);
      largest = Math.max(largest, bytes.length);
      written += bytes.length;
      tensors++;
      options.onProgress?.(done, total);
      rewritten.push(externalTensor(tensor, dataType, place.location, place.offset, place.length));
    }
    const result: ModelProto = { ...model, graph: { ...model.graph!, initializer: rewritten } };
    const shards = await shardSet.finish();
    const graph = await writeWhole(out, joinPath(outDir, graphName), writeModel(result));
    for (const t of rewritten) if (!isExternal(t)) largest = Math.max(largest, inlineSize(t));
    return { model: result, shards, graph: { ...graph, file: graphName }, tensors, bytes: written, largestTensorBytes: largest };
  } finally {
    await shardSet.finish();
  }
}

function inlineTensor(tensor: TensorProto, bytes: Uint8Array): TensorProto {
  const { externalData: _e, dataLocation: _dl, ...rest } = tensor;
  return { ...rest, rawData: bytes };
}

function externalTensor(tensor: TensorProto, dataType: number, location: string, offset: number, length: number): TensorProto {
  const { rawData: _r, floatData: _f, int32Data: _i, int64Data: _l, doubleData: _d, externalData: _e, dataLocation: _dl, ...rest } = tensor;
  return {
    ...rest,
    dataType,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(length) },
    ],
  };
}

/**
 * Constant nodes whose tensor lives in the external-data file, made inline (read bounds-checked): optimum saves with
 * onnx's convert_attribute=True, so a Constant of at least its size threshold (1024 bytes; 100 with its
 * FORCE_ONNX_EXTERNAL_DATA switch, e.g. CLIP's position_ids [1, 77] int64) sits in model.onnx_data.
 */
async function inlineConstantNodes(model: ModelProto, reader: TensorReader): Promise<ModelProto> {
  const nodes = model.graph?.node ?? [];
  const external = (n: NodeProto) => (n.attribute ?? []).some((a) => a.t && isExternal(a.t));
  if (!nodes.some(external)) return model;
  const node: NodeProto[] = [];
  for (const n of nodes) {
    if (!external(n)) {
      node.push(n);
      continue;
    }
    const attribute = [];
    for (const a of n.attribute!) attribute.push(a.t && isExternal(a.t) ? { ...a, t: inlineTensor(a.t, (await reader.read(a.t))!) } : a);
    node.push({ ...n, attribute });
  }
  return { ...model, graph: { ...model.graph!, node } };
}

/** External weights elsewhere outside the main graph's initializers (subgraphs) are not something exporters make: refuse. */
function checkNodeTensors(model: ModelProto): void {
  for (const node of model.graph?.node ?? []) {
    for (const a of node.attribute ?? []) {
      if (a.t && isExternal(a.t)) throw new OnnxError(`node ${node.name}: attribute ${a.name} holds an external tensor; only initializers may`);
      for (const t of [...(a.g?.initializer ?? []), ...(a.graphs ?? []).flatMap((g) => g.initializer ?? [])]) {
        if (isExternal(t)) throw new OnnxError(`node ${node.name}: a subgraph initializer (${t.name}) has external data; not supported`);
      }
    }
  }
}
