// Tests for LoRA key formats: files built by hand in each format (as diffusers, PEFT and kohya write them) map to
// the right module paths with the right scale, and scale·up·down equals a float64 reference ΔW; serializeLora
// round-trips; every malformed LoRA gives its specific error.
import { describe, expect, it } from 'vitest';
import { LoraError } from './errors.ts';
import { loraDeltaWeight, parseLora, TEXT_ENCODER_REASON, UNMATCHED_REASON } from './formats.ts';
import { classifyKey, sgmPath } from './keys.ts';
import { writeSafetensors } from './safetensors.ts';
import type { TensorToWrite } from './safetensors.ts';
import { serializeLora } from './serialize.ts';
import type { LoraEntry, LoraSet, LoraTarget } from './types.ts';

// Small targets with SD1.5 module names; in ≠ out on several so a transposed orientation cannot pass.
const TARGETS: LoraTarget[] = [
  { modulePath: 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q', inFeatures: 6, outFeatures: 6 },
  { modulePath: 'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k', inFeatures: 5, outFeatures: 6 },
  { modulePath: 'mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0', inFeatures: 8, outFeatures: 8 },
  { modulePath: 'up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_out.0', inFeatures: 6, outFeatures: 7 },
];

/** Reference LoRA in float64 (values already float32-representable, so files store them exactly). */
interface RefModule { path: string; rank: number; alpha: number | null; A: number[]; B: number[]; nIn: number; nOut: number }

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.fround((s / 2 ** 32 - 0.5) * 0.2);
  };
}

function makeRef(alphas: (number | null)[], seed = 1): RefModule[] {
  const r = rng(seed);
  return TARGETS.map((t, i) => {
    const rank = [4, 2, 3, 1][i];
    return {
      path: t.modulePath, rank, alpha: alphas[i], nIn: t.inFeatures, nOut: t.outFeatures,
      A: Array.from({ length: rank * t.inFeatures }, r), B: Array.from({ length: t.outFeatures * rank }, r),
    };
  });
}

/** ΔW[o][i] = (alpha / rank) · Σ_k B[o,k]·A[k,i] in float64, written out independently of loraDeltaWeight. */
function refDelta(m: RefModule, scale: number): number[] {
  const out: number[] = [];
  for (let o = 0; o < m.nOut; o++) {
    for (let i = 0; i < m.nIn; i++) {
      let s = 0;
      for (let k = 0; k < m.rank; k++) s += m.B[o * m.rank + k] * m.A[k * m.nIn + i];
      out.push(scale * s);
    }
  }
  return out;
}

function expectDelta(entry: LoraEntry, m: RefModule, scale: number, relTol = 1e-6): void {
  const ref = refDelta(m, scale);
  const got = loraDeltaWeight(entry);
  expect(got.length).toBe(ref.length);
  const maxRef = Math.max(...ref.map(Math.abs));
  for (let j = 0; j < ref.length; j++) expect(Math.abs(got[j] - ref[j])).toBeLessThanOrEqual(relTol * maxRef);
}

function file(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  return writeSafetensors(tensors, metadata);
}

function errorOf(fn: () => unknown): LoraError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(LoraError);
    return e as LoraError;
  }
  throw new Error('expected a LoraError, nothing was thrown');
}

const kohya = (p: string) => `lora_unet_${p.replace(/\./g, '_')}`;

