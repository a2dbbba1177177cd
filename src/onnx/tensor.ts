// Conversions between ONNX TensorProtos and typed arrays. Reads every storage form ONNX allows (raw_data,
// float_data, int64_data, int32_data for f16) and checks that the element count matches the shape.
import { DataType, OnnxError, int, type TensorProto } from './proto.ts';

export type DenseData = Float32Array | BigInt64Array | Int32Array | Uint8Array | Float64Array;

export interface DenseTensor {
  dims: number[];
  data: DenseData;
  dataType: number;
}

const bytesPerElement: Record<number, number> = {
  [DataType.FLOAT]: 4, [DataType.DOUBLE]: 8, [DataType.INT64]: 8, [DataType.INT32]: 4,
  [DataType.FLOAT16]: 2, [DataType.BOOL]: 1, [DataType.UINT8]: 1, [DataType.INT8]: 1,
};

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/**
 * The element count of a stored tensor's dims, checked: a file may claim negative dims (two negatives multiply to a
 * plausible count) or dims whose product overflows; both are refused before anything is read or allocated.
 */
export function checkedElementCount(name: string, dims: readonly number[]): number {
  let count = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new OnnxError(`tensor ${name}: dims [${dims.slice(0, 8)}] hold ${d}, not a non-negative integer`);
    count *= d;
    if (!Number.isSafeInteger(count)) throw new OnnxError(`tensor ${name}: dims [${dims.slice(0, 8)}] have too many elements`);
  }
  return count;
}

export function dataTypeName(dataType: number): string {
  return DataType[dataType] ?? `data type ${dataType}`;
}

export function bytesPer(dataType: number): number {
  const size = bytesPerElement[dataType];
  if (!size) throw new OnnxError(`unsupported tensor data type ${dataTypeName(dataType)}`);
  return size;
}

/** Builds a TensorProto that stores its values in raw_data (the compact form exporters use). */
export function makeTensor(name: string, dims: readonly number[], data: DenseData, dataType = inferDataType(data)): TensorProto {
  if (elementCount(dims) !== data.length) {
    throw new OnnxError(`tensor ${name}: shape [${dims}] holds ${elementCount(dims)} values, got ${data.length}`);
  }
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return { name, dims: [...dims], dataType, rawData: bytes };
}

function inferDataType(data: DenseData): number {
  if (data instanceof Float32Array) return DataType.FLOAT;
  if (data instanceof Float64Array) return DataType.DOUBLE;
  if (data instanceof BigInt64Array) return DataType.INT64;
  if (data instanceof Int32Array) return DataType.INT32;
  return DataType.BOOL;
}

/** Reads a tensor's values (which must already be inline: see external-data.ts for the rest). */
export function readTensor(tensor: TensorProto): DenseTensor {
  const dims = (tensor.dims ?? []).map(int);
  const dataType = tensor.dataType ?? DataType.UNDEFINED;
  const count = checkedElementCount(tensor.name ?? '', dims);
  const raw = tensor.rawData;
  let data: DenseData;
  if (raw && raw.length > 0) {
    data = fromRaw(tensor.name ?? '', raw, dataType);
  } else if (dataType === DataType.FLOAT) {
    data = Float32Array.from(tensor.floatData ?? []);
  } else if (dataType === DataType.DOUBLE) {
    data = Float64Array.from(tensor.doubleData ?? []);
  } else if (dataType === DataType.INT64) {
    data = BigInt64Array.from((tensor.int64Data ?? []).map((v) => BigInt(int(v))));
  } else if (dataType === DataType.INT32 || dataType === DataType.BOOL || dataType === DataType.UINT8 || dataType === DataType.INT8) {
    data = dataType === DataType.INT32 ? Int32Array.from(tensor.int32Data ?? []) : Uint8Array.from(tensor.int32Data ?? []);
  } else {
    throw new OnnxError(`tensor ${tensor.name}: cannot read ${dataTypeName(dataType)} values`);
  }
  if (data.length !== count) {
    throw new OnnxError(`tensor ${tensor.name}: shape [${dims}] needs ${count} values, found ${data.length}`);
  }
  return { dims, data, dataType };
}

function fromRaw(name: string, raw: Uint8Array, dataType: number): DenseData {
  const size = bytesPer(dataType);
  if (raw.byteLength % size !== 0) {
    throw new OnnxError(`tensor ${name}: ${raw.byteLength} bytes of raw data is not a whole number of ${dataTypeName(dataType)} values`);
  }
  // A fresh, aligned copy: raw_data may sit at any offset of the protobuf buffer, and in Node it is a Buffer whose
  // .slice() shares Node's 8 KB pool, so its .buffer would be the whole pool.
  const copy = new Uint8Array(raw).buffer;
  switch (dataType) {
    case DataType.FLOAT: return new Float32Array(copy);
    case DataType.DOUBLE: return new Float64Array(copy);
    case DataType.INT64: return new BigInt64Array(copy);
    case DataType.INT32: return new Int32Array(copy);
    case DataType.FLOAT16: return halfToFloat(new Uint16Array(copy));
    default: return new Uint8Array(copy);
  }
}

/** IEEE half → single, for fp16 exports (SD1.5 ONNX exports are often fp16). */
export function halfToFloat(half: Uint16Array): Float32Array {
  const out = new Float32Array(half.length);
  for (let i = 0; i < half.length; i++) {
    const h = half[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) out[i] = sign * 2 ** -14 * (fraction / 1024);
    else if (exponent === 31) out[i] = fraction ? NaN : sign * Infinity;
    else out[i] = sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return out;
}

/** A float tensor's values as Float32Array (f16 and f64 are converted). */
export function readFloatTensor(tensor: TensorProto): { dims: number[]; data: Float32Array } {
  const { dims, data } = readTensor(tensor);
  if (data instanceof Float32Array) return { dims, data };
  if (data instanceof Float64Array) return { dims, data: Float32Array.from(data) };
  throw new OnnxError(`tensor ${tensor.name} is ${dataTypeName(tensor.dataType ?? 0)}, expected a float tensor`);
}
