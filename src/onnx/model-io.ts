// Reading and writing ONNX models, with weights inline or in external data files (ONNX's `data_location = EXTERNAL`:
// a tensor names a file, an offset and a length). Large exports (SD1.5's UNet is ~1.7 GB of weights) keep their
// weights outside the protobuf because protobuf and ArrayBuffers stop at 2 GB; we never inline those.
import { OnnxError, int, onnx, type ModelProto, type TensorProto } from './proto.ts';
import { bytesPer, checkedElementCount, readFloatTensor } from './tensor.ts';

/** External data files by their `location` string, as the model names them. */
export type ExternalFiles = ReadonlyMap<string, Uint8Array>;

export function readModel(bytes: Uint8Array): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new OnnxError(`not a valid ONNX model (${bytes.byteLength} bytes): ${(error as Error).message}`);
  }
  if (!model.graph) throw new OnnxError('not a valid ONNX model: it has no graph');
  return model;
}

export function writeModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

export function isExternal(tensor: TensorProto): boolean {
  return tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
}

interface ExternalRef { location: string; offset: number; length: number }

/**
 * ONNX external data lives beside the model: a relative path with no `..`, as onnxruntime requires
 * (ValidateExternalDataPath). Absolute paths, URLs, backslashes and control characters are refused.
 */
function isPlainRelativePath(location: string): boolean {
  if (location.length > 1024 || /[\\:\u0000-\u001f\u007f]/.test(location) || location.startsWith('/')) return false;
  return location.split('/').every((seg) => seg !== '' && seg !== '..');
}

