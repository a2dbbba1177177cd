// unet-params.ts against diffusers' own UNet2DConditionModel: the state-dict names and shapes diffusers builds for
// SD1.5's config and for a small SD2-style one (linear projections, 2 transformer layers), from
// fixtures/unet/param-shapes.json (scripts/fixtures/make_unet_param_shapes.py). Exact: names and integer shapes.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { residentWeights } from './npo-memory.ts';
import { numel, SD15_UNET_CONFIG, SD15_UNET_PARAMETERS, SDXL_UNET_CONFIG, SDXL_UNET_PARAMETERS, unetParameters, type UnetConfig } from './unet-params.ts';

const REF = JSON.parse(readFileSync(new URL('../../fixtures/unet/param-shapes.json', import.meta.url), 'utf8')) as Record<
  'sd15' | 'smallLinear' | 'sdxl', { config: UnetConfig; params: [string, number[]][] }
>;
const asMap = (list: [string, number[]][]) => Object.fromEntries(list.map(([n, s]) => [n, s]));

describe('UNet parameter list vs diffusers UNet2DConditionModel', () => {
  it('SD1.5: the same 686 tensors with the same shapes, 859,520,964 parameters', () => {
    const ours = unetParameters(SD15_UNET_CONFIG);
    expect(asMap(ours.map((p) => [p.name, p.shape]))).toEqual(asMap(REF.sd15.params));
    expect(ours).toHaveLength(686);
    expect(ours.reduce((a, p) => a + numel(p.shape), 0)).toBe(SD15_UNET_PARAMETERS);
  });

  it('SD1.5\'s config in the fixture is the one unet-params uses (with diffusers\' defaults for the fields it omits)', () => {
    const withDefaults = { transformer_layers_per_block: 1, use_linear_projection: false, ...REF.sd15.config };
    expect(withDefaults).toMatchObject(SD15_UNET_CONFIG as unknown as Record<string, unknown>);
  });

  it('linear proj_in/proj_out and 2 transformer layers per block (SD2-style branches)', () => {
    const ours = unetParameters(REF.smallLinear.config);
    expect(asMap(ours.map((p) => [p.name, p.shape]))).toEqual(asMap(REF.smallLinear.params));
  });

  it('the released NPO LoRA\'s sites: 128 attention projections, rank 8 is 1,594,368 parameters (6.4 MB fp32)', () => {
    const sites = unetParameters(SD15_UNET_CONFIG).filter((p) => p.role === 'attn-proj');
    expect(sites).toHaveLength(128);
    expect(sites.reduce((a, p) => a + 8 * (p.shape[0] + p.shape[1]), 0)).toBe(1_594_368);
  });

  it('SDXL base: the same 1680 tensors (add_embedding, transformer depths 1/2/10), 2,567,463,684 parameters', () => {
    const ours = unetParameters(SDXL_UNET_CONFIG);
    expect(asMap(ours.map((p) => [p.name, p.shape]))).toEqual(asMap(REF.sdxl.params));
    expect(ours).toHaveLength(1680);
    expect(ours.reduce((a, p) => a + numel(p.shape), 0)).toBe(SDXL_UNET_PARAMETERS);
    expect(REF.sdxl.config).toMatchObject(SDXL_UNET_CONFIG as unknown as Record<string, unknown>);
  });

  it('SDXL\'s NPO LoRA sites: 560 attention projections; rank 8 is 11,612,160 parameters = 46.4 MB fp32 (the released file: 46.6 MB)', () => {
    const sites = unetParameters(SDXL_UNET_CONFIG).filter((p) => p.role === 'attn-proj');
    expect(sites).toHaveLength(560);
    expect(sites.reduce((a, p) => a + 8 * (p.shape[0] + p.shape[1]), 0)).toBe(11_612_160);
  });

  it('an unknown block type is refused by name', () => {
    expect(() => unetParameters({ ...SD15_UNET_CONFIG, down_block_types: ['SimpleCrossAttnDownBlock2D'] })).toThrow(/SimpleCrossAttnDownBlock2D/);
  });
});

describe('resident weights per NPO case (npo-memory.ts)', () => {
  const P = SD15_UNET_PARAMETERS;
  // Attention projections by width d (4·d² self + d² q + d² out cross + 2·768·d cross k/v), 5 blocks at 320 and 640,
  // 6 at 1280 (2 down + 3 up each, plus the mid block's at 1280): worked out by hand.
  const sites = 5 * (6 * 320 * 320 + 2 * 768 * 320) + 5 * (6 * 640 * 640 + 2 * 768 * 640) + 6 * (6 * 1280 * 1280 + 2 * 768 * 1280);
  const lora = 1_594_368;
  const params = unetParameters(SD15_UNET_CONFIG);

  it('(a) θ_pos; (b) + θ_neg at the 128 δ sites + δ; (b2) + η factors; (c1) 3 copies + δ; (c2) 4 copies + δ', () => {
    expect(sites).toBe(93_511_680);
    expect(residentWeights(params, 'a').params).toBe(P);
    expect(residentWeights(params, 'b').params).toBe(P + sites + lora);
    expect(residentWeights(params, 'b2').params).toBe(P + sites + 2 * lora);
    expect(residentWeights(params, 'c1').params).toBe(3 * P + lora);
    expect(residentWeights(params, 'c2').params).toBe(4 * P + lora);
  });
});
