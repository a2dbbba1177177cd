// What prepare-model reads off an SDXL export beyond SD1.5's facts (src/prepare/manifest.ts): the two text encoders'
// outputs diffusers' StableDiffusionXLPipeline.encode_prompt uses (penultimate `hidden_states.N` of each, the pooled
// `text_embeds` of encoder 2), the UNet's added-condition widths, and model_index.json's force_zeros_for_empty_prompt.
// optimum's SDXL export (task stable-diffusion-xl) names every hidden state `hidden_states.0` … `hidden_states.L`
// (embeddings, then each layer); transformers' hidden_states[-2] is `hidden_states.(L-1)`.
import type { SdxlConditioning } from '../model/manifest.ts';
import { OnnxError, int, type ModelProto } from '../onnx/proto.ts';
import { inputDims } from './stream-onnx.ts';

export type SdxlFacts = Omit<SdxlConditioning, 'textEncoder2' | 'tokenizer2'>;

/** 'sdxl' when the export has a second text encoder or its UNet takes SDXL's added conditions, else 'sd15'. */
export function exportKind(hasTextEncoder2: boolean, unet: ModelProto): 'sd15' | 'sdxl' {
  const inputs = new Set((unet.graph?.input ?? []).map((i) => i.name));
  return hasTextEncoder2 || inputs.has('text_embeds') || inputs.has('time_ids') ? 'sdxl' : 'sd15';
}

const lastDim = (model: ModelProto, output: string): number | undefined => {
  const o = (model.graph?.output ?? []).find((v) => v.name === output);
  const d = o?.type?.tensorType?.shape?.dim?.at(-1);
  const v = int(d?.dimValue);
  return v > 0 ? v : undefined;
};

/** The penultimate hidden-state output of a text encoder graph and its width. */
export function penultimateHiddenState(model: ModelProto, label: string): { name: string; dim: number | undefined } {
  const layers = (model.graph?.output ?? []).map((o) => /^hidden_states\.(\d+)$/.exec(o.name ?? '')).filter((m) => m !== null).map((m) => Number(m![1]));
  if (layers.length < 2) {
    throw new OnnxError(`${label} has no hidden_states.N outputs (its outputs: ${(model.graph?.output ?? []).map((o) => o.name).join(', ')}): SDXL uses the penultimate layer's hidden states; export with optimum (task stable-diffusion-xl), which adds them`);
  }
  const name = `hidden_states.${Math.max(...layers) - 1}`;
  return { name, dim: lastDim(model, name) };
}

/** The SDXL facts of an export: outputs to read, widths checked against the UNet, the negative-prompt rule. */
export function readSdxlFacts(unet: ModelProto, textEncoder: ModelProto, textEncoder2: ModelProto | undefined, contextDim: number, modelIndex: Record<string, unknown> | undefined): SdxlFacts & { notes: string[] } {
  const notes: string[] = [];
  if (!textEncoder2) throw new OnnxError('the UNet takes text_embeds/time_ids (SDXL) but the export has no text_encoder_2/model.onnx');
  const h1 = penultimateHiddenState(textEncoder, 'text_encoder/model.onnx');
  const h2 = penultimateHiddenState(textEncoder2, 'text_encoder_2/model.onnx');
  const outputs2 = (textEncoder2.graph?.output ?? []).map((o) => o.name ?? '');
  const pooled = outputs2.includes('text_embeds') ? 'text_embeds' : undefined;
  if (!pooled) throw new OnnxError(`text_encoder_2/model.onnx has no text_embeds output (its outputs: ${outputs2.join(', ')}): SDXL's second encoder is a CLIPTextModelWithProjection`);
  const dim1 = h1.dim ?? (h2.dim !== undefined ? contextDim - h2.dim : undefined);
  const dim2 = h2.dim ?? (dim1 !== undefined ? contextDim - dim1 : undefined);
  if (dim1 === undefined || dim2 === undefined || dim1 + dim2 !== contextDim) {
    throw new OnnxError(`the text encoders' hidden widths (${h1.dim ?? '?'} + ${h2.dim ?? '?'}) do not add up to the UNet's context width ${contextDim}`);
  }
  const textEmbedsDim = int((inputDims(unet, 'text_embeds') ?? [])[1] as number) || lastDim(textEncoder2, pooled);
  if (!textEmbedsDim) throw new OnnxError('cannot tell the width of text_embeds: neither the UNet input nor text_encoder_2\'s text_embeds output has a fixed last dim');
  const pooledDim = lastDim(textEncoder2, pooled);
  if (pooledDim !== undefined && pooledDim !== textEmbedsDim) throw new OnnxError(`text_encoder_2's text_embeds has width ${pooledDim}, the UNet's text_embeds input ${textEmbedsDim}`);
  const timeIdsDim = int((inputDims(unet, 'time_ids') ?? [])[1] as number) || 6;
  if (timeIdsDim !== 6) throw new OnnxError(`the UNet's time_ids input has width ${timeIdsDim}; SDXL's base model takes 6 (original size, crop top-left, target size)`);
  const flag = modelIndex?.force_zeros_for_empty_prompt;
  const forceZerosForEmptyPrompt = typeof flag === 'boolean' ? flag : true;
  if (typeof flag !== 'boolean') notes.push('force_zeros_for_empty_prompt: true (StableDiffusionXLPipeline\'s default: model_index.json does not say)');
  return { hiddenStates: [h1.name, h2.name], pooled, hiddenDims: [dim1, dim2], textEmbedsDim, timeIdsDim, forceZerosForEmptyPrompt, notes };
}