describe('parseLora on files built as each tool writes them', () => {
  it('diffusers (old): unet.<path>.lora.down/up.weight, no alpha -> scale 1, ΔW matches float64 reference', () => {
    const ref = makeRef([null, null, null, null]);
    const t: Record<string, TensorToWrite> = {};
    for (const m of ref) {
      t[`unet.${m.path}.lora.down.weight`] = { shape: [m.rank, m.nIn], data: m.A };
      t[`unet.${m.path}.lora.up.weight`] = { shape: [m.nOut, m.rank], data: m.B };
    }
    const set = parseLora(file(t), TARGETS);
    expect(set.format).toBe('diffusers');
    expect([...set.entries.keys()]).toEqual(TARGETS.map((x) => x.modulePath));
    ref.forEach((m) => {
      const e = set.entries.get(m.path)!;
      expect([e.rank, e.scale, e.inFeatures, e.outFeatures]).toEqual([m.rank, 1, m.nIn, m.nOut]);
      expectDelta(e, m, 1);
    });
  });

  it('diffusers attention-processor form (no prefix, to_out_lora -> to_out.0) and with a <path>.alpha tensor', () => {
    const ref = makeRef([null, null, 6, null]);
    const mid = ref[2];
    const proc = 'mid_block.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora';
    const set = parseLora(file({
      [`${proc}.down.weight`]: { shape: [mid.rank, mid.nIn], data: mid.A },
      [`${proc}.up.weight`]: { shape: [mid.nOut, mid.rank], data: mid.B },
      [`${mid.path}.alpha`]: { shape: [], data: [6] },
    }), TARGETS);
    expect(set.format).toBe('diffusers');
    expect(set.entries.get(mid.path)!.scale).toBe(2); // alpha 6 / rank 3
    expectDelta(set.entries.get(mid.path)!, mid, 2);
  });

  it('PEFT: unet.<path>.lora_A/B with diffusers lora_adapter_metadata (lora_alpha, alpha_pattern)', () => {
    const ref = makeRef([8, 8, 8, 8]);
    const t: Record<string, TensorToWrite> = {};
    for (const m of ref) {
      t[`unet.${m.path}.lora_A.weight`] = { shape: [m.rank, m.nIn], data: m.A };
      t[`unet.${m.path}.lora_B.weight`] = { shape: [m.nOut, m.rank], data: m.B };
    }
    const meta = { 'unet.r': 4, 'unet.lora_alpha': 8, 'unet.alpha_pattern': { 'attn2.to_out.0': 3 }, 'unet.target_modules': ['to_q', 'to_k', 'to_out.0'] };
    const set = parseLora(file(t, { format: 'pt', lora_adapter_metadata: JSON.stringify(meta) }), TARGETS);
    expect(set.format).toBe('peft');
    const scales = ref.map((m) => set.entries.get(m.path)!.scale);
    expect(scales).toEqual([8 / 4, 8 / 2, 8 / 3, 3 / 1]); // last one from alpha_pattern (suffix match)
    ref.forEach((m, i) => expectDelta(set.entries.get(m.path)!, m, scales[i]));
  });

  it('PEFT: base_model.model.<path> prefix, unprefixed metadata with use_rslora, and no metadata -> scale 1', () => {
    const ref = makeRef([null, null, null, null]);
    const t: Record<string, TensorToWrite> = {};
    for (const m of ref.slice(0, 2)) {
      t[`base_model.model.${m.path}.lora_A.weight`] = { shape: [m.rank, m.nIn], data: m.A };
      t[`base_model.model.${m.path}.lora_B.weight`] = { shape: [m.nOut, m.rank], data: m.B };
    }
    const rs = parseLora(file(t, { lora_adapter_metadata: JSON.stringify({ r: 4, lora_alpha: 16, use_rslora: true }) }), TARGETS);
    expect(rs.entries.get(ref[0].path)!.scale).toBe(16 / Math.sqrt(4));
    expect(rs.entries.get(ref[1].path)!.scale).toBe(16 / Math.sqrt(2));
    const plain = parseLora(file(t), TARGETS);
    expect([...plain.entries.values()].map((e) => e.scale)).toEqual([1, 1]);
    expectDelta(plain.entries.get(ref[1].path)!, ref[1], 1);
  });

  it('kohya: lora_unet_<name>.lora_down/up + .alpha (scale alpha/r; missing or 0 alpha -> 1)', () => {
    const ref = makeRef([2, null, 0, 0.5]);
    const t: Record<string, TensorToWrite> = {};
    for (const m of ref) {
      t[`${kohya(m.path)}.lora_down.weight`] = { shape: [m.rank, m.nIn], data: m.A, dtype: 'F32' };
      t[`${kohya(m.path)}.lora_up.weight`] = { shape: [m.nOut, m.rank], data: m.B };
      if (m.alpha !== null) t[`${kohya(m.path)}.alpha`] = { shape: [], data: [m.alpha] };
    }
    const set = parseLora(file(t), TARGETS);
    expect(set.format).toBe('kohya');
    const scales = ref.map((m) => set.entries.get(m.path)!.scale);
    expect(scales).toEqual([2 / 4, 1, 1, 0.5 / 1]);
    ref.forEach((m, i) => expectDelta(set.entries.get(m.path)!, m, scales[i]));
  });

  it('kohya SDXL files in SGM block names map to diffusers paths (layers_per_block = 2)', () => {
    expect(sgmPath('down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q')).toBe('input_blocks.4.1.transformer_blocks.0.attn1.to_q');
    expect(sgmPath('down_blocks.2.attentions.1.transformer_blocks.9.attn2.to_k')).toBe('input_blocks.8.1.transformer_blocks.9.attn2.to_k');
    expect(sgmPath('up_blocks.0.attentions.2.transformer_blocks.0.attn1.to_v')).toBe('output_blocks.2.1.transformer_blocks.0.attn1.to_v');
    expect(sgmPath('up_blocks.1.attentions.0.proj_in')).toBe('output_blocks.3.1.proj_in');
    expect(sgmPath('mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0')).toBe('middle_block.1.transformer_blocks.0.attn1.to_out.0');
    const target = { modulePath: 'down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q', inFeatures: 4, outFeatures: 4 };
    const set = parseLora(file({
      'lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight': { shape: [1, 4], data: [1, 2, 3, 4] },
      'lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight': { shape: [4, 1], data: [1, 0, 0, 0] },
    }), [target]);
    expect([...set.entries.keys()]).toEqual([target.modulePath]);
  });

  it('accepts 1×1 conv LoRA [r, in, 1, 1] / [out, r, 1, 1] (proj_in of SD1.5)', () => {
    const target = { modulePath: 'down_blocks.1.attentions.0.proj_in', inFeatures: 3, outFeatures: 2 };
    const set = parseLora(file({
      [`${kohya(target.modulePath)}.lora_down.weight`]: { shape: [1, 3, 1, 1], data: [1, 2, 3] },
      [`${kohya(target.modulePath)}.lora_up.weight`]: { shape: [2, 1, 1, 1], data: [10, -1] },
    }), [target]);
    expect(Array.from(loraDeltaWeight(set.entries.get(target.modulePath)!))).toEqual([10, 20, 30, -1, -2, -3]);
    expect(Array.from(loraDeltaWeight(set.entries.get(target.modulePath)!, 'in-out'))).toEqual([10, -1, 20, -2, 30, -3]);
    expect(set.entries.get(target.modulePath)!.conv1x1).toBe(true);
    for (const format of ['diffusers', 'peft', 'kohya'] as const) { // written back 4-D, as torch's Conv2d expects
      const bytes = serializeLora(set, format);
      const n = new DataView(bytes.buffer).getUint32(0, true);
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
      const shapes = Object.entries(header).filter(([k]) => k.endsWith('.weight')).map(([, v]) => (v as { shape: number[] }).shape);
      expect(shapes.sort()).toEqual([[1, 3, 1, 1], [2, 1, 1, 1]]);
      expect(parseLora(bytes, [target]).entries.get(target.modulePath)!.conv1x1).toBe(true);
    }
  });

  it('maps realistic SD1.5 keys ([8, 320] down) and skips text-encoder keys with a reason', () => {
    const q = 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q';
    const k2 = 'up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_k';
    const targets = [
      { modulePath: q, inFeatures: 320, outFeatures: 320 },
      { modulePath: k2, inFeatures: 768, outFeatures: 320 },
    ];
    const set = parseLora(file({
      [`unet.${q}.lora.down.weight`]: { shape: [8, 320], data: new Float32Array(8 * 320).fill(0.01) },
      [`unet.${q}.lora.up.weight`]: { shape: [320, 8], data: new Float32Array(320 * 8).fill(0.02) },
      [`unet.${k2}.lora.down.weight`]: { shape: [8, 768], data: new Float32Array(8 * 768) },
      [`unet.${k2}.lora.up.weight`]: { shape: [320, 8], data: new Float32Array(320 * 8) },
      'text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora.down.weight': { shape: [8, 768], data: new Float32Array(8 * 768) },
      'text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora.up.weight': { shape: [768, 8], data: new Float32Array(8 * 768) },
    }), targets);
    expect([...set.entries.keys()]).toEqual([q, k2]);
    expect(set.entries.get(q)!.rank).toBe(8);
    expect(loraDeltaWeight(set.entries.get(q)!)[0]).toBeCloseTo(8 * 0.01 * 0.02, 9);
    expect(set.skipped).toEqual([
      { key: 'text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora.down.weight', reason: TEXT_ENCODER_REASON },
      { key: 'text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora.up.weight', reason: TEXT_ENCODER_REASON },
    ]);
    const kohyaSet = parseLora(file({
      [`${kohya(q)}.lora_down.weight`]: { shape: [8, 320], data: new Float32Array(8 * 320) },
      [`${kohya(q)}.lora_up.weight`]: { shape: [320, 8], data: new Float32Array(320 * 8) },
      [`${kohya(q)}.alpha`]: { shape: [], data: [4] },
      'lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': { shape: [1, 2], data: [0, 0] },
      'lora_te2_text_model_encoder_layers_0_self_attn_q_proj.hada_w1_a': { shape: [1, 2], data: [0, 0] },
    }), targets);
    expect(kohya(q)).toBe('lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q');
    expect(kohyaSet.entries.get(q)!.scale).toBe(0.5);
    expect(kohyaSet.skipped.map((s) => s.reason)).toEqual([TEXT_ENCODER_REASON, TEXT_ENCODER_REASON]);
  });
});

