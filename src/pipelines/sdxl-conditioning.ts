// The Stable Diffusion XL conditioning, diffusers' StableDiffusionXLPipeline.encode_prompt and _get_add_time_ids, for
// the SDXL pipeline (sdxl.ts) and for training (src/train), without the engine (so Node-side training needs no GPU code):
//   - both tokenizers (77 ids each; SDXL's second pads with "!"), both text encoders run on the same prompt;
//   - context [77, d1 + d2] = the two encoders' penultimate hidden states (hidden_states[-2]) concatenated per token;
//   - text_embeds = encoder 2's pooled projection; time_ids = [original h, w, crop top, left, target h, w] with
//     original = target = the image size and crop (0, 0), diffusers' defaults;
//   - negative prompt: none (params.negativePrompt "" and not negativePromptGiven) gives zero context and zero
//     text_embeds when the model says force_zeros_for_empty_prompt (SDXL base does; the official gen_xl.py relies on
//     it); an explicit "" is encoded like any prompt. Both branches take the same time_ids.
// Each branch's conditioning is packed per sample as [context (77·dim) | text_embeds | time_ids].
import type * as OrtCommon from 'onnxruntime-common';
import type { PreparedManifest, SdxlConditioning } from '../model/manifest.ts';
import type { EngineOptions } from '../engine/engine.ts';
import type { GenerateParams } from '../worker/protocol.ts';
import { floatInput, floatOutput } from './float-tensors.ts';
import type { Conditioner } from '../engine/family.ts';
import { createComponentSession, type Ort } from './onnx-component.ts';
import { inputIdsTensor, promptCache, tokenReport } from './text-input.ts';
import type { PromptTokenizer } from './tokenizer.ts';

type Files = ReadonlyMap<string, Uint8Array>;

/** diffusers' _get_add_time_ids with its defaults: original_size = target_size = (height, width), crop (0, 0). */
export function addTimeIds(height: number, width: number): Float32Array {
  return Float32Array.of(height, width, 0, 0, height, width);
}

/** Concatenates two [tokens, d1] and [tokens, d2] hidden states per token into [tokens, d1 + d2] (torch.concat dim −1). */
export function concatHidden(a: Float32Array, d1: number, b: Float32Array, d2: number, tokens: number): Float32Array {
  if (a.length !== tokens * d1 || b.length !== tokens * d2) throw new Error(`hidden states of ${a.length} and ${b.length} values do not match ${tokens} tokens × (${d1}, ${d2})`);
  const out = new Float32Array(tokens * (d1 + d2));
  for (let t = 0; t < tokens; t++) {
    out.set(a.subarray(t * d1, (t + 1) * d1), t * (d1 + d2));
    out.set(b.subarray(t * d2, (t + 1) * d2), t * (d1 + d2) + d1);
  }
  return out;
}

/** Whether this generation has no negative prompt (zeroed) rather than an encoded one. */
export function zeroedNegative(params: Pick<GenerateParams, 'negativePrompt' | 'negativePromptGiven'>, x: Pick<SdxlConditioning, 'forceZerosForEmptyPrompt'>): boolean {
  return x.forceZerosForEmptyPrompt && params.negativePrompt === '' && !params.negativePromptGiven;
}

export interface SdxlPromptEmbeds {
  /** [77, d1 + d2] */
  context: Float32Array;
  /** [textEmbedsDim] */
  pooled: Float32Array;
}

export async function sdxlConditioner(ort: Ort, manifest: PreparedManifest, files: Files, [tokenizer1, tokenizer2]: [PromptTokenizer, PromptTokenizer], options: EngineOptions = {}): Promise<Conditioner & { embeds(prompt: string): Promise<SdxlPromptEmbeds> }> {
  const x = manifest.sdxl;
  if (manifest.kind !== 'sdxl' || !x) throw new Error(`${manifest.name} is not a prepared SDXL model (kind ${manifest.kind}, no sdxl section)`);
  // One session after the other (ORT's WebGPU EP, see src/engine/engine.ts).
  const encoder1 = await createComponentSession(ort, manifest.textEncoder, files, options.sessionOptions);
  const encoder2 = await createComponentSession(ort, x.textEncoder2, files, options.sessionOptions);
  const { length, dim } = manifest.context;
  const [d1, d2] = x.hiddenDims;
  const contextSize = length * dim;
  const size = contextSize + x.textEmbedsDim + x.timeIdsDim;
  const output = (out: Record<string, OrtCommon.Tensor>, name: string, what: string) => {
    const t = out[name];
    if (!t) throw new Error(`${what} has no output ${name}`);
    return floatOutput(t);
  };

  const embeds = promptCache(async (prompt): Promise<SdxlPromptEmbeds> => {
    const out1 = await encoder1.run({ input_ids: inputIdsTensor(ort, manifest.textEncoder, tokenizer1.encode(prompt).ids) });
    const out2 = await encoder2.run({ input_ids: inputIdsTensor(ort, x.textEncoder2, tokenizer2.encode(prompt).ids) });
    const context = concatHidden(output(out1, x.hiddenStates[0], manifest.textEncoder.file), d1, output(out2, x.hiddenStates[1], x.textEncoder2.file), d2, length);
    const pooled = output(out2, x.pooled, x.textEncoder2.file).slice();
    if (pooled.length !== x.textEmbedsDim) throw new Error(`${x.textEncoder2.file} ${x.pooled} has ${pooled.length} values, the UNet takes ${x.textEmbedsDim}`);
    return { context, pooled };
  });
  const pack = (e: SdxlPromptEmbeds | undefined, timeIds: Float32Array) => {
    const packed = new Float32Array(size); // zeros: the force_zeros_for_empty_prompt negative
    if (e) {
      packed.set(e.context, 0);
      packed.set(e.pooled, contextSize);
    }
    packed.set(timeIds, contextSize + x.textEmbedsDim);
    return packed;
  };

  return {
    size,
    embeds,
    async encode(params) {
      const timeIds = addTimeIds(params.height ?? manifest.defaults.height, params.width ?? manifest.defaults.width);
      const positive = pack(await embeds(params.prompt), timeIds);
      const negative = pack(zeroedNegative(params, x) ? undefined : await embeds(params.negativePrompt), timeIds);
      return { positive, negative };
    },
    unetFeeds(packed, n) {
      const context = new Float32Array(n * contextSize);
      const textEmbeds = new Float32Array(n * x.textEmbedsDim);
      const timeIds = new Float32Array(n * x.timeIdsDim);
      for (let i = 0; i < n; i++) {
        const s = packed.subarray(i * size, (i + 1) * size);
        context.set(s.subarray(0, contextSize), i * contextSize);
        textEmbeds.set(s.subarray(contextSize, contextSize + x.textEmbedsDim), i * x.textEmbedsDim);
        timeIds.set(s.subarray(contextSize + x.textEmbedsDim), i * x.timeIdsDim);
      }
      const inputs = manifest.unet.inputs;
      return {
        encoder_hidden_states: floatInput(ort, inputs.encoder_hidden_states, context, [n, length, dim]),
        text_embeds: floatInput(ort, inputs.text_embeds, textEmbeds, [n, x.textEmbedsDim]),
        time_ids: floatInput(ort, inputs.time_ids, timeIds, [n, x.timeIdsDim]),
      };
    },
    tokens(prompt) {
      return { ...tokenReport(tokenizer1, prompt, manifest.tokenizer.modelMaxLength), ids2: [...tokenizer2.encode(prompt).ids] };
    },
    async release() {
      await encoder1.release();
      await encoder2.release();
    },
  };
}
