// prepare-model's SDXL facts (src/prepare/sdxl.ts) on small hand-built graph signatures: which outputs are the
// penultimate hidden states, the widths checked against the UNet, and the refusals a wrong export gets. The whole
// path on a real optimum SDXL export is tested in src/pipelines/sdxl.test.ts.
import { describe, expect, it } from 'vitest';
import type { ModelProto } from '../onnx/proto.ts';
import { exportKind, penultimateHiddenState, readSdxlFacts } from './sdxl.ts';

type Dim = number | string;
const value = (name: string, dims: Dim[]) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } });
const graph = (inputs: [string, Dim[]][], outputs: [string, Dim[]][]) => ({
  graph: { input: inputs.map(([n, d]) => value(n, d)), output: outputs.map(([n, d]) => value(n, d)) },
}) as unknown as ModelProto;

/** A text encoder with `layers` layers as optimum exports it: hidden_states.0 (embeddings) … hidden_states.layers. */
const encoder = (width: number, layers: number, extra: [string, Dim[]][] = []) =>
  graph([['input_ids', ['batch', 'seq']]], [['last_hidden_state', ['batch', 'seq', width]], ...extra,
    ...Array.from({ length: layers + 1 }, (_, i) => [`hidden_states.${i}`, ['batch', 'seq', width]] as [string, Dim[]])]);
const unet = (textEmbeds: Dim = 1280, timeIds: Dim = 6) => graph(
  [['sample', ['b', 4, 'h', 'w']], ['timestep', ['s']], ['encoder_hidden_states', ['b', 's', 2048]], ['text_embeds', ['b', textEmbeds]], ['time_ids', ['b', timeIds]]],
  [['out_sample', ['b', 4, 'h', 'w']]],
);
const te1 = encoder(768, 12);
const te2 = encoder(1280, 32, [['text_embeds', ['batch', 1280]]]);

describe('SDXL export facts', () => {
  it('is SDXL by text_encoder_2 or by the UNet\'s added-condition inputs', () => {
    expect(exportKind(true, graph([], []))).toBe('sdxl');
    expect(exportKind(false, unet())).toBe('sdxl');
    expect(exportKind(false, graph([['sample', []], ['timestep', []], ['encoder_hidden_states', []]], []))).toBe('sd15');
  });

  it('takes transformers\' hidden_states[-2]: hidden_states.(L − 1) of L layers', () => {
    expect(penultimateHiddenState(te1, 'te')).toEqual({ name: 'hidden_states.11', dim: 768 });
    expect(penultimateHiddenState(te2, 'te')).toEqual({ name: 'hidden_states.31', dim: 1280 });
    expect(() => penultimateHiddenState(graph([], [['last_hidden_state', [1, 77, 768]]]), 'text_encoder/model.onnx'))
      .toThrow(/text_encoder\/model\.onnx has no hidden_states\.N outputs.*export with optimum/);
  });

  it('reads SDXL base\'s shapes: 768 + 1280 = 2048, text_embeds 1280, time_ids 6', () => {
    const facts = readSdxlFacts(unet(), te1, te2, 2048, { force_zeros_for_empty_prompt: true });
    expect(facts).toMatchObject({ hiddenStates: ['hidden_states.11', 'hidden_states.31'], pooled: 'text_embeds', hiddenDims: [768, 1280], textEmbedsDim: 1280, timeIdsDim: 6, forceZerosForEmptyPrompt: true });
    expect(facts.notes).toEqual([]);
  });

  it('force_zeros_for_empty_prompt: false is kept; absent is the pipeline default (true), noted', () => {
    expect(readSdxlFacts(unet(), te1, te2, 2048, { force_zeros_for_empty_prompt: false }).forceZerosForEmptyPrompt).toBe(false);
    const absent = readSdxlFacts(unet(), te1, te2, 2048, undefined);
    expect(absent.forceZerosForEmptyPrompt).toBe(true);
    expect(absent.notes.join()).toMatch(/force_zeros_for_empty_prompt: true/);
  });

  it('refuses exports whose parts do not fit together, saying what differs', () => {
    expect(() => readSdxlFacts(unet(), te1, undefined, 2048, {})).toThrow(/no text_encoder_2\/model\.onnx/);
    expect(() => readSdxlFacts(unet(), te1, encoder(1280, 32), 2048, {})).toThrow(/no text_embeds output.*CLIPTextModelWithProjection/);
    expect(() => readSdxlFacts(unet(), te1, te2, 2304, {})).toThrow(/768 \+ 1280\) do not add up to the UNet's context width 2304/);
    expect(() => readSdxlFacts(unet(1024), te1, te2, 2048, {})).toThrow(/text_embeds has width 1280, the UNet's text_embeds input 1024/);
    expect(() => readSdxlFacts(unet(1280, 5), te1, te2, 2048, {})).toThrow(/time_ids input has width 5/);
  });
});
