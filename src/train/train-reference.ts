// Reader of the PyTorch training references (fixtures/<sd15|sdxl>/train-reference.safetensors, made by
// scripts/fixtures/make_<sd15|sdxl>_train_reference.py): F32 and I64 tensors by name, and the JSON metadata. The
// project's safetensors reader (src/lora) takes float dtypes only; these files also hold int64 timesteps.
import { readFileSync } from 'node:fs';

export interface TrainReference {
  f32(name: string): Float32Array;
  i64(name: string): BigInt64Array;
  shape(name: string): number[];
  has(name: string): boolean;
  /** A metadata entry (settings, checks, versions), JSON-decoded. */
  meta(key: string): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function readTrainReference(path: string): TrainReference {
  const bytes = new Uint8Array(readFileSync(path));
  if (bytes.length < 8) throw new Error(`${path} is not a safetensors file`);
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (8 + headerLength > bytes.length) throw new Error(`${path}: header length ${headerLength} runs past the file`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const body = (name: string, dtype: string) => {
    const entry = header[name];
    if (entry?.dtype !== dtype) throw new Error(`${path} has no ${dtype} tensor ${name}`);
    const [begin, end] = entry.data_offsets as [number, number];
    if (!(begin <= end && 8 + headerLength + end <= bytes.length)) throw new Error(`${path}: ${name} lies outside the file`);
    return bytes.slice(8 + headerLength + begin, 8 + headerLength + end).buffer;
  };
  return {
    f32: (name) => new Float32Array(body(name, 'F32')),
    i64: (name) => new BigInt64Array(body(name, 'I64')),
    shape: (name) => header[name].shape as number[],
    has: (name) => name in header && name !== '__metadata__',
    meta: (key) => JSON.parse(header.__metadata__[key]),
  };
}
