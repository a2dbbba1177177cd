// Text-encoder plumbing shared by the Stable Diffusion conditioners (sd15.ts, sdxl.ts): input_ids in the dtype the
// export takes (diffusers' script writes int32, optimum int64), and the token report the page and run.json show.
import type * as OrtCommon from 'onnxruntime-common';
import type { OnnxComponent } from '../model/manifest.ts';
import type { TokenReport } from '../engine/family.ts';
import type { Ort } from './onnx-component.ts';
import type { PromptTokenizer } from './tokenizer.ts';

/** [1, length] input_ids as the component's graph declares them. */
export function inputIdsTensor(ort: Ort, component: OnnxComponent, ids: Int32Array): OrtCommon.Tensor {
  const type = component.inputs.input_ids ?? 'int32';
  return type === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]) : new ort.Tensor('int32', Int32Array.from(ids), [1, ids.length]);
}

/** The prompt's ids as the encoder receives them, and its count without BOS/EOS against the model's limit. */
export function tokenReport(tokenizer: PromptTokenizer, prompt: string, modelMaxLength: number): TokenReport {
  const { ids, tokenCount, truncated } = tokenizer.encode(prompt);
  return { ids: [...ids], count: tokenCount, limit: modelMaxLength - 2, truncated };
}

/** A per-prompt cache of encoder outputs (prompts repeat across generations while sliders move). */
export function promptCache<T>(compute: (prompt: string) => Promise<T>): (prompt: string) => Promise<T> {
  const cache = new Map<string, T>();
  return async (prompt) => {
    const hit = cache.get(prompt);
    if (hit) return hit;
    const value = await compute(prompt);
    cache.set(prompt, value);
    return value;
  };
}