describe('serializeLora round trips', () => {
  const ref = makeRef([8, 1, 6, 0.25], 7);
  const set: Pick<LoraSet, 'entries'> = {
    entries: new Map(ref.map((m) => [m.path, {
      down: Float32Array.from(m.A), up: Float32Array.from(m.B), rank: m.rank, scale: m.alpha! / m.rank, inFeatures: m.nIn, outFeatures: m.nOut,
    }])),
  };

  for (const format of ['peft', 'kohya'] as const) {
    it(`${format}: F32 reads back identically (down, up, rank, scale)`, () => {
      const back = parseLora(serializeLora(set, format), TARGETS);
      expect(back.format).toBe(format);
      expect([...back.entries.keys()]).toEqual([...set.entries.keys()]);
      for (const [path, e] of set.entries) {
        const b = back.entries.get(path)!;
        expect(Array.from(b.down)).toEqual(Array.from(e.down));
        expect(Array.from(b.up)).toEqual(Array.from(e.up));
        expect([b.rank, b.scale, b.inFeatures, b.outFeatures]).toEqual([e.rank, e.scale, e.inFeatures, e.outFeatures]);
      }
    });
  }

  it('diffusers: F32 reads back with scale folded into up; ΔW equals the float64 reference', () => {
    const back = parseLora(serializeLora(set, 'diffusers'), TARGETS);
    expect(back.format).toBe('diffusers');
    ref.forEach((m) => {
      const b = back.entries.get(m.path)!;
      expect(b.scale).toBe(1);
      expect(Array.from(b.down)).toEqual(m.A);
      expectDelta(b, m, m.alpha! / m.rank);
    });
    const unit = { entries: new Map([[ref[1].path, { ...set.entries.get(ref[1].path)!, scale: 1 }]]) };
    expect(Array.from(parseLora(serializeLora(unit, 'diffusers'), TARGETS).entries.get(ref[1].path)!.up)).toEqual(ref[1].B);
  });

  it('the same ΔW = scale·up·down comes out of every format (float64 reference, rel. 1e-6)', () => {
    for (const format of ['diffusers', 'peft', 'kohya'] as const) {
      const back = parseLora(serializeLora(set, format), TARGETS);
      ref.forEach((m) => expectDelta(back.entries.get(m.path)!, m, m.alpha! / m.rank));
    }
  });

  it('F16 files read back within half-precision rounding (rel. 2^-11 per value)', () => {
    for (const format of ['diffusers', 'peft', 'kohya'] as const) {
      const back = parseLora(serializeLora(set, format, { dtype: 'F16' }), TARGETS);
      for (const [path, e] of set.entries) {
        const b = back.entries.get(path)!;
        const up = format === 'diffusers' ? e.up.map((v) => v * e.scale) : e.up;
        e.down.forEach((v, i) => expect(Math.abs(b.down[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 2 ** -25));
        up.forEach((v, i) => expect(Math.abs(b.up[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 2 ** -25));
        expect(b.scale).toBe(format === 'diffusers' ? 1 : e.scale); // kohya alphas stay F32
      }
    }
  });

  it('writes the keys and metadata each tool expects', () => {
    const p = TARGETS[0].modulePath;
    const one = { entries: new Map([[p, set.entries.get(p)!]]) };
    const keysOf = (b: Uint8Array) => {
      const n = new DataView(b.buffer).getUint32(0, true);
      return JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n)));
    };
    expect(Object.keys(keysOf(serializeLora(one, 'diffusers'))).sort()).toEqual(['__metadata__', `unet.${p}.lora.down.weight`, `unet.${p}.lora.up.weight`]);
    expect(Object.keys(keysOf(serializeLora(one, 'kohya'))).sort()).toEqual(['__metadata__', `${kohya(p)}.alpha`, `${kohya(p)}.lora_down.weight`, `${kohya(p)}.lora_up.weight`]);
    const peft = keysOf(serializeLora(one, 'peft', { metadata: { note: 'x' } }));
    expect(Object.keys(peft).sort()).toEqual(['__metadata__', `unet.${p}.lora_A.weight`, `unet.${p}.lora_B.weight`]);
    expect(peft.__metadata__.note).toBe('x');
    expect(JSON.parse(peft.__metadata__.lora_adapter_metadata)).toMatchObject({ 'unet.r': 4, 'unet.lora_alpha': 8, 'unet.target_modules': [p] });
  });

  it('refuses entries it cannot write faithfully', () => {
    const p = TARGETS[0].modulePath;
    const e = set.entries.get(p)!;
    expect(errorOf(() => serializeLora({ entries: new Map([[p, { ...e, scale: 0 }]]) }, 'kohya')).message).toContain('has scale 0');
    expect(errorOf(() => serializeLora({ entries: new Map([[p, { ...e, rank: 3 }]]) }, 'peft')).message).toContain(`down has ${e.down.length} values, expected rank·in = 18`);
    const nan = Float32Array.from(e.up);
    nan[2] = NaN;
    expect(errorOf(() => serializeLora({ entries: new Map([[p, { ...e, up: nan }]]) }, 'peft')).message).toContain('up[2] = NaN is not finite');
    const clash = new Map([['a.b_c', { ...e, inFeatures: 6 }], ['a_b.c', e]]);
    expect(errorOf(() => serializeLora({ entries: clash }, 'kohya')).message).toContain('a.b_c and a_b.c both spell lora_unet_a_b_c');
  });
});

describe('parseLora errors', () => {
  const [q, k] = TARGETS;
  const qDown = { shape: [2, 6], data: new Float32Array(12) };
  const qUp = { shape: [6, 2], data: new Float32Array(12) };
  const base = { [`unet.${q.modulePath}.lora.down.weight`]: qDown, [`unet.${q.modulePath}.lora.up.weight`]: qUp };
  const cases: [string, Record<string, TensorToWrite>, string, string][] = [
    ['keys that match no target', {
      ...base,
      'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_qq.lora.down.weight': qDown,
      'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_qq.lora.up.weight': qUp,
      'unet.down_blocks.9.resnets.0.conv1.lora.down.weight': qDown,
    }, 'unmatched',
    '3 of 5 diffusers LoRA keys match no target weight of the model (4 targets): "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_qq.lora.down.weight" (closest expected: "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora.down.weight")'],
    ['down with the wrong input features', { ...base, [`unet.${k.modulePath}.lora.down.weight`]: qDown, [`unet.${k.modulePath}.lora.up.weight`]: qUp }, 'shape',
      `unet.${k.modulePath}.lora.down.weight: shape [2, 6] has 6 input features but ${k.modulePath} expects 5 (expected [2, 5])`],
    ['up with the wrong output features', { [`unet.${q.modulePath}.lora.down.weight`]: qDown, [`unet.${q.modulePath}.lora.up.weight`]: { shape: [7, 2], data: new Float32Array(14) } }, 'shape',
      `unet.${q.modulePath}.lora.up.weight: shape [7, 2] has 7 output features but ${q.modulePath} expects 6 (expected [6, 2])`],
    ['down without its up', { [`unet.${q.modulePath}.lora.down.weight`]: qDown }, 'missing',
      `unet.${q.modulePath}.lora.down.weight has no matching up weight for ${q.modulePath} (expected "unet.${q.modulePath}.lora.up.weight")`],
    ['up without its down (kohya)', { [`${kohya(q.modulePath)}.lora_up.weight`]: qUp, [`${kohya(q.modulePath)}.alpha`]: { shape: [], data: [1] } }, 'missing',
      `${kohya(q.modulePath)}.lora_up.weight has no matching down weight for ${q.modulePath} (expected "${kohya(q.modulePath)}.lora_down.weight")`],
    ['rank mismatch', { [`unet.${q.modulePath}.lora_A.weight`]: qDown, [`unet.${q.modulePath}.lora_B.weight`]: { shape: [6, 3], data: new Float32Array(18) } }, 'shape',
      `rank mismatch for ${q.modulePath}: unet.${q.modulePath}.lora_A.weight has rank 2 (shape [2, 6]) but unet.${q.modulePath}.lora_B.weight has rank 3 (shape [6, 3])`],
    ['mixed formats', { ...base, [`unet.${k.modulePath}.lora_A.weight`]: qDown }, 'format', 'LoRA file mixes key formats: diffusers (e.g. '],
    ['NaN in up', { ...base, [`unet.${q.modulePath}.lora.up.weight`]: { shape: [6, 2], data: [0, 0, 0, NaN, 0, 0, 0, 0, 0, 0, 0, 0] } }, 'value',
      `unet.${q.modulePath}.lora.up.weight: value NaN at index 3 (LoRA weights must be finite)`],
    ['Inf in down', { ...base, [`unet.${q.modulePath}.lora.down.weight`]: { shape: [2, 6], data: [0, Infinity, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] } }, 'value', 'value Infinity at index 1'],
    ['3×3 conv LoRA', { [`${kohya(q.modulePath)}.lora_down.weight`]: { shape: [2, 6, 3, 3], data: new Float32Array(108) }, [`${kohya(q.modulePath)}.lora_up.weight`]: { shape: [6, 2, 1, 1], data: new Float32Array(12) } }, 'format',
      'conv LoRA with a 3×3 kernel (shape [2, 6, 3, 3]) is unsupported'],
    ['LoHa', { [`${kohya(q.modulePath)}.hada_w1_a`]: qDown, [`${kohya(q.modulePath)}.hada_w1_b`]: qDown }, 'format', 'unsupported LoRA variant LoHa (LyCORIS hadamard product): 2 UNet tensor(s)'],
    ['DoRA', { ...base, [`unet.${q.modulePath}.lora_magnitude_vector`]: { shape: [6], data: new Float32Array(6) } }, 'format', 'unsupported LoRA variant DoRA'],
    ['not a LoRA file', { 'model.diffusion_model.input_blocks.0.0.weight': qDown }, 'format', 'LoRA file has no LoRA tensors in a known format: "model.diffusion_model.input_blocks.0.0.weight"'],
    ['stray non-LoRA tensor', { ...base, 'unet.conv_in.weight': qDown }, 'format', '1 of 3 tensors that are not LoRA weights in a known format: "unet.conv_in.weight"'],
    ['two keys for one weight', { ...base, [`${q.modulePath}.lora.down.weight`]: qDown }, 'format', `.lora.down.weight" both give the down weight of ${q.modulePath}`],
    ['non-scalar alpha', { ...base, [`unet.${q.modulePath}.alpha`]: { shape: [2], data: [1, 1] } }, 'shape', `unet.${q.modulePath}.alpha: alpha must be a single number, got shape [2]`],
    ['1-D down', { [`unet.${q.modulePath}.lora.down.weight`]: { shape: [12], data: new Float32Array(12) }, [`unet.${q.modulePath}.lora.up.weight`]: qUp }, 'shape', 'shape [12] is not a LoRA down matrix'],
  ];
  for (const [name, tensors, code, message] of cases) {
    it(`${name}`, () => {
      const e = errorOf(() => parseLora(file(tensors), TARGETS));
      expect(e.message).toContain(message);
      expect(e.code).toBe(code);
    });
  }

  it('bad PEFT metadata', () => {
    const t = { [`unet.${q.modulePath}.lora_A.weight`]: qDown, [`unet.${q.modulePath}.lora_B.weight`]: qUp };
    expect(errorOf(() => parseLora(file(t, { lora_adapter_metadata: '{oops' }), TARGETS)).message).toContain('lora_adapter_metadata is not valid JSON');
    expect(errorOf(() => parseLora(file(t, { lora_adapter_metadata: '{"lora_alpha":"8"}' }), TARGETS)).message).toContain('lora_alpha is "8", expected a number');
    const regex = JSON.stringify({ lora_alpha: 8, alpha_pattern: { '.*to_q': 4 } });
    expect(errorOf(() => parseLora(file(t, { lora_adapter_metadata: regex }), TARGETS)).message).toContain('alpha_pattern key ".*to_q" is a regular expression');
  });

  it('ambiguous kohya names are refused, not guessed', () => {
    const targets = [{ modulePath: 'a.b_c', inFeatures: 2, outFeatures: 2 }, { modulePath: 'a_b.c', inFeatures: 2, outFeatures: 2 }];
    const e = errorOf(() => parseLora(file({ 'lora_unet_a_b_c.lora_down.weight': { shape: [1, 2], data: [1, 1] }, 'lora_unet_a_b_c.lora_up.weight': { shape: [2, 1], data: [1, 1] } }), targets));
    expect(e.message).toContain('is ambiguous: it spells both a.b_c and a_b.c');
  });

  it("{ unmatched: 'skip' } lists unmatched keys instead of failing", () => {
    const extra = 'unet.down_blocks.9.resnets.0.conv1.lora.down.weight';
    const set = parseLora(file({ ...base, [extra]: qDown }), TARGETS, { unmatched: 'skip' });
    expect([...set.entries.keys()]).toEqual([q.modulePath]);
    expect(set.skipped).toEqual([{ key: extra, reason: UNMATCHED_REASON }]);
  });

  it('safetensors errors surface unchanged through parseLora', () => {
    const e = errorOf(() => parseLora(new Uint8Array(3), TARGETS));
    expect(e.code).toBe('safetensors');
    expect(e.message).toContain('file is 3 bytes');
  });
});

/** Every attention projection of SD1.5's UNet (128 targets), with its real in/out features. */
function sd15Targets(): LoraTarget[] {
  const blocks: [string, number][] = [];
  [320, 640, 1280].forEach((c, i) => [0, 1].forEach((j) => blocks.push([`down_blocks.${i}.attentions.${j}`, c])));
  blocks.push(['mid_block.attentions.0', 1280]);
  [1280, 640, 320].forEach((c, i) => [0, 1, 2].forEach((j) => blocks.push([`up_blocks.${i + 1}.attentions.${j}`, c])));
  return blocks.flatMap(([b, c]) => {
    const t = `${b}.transformer_blocks.0`;
    return [
      ...['to_q', 'to_k', 'to_v', 'to_out.0'].map((p) => ({ modulePath: `${t}.attn1.${p}`, inFeatures: c, outFeatures: c })),
      { modulePath: `${t}.attn2.to_q`, inFeatures: c, outFeatures: c },
      { modulePath: `${t}.attn2.to_k`, inFeatures: 768, outFeatures: c },
      { modulePath: `${t}.attn2.to_v`, inFeatures: 768, outFeatures: c },
      { modulePath: `${t}.attn2.to_out.0`, inFeatures: c, outFeatures: c },
    ];
  });
}

describe('a full-size SD1.5 rank-8 LoRA (the shape of the released NPO weights)', () => {
  it('maps all 128 modules in every format; kohya names of SD1.5 are unambiguous', () => {
    const targets = sd15Targets();
    expect(targets.length).toBe(128);
    const r = rng(3);
    const entries = new Map(targets.map((t) => [t.modulePath, {
      down: Float32Array.from({ length: 8 * t.inFeatures }, r), up: Float32Array.from({ length: t.outFeatures * 8 }, r),
      rank: 8, scale: 1, inFeatures: t.inFeatures, outFeatures: t.outFeatures,
    }]));
    for (const format of ['diffusers', 'peft', 'kohya'] as const) {
      const bytes = serializeLora({ entries }, format);
      const t0 = performance.now();
      const set = parseLora(bytes, targets);
      const ms = performance.now() - t0;
      expect(set.entries.size).toBe(128);
      const first = set.entries.get('down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q')!;
      expect([first.rank, first.inFeatures, first.outFeatures]).toEqual([8, 320, 320]);
      expect(Array.from(set.entries.get('up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_k')!.down.subarray(0, 4)))
        .toEqual(Array.from(entries.get('up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_k')!.down.subarray(0, 4)));
      console.log(`SD1.5 rank-8 ${format}: ${(bytes.length / 1e6).toFixed(1)} MB parsed in ${ms.toFixed(0)} ms`);
    }
  });

  it('reads a file held in a larger buffer at a non-zero byte offset', () => {
    const p = TARGETS[1];
    const bytes = serializeLora({ entries: new Map([[p.modulePath, { down: new Float32Array(10).fill(1), up: new Float32Array(12).fill(2), rank: 2, scale: 1, inFeatures: 5, outFeatures: 6 }]]) }, 'kohya');
    const big = new Uint8Array(bytes.length + 13);
    big.set(bytes, 5);
    const set = parseLora(big.subarray(5, 5 + bytes.length), TARGETS);
    expect(Array.from(set.entries.get(p.modulePath)!.up)).toEqual(new Array(12).fill(2));
  });
});

describe('classifyKey', () => {
  it('recognises the diffusers spellings seen in the wild (diffusers utils/state_dict_utils.py)', () => {
    const p = 'down_blocks.0.attentions.0.transformer_blocks.0.attn1';
    const cases: [string, string, string][] = [
      [`unet.${p}.processor.to_out_lora.up.weight`, `unet.${p}.to_out.0`, 'up'],
      [`${p}.to_k_lora.down.weight`, `${p}.to_k`, 'down'],
      [`unet.${p}.to_v.lora_layer.down.weight`, `unet.${p}.to_v`, 'down'],
      [`unet.${p}.to_q.lora_linear_layer.up.weight`, `unet.${p}.to_q`, 'up'],
    ];
    for (const [key, module, role] of cases) expect(classifyKey(key)).toEqual({ kind: 'lora', format: 'diffusers', module, role, textEncoder: false });
    expect(classifyKey('text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.up.weight')).toMatchObject({ kind: 'lora', textEncoder: true });
    expect(classifyKey('lora_te2_text_model_encoder_layers_0_mlp_fc1.alpha')).toMatchObject({ kind: 'lora', format: 'kohya', textEncoder: true });
    expect(classifyKey('lora_unet_x.lokr_w1')).toMatchObject({ kind: 'unsupported', variant: 'LoKr (LyCORIS Kronecker product)' });
  });
});

describe('parseLora on corrupted files', () => {
  it('truncated or byte-flipped LoRA files only ever give LoraError or a valid set (300 mutants per format)', () => {
    const m = makeRef([4, 1, 6, 0.25], 11);
    const entries = new Map(m.map((x) => [x.path, { down: Float32Array.from(x.A), up: Float32Array.from(x.B), rank: x.rank, scale: 1, inFeatures: x.nIn, outFeatures: x.nOut }]));
    for (const format of ['diffusers', 'peft', 'kohya'] as const) {
      const valid = serializeLora({ entries }, format, { dtype: 'F16' });
      let seed = 99;
      const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
      for (let i = 0; i < 300; i++) {
        let b = valid.slice();
        if (i % 3 === 0) b = b.slice(0, rand(b.length));
        else for (let j = 0; j <= i % 4; j++) b[rand(b.length)] = rand(256);
        try {
          const set = parseLora(b, TARGETS);
          for (const e of set.entries.values()) expect(e.down.length).toBe(e.rank * e.inFeatures);
        } catch (e) {
          if (!(e instanceof LoraError)) throw e;
        }
      }
    }
  });
});