function externalRef(tensor: TensorProto): ExternalRef {
  const entries = new Map((tensor.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = entries.get('location');
  if (!location) throw new OnnxError(`tensor ${tensor.name}: external data without a location`);
  if (!isPlainRelativePath(location)) {
    throw new OnnxError(`tensor ${tensor.name}: external data location ${JSON.stringify(location.slice(0, 80))} is not a file beside the model (absolute paths, URLs and ".." are refused)`);
  }
  const byteSize = checkedElementCount(tensor.name ?? '', (tensor.dims ?? []).map(int)) * bytesPer(tensor.dataType ?? 0);
  const offset = Number(entries.get('offset') ?? '0');
  const length = entries.has('length') ? Number(entries.get('length')) : byteSize;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new OnnxError(`tensor ${tensor.name}: bad external data offset/length (${entries.get('offset')}, ${entries.get('length')})`);
  }
  if (length !== byteSize) {
    throw new OnnxError(`tensor ${tensor.name}: external data length ${length} does not match its shape (${byteSize} bytes)`);
  }
  return { location, offset, length };
}

/** The external data files a model refers to, so a loader knows what to fetch. */
export function externalLocations(model: ModelProto): string[] {
  const names = new Set<string>();
  for (const t of model.graph?.initializer ?? []) if (isExternal(t)) names.add(externalRef(t).location);
  return [...names];
}

/** An initializer kept in external data, placed in a model directory: `bytes` bytes of `file` from `offset`. */
export interface ExternalInitializer {
  name: string;
  /** The data file's path in the model directory (a manifest path), not the graph's `location`. */
  file: string;
  offset: number;
  bytes: number;
  dims: number[];
  /** onnx.TensorProto.DataType (1 float32, 10 float16, …). */
  dataType: number;
}

/**
 * Every initializer of the graph at `graphPath` (a path in the model directory, e.g. `unet/model.onnx`) that lives in
 * external data, in graph order. A `location` is relative to the graph's folder (ORT's rule), so `weights-00.bin`
 * of `unet/model.onnx` is the directory's `unet/weights-00.bin` (src/pipelines/onnx-component.ts `componentFiles`
 * maps the other way).
 * Whether the bytes fit the file is checked by whoever reads it (src/gpu/upload.ts against the manifest's sizes).
 */
export function externalInitializers(model: ModelProto, graphPath: string): ExternalInitializer[] {
  const folder = graphPath.slice(0, graphPath.lastIndexOf('/') + 1);
  return (model.graph?.initializer ?? []).filter(isExternal).map((tensor) => {
    const { location, offset, length } = externalRef(tensor);
    const file = folder + location.split('/').filter((segment) => segment !== '.').join('/');
    return { name: tensor.name ?? '', file, offset, bytes: length, dims: (tensor.dims ?? []).map(int), dataType: tensor.dataType ?? 0 };
  });
}

/** A copy of the tensor with its bytes inline (bounds-checked against the external file). */
export function inlineTensor(tensor: TensorProto, files: ExternalFiles): TensorProto {
  if (!isExternal(tensor)) return tensor;
  const { location, offset, length } = externalRef(tensor);
  const file = files.get(location);
  if (!file) throw new OnnxError(`tensor ${tensor.name}: external data file "${location}" was not provided`);
  if (offset + length > file.byteLength) {
    throw new OnnxError(`tensor ${tensor.name}: bytes ${offset}..${offset + length} lie past the end of "${location}" (${file.byteLength} bytes)`);
  }
  const { externalData: _dropped, dataLocation: _location, ...rest } = tensor;
  return { ...rest, rawData: file.subarray(offset, offset + length) };
}

/** A float initializer's values, wherever they are stored. */
export function readWeight(tensor: TensorProto, files: ExternalFiles = new Map()): { dims: number[]; data: Float32Array } {
  return readFloatTensor(inlineTensor(tensor, files));
}

/**
 * A float32 or float16 initializer's values as stored, float16 as half bits (Uint16Array): a view of the file's bytes
 * where they are aligned for it (externalizeWeights aligns every tensor to 64), no float32 copy of a float16 weight.
 */
export function readStoredWeight(tensor: TensorProto, files: ExternalFiles = new Map()): { dims: number[]; type: 'float32' | 'float16'; data: Float32Array | Uint16Array } {
  const dims = (tensor.dims ?? []).map(int);
  if (tensor.dataType === onnx.TensorProto.DataType.FLOAT16) {
    const raw = inlineTensor(tensor, files).rawData;
    if (!raw) throw new OnnxError(`tensor ${tensor.name}: float16 values not stored as raw data`);
    if (raw.byteLength !== 2 * checkedElementCount(tensor.name ?? '', dims)) throw new OnnxError(`tensor ${tensor.name}: ${raw.byteLength} bytes do not match its shape [${dims.join(', ')}]`);
    const data = raw.byteOffset % 2 === 0 ? new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2) : new Uint16Array(raw.slice().buffer);
    return { dims, type: 'float16', data };
  }
  const raw = tensor.dataType === onnx.TensorProto.DataType.FLOAT ? inlineTensor(tensor, files).rawData : undefined;
  if (raw && raw.byteOffset % 4 === 0 && raw.byteLength === 4 * checkedElementCount(tensor.name ?? '', dims)) {
    return { dims, type: 'float32', data: new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4) };
  }
  return { ...readWeight(tensor, files), type: 'float32' };
}

/** Inlines every external initializer (small models only: the result must stay under protobuf's 2 GB). */
export function inlineExternalData(model: ModelProto, files: ExternalFiles): ModelProto {
  const graph = model.graph!;
  return { ...model, graph: { ...graph, initializer: (graph.initializer ?? []).map((t) => inlineTensor(t, files)) } };
}

/**
 * Moves every initializer of at least `minBytes` into one external data file, each tensor aligned to 64 bytes
 * (so typed-array views need no copy). Returns the model that refers to it and the file's bytes.
 */
export function externalizeWeights(model: ModelProto, location: string, minBytes = 1024): { model: ModelProto; data: Uint8Array } {
  const graph = model.graph!;
  const chunks: { offset: number; bytes: Uint8Array }[] = [];
  let size = 0;
  const initializer = (graph.initializer ?? []).map((tensor) => {
    const raw = inlineTensor(tensor, new Map()).rawData;
    if (!raw || raw.byteLength < minBytes) return tensor;
    const offset = Math.ceil(size / 64) * 64;
    chunks.push({ offset, bytes: raw });
    size = offset + raw.byteLength;
    const { rawData: _inline, ...rest } = tensor;
    return {
      ...rest,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(raw.byteLength) },
      ],
    };
  });
  const data = new Uint8Array(size);
  for (const { offset, bytes } of chunks) data.set(bytes, offset);
  return { model: { ...model, graph: { ...graph, initializer } }, data };
}
