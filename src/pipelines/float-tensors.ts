// Float tensors in the element type a graph declares: float32 as is, float16 as IEEE half bits (Uint16Array, which
// both onnxruntime-web and onnxruntime-node take for 'float16'). Prepared models may be float16 throughout
// (prepare-model --dtype float16, or an fp16 export); the pipelines compute in float32 and convert at the boundary.
import type * as OrtCommon from 'onnxruntime-common';
import { decodeHalfArray, floatToHalf } from '../lora/float16.ts';

type Ort = Pick<typeof OrtCommon, 'Tensor'>;
export type FloatType = 'float32' | 'float16';

export function floatInput(ort: Ort, type: string | undefined, data: Float32Array, dims: readonly number[]): OrtCommon.Tensor {
  if (type === 'float16') return new ort.Tensor('float16', toHalf(data), dims);
  if (type === undefined || type === 'float32') return new ort.Tensor('float32', data, dims);
  throw new Error(`a float input of element type ${type} is not supported (float32 and float16 are)`);
}

/** A graph output as float32 values (a copy where it was float16). */
export function floatOutput(tensor: OrtCommon.Tensor): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') {
    const data = tensor.data as Uint16Array | Float32Array;
    // ORT hands float16 back as Uint16Array bits (or Float16Array where the runtime has one).
    return data instanceof Uint16Array ? decodeHalfArray(data) : Float32Array.from(data);
  }
  throw new Error(`expected a float output, got ${tensor.type}`);
}

export function toHalf(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = floatToHalf(data[i]);
  return out;
}
