// The base model's training graph against the inference models it trains: same loss as text encoder → UNet → MSE run
// separately, and gradients that match central finite differences.
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { writeModel } from '../onnx/model-io.ts';
import { TINY_UNET } from '../embedded/unet.ts';
import { buildBaseModels, buildTrainingGraph } from './base-graph.ts';
import { makeBatch, minSnrWeight, TRAIN_ALPHAS_CUMPROD } from './base-data.ts';

const B = 2, L = 16, S = TINY_UNET.sampleSize;

describe('base-model training graph', () => {
  it('computes the inference models\' MSE to the target and its gradients (finite differences, float32 tolerance)', async () => {
    const graph = buildTrainingGraph();
    const session = await ort.InferenceSession.create(graph.bytes, { intraOpNumThreads: 1, graphOptimizationLevel: 'disabled' });
    const batch = makeBatch(5, 0, B, L, 0.5, 5); // Min-SNR-5 weights: the loss is the weighted mean
    const feeds = (weights: Map<string, Float32Array>): Record<string, ort.Tensor> => {
      const f: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', batch.inputIds, [B, L]),
        sample: new ort.Tensor('float32', batch.sample, [B, 3, S, S]),
        timestep: new ort.Tensor('float32', batch.timestep, [B]),
        target: new ort.Tensor('float32', batch.target, [B, 3, S, S]),
        loss_weight: new ort.Tensor('float32', batch.lossWeight, [B]),
      };
      for (const [name, w] of weights) f[name] = new ort.Tensor('float32', w, graph.weightDims.get(name)!);
      return f;
    };
    const out = await session.run(feeds(graph.weights));
    const loss = (out.loss.data as Float32Array)[0];

    const models = buildBaseModels();
    const te = await ort.InferenceSession.create(writeModel(models.textEncoder));
    const unet = await ort.InferenceSession.create(writeModel(models.unet));
    const hidden = (await te.run({ input_ids: new ort.Tensor('int64', batch.inputIds, [B, L]) })).last_hidden_state;
    const eps = (await unet.run({
      sample: new ort.Tensor('float32', batch.sample, [B, 3, S, S]),
      timestep: new ort.Tensor('float32', batch.timestep, [B]),
      encoder_hidden_states: hidden,
    })).out_sample.data as Float32Array;
    const perSample = eps.length / B;
    const reference = eps.reduce((s, v, i) => s + batch.lossWeight[Math.floor(i / perSample)] * (v - batch.target[i]) ** 2, 0) / eps.length;
    expect(Math.abs(loss - reference)).toBeLessThan(1e-5 * reference);

    // One element each in the UNet's last layer, a cross-attention key projection and the token embedding table.
    const probes: [string, number][] = [
      ['conv_out.bias', 1],
      ['down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight', 7],
      ['text_model.embeddings.token_embedding.weight', Number(batch.inputIds[1]) * 64 + 3],
    ];
    for (const [name, index] of probes) {
      const analytic = (out[`${name}_grad`].data as Float32Array)[index];
      const w = graph.weights.get(name)!;
      const h = 1e-2;
      const at = async (delta: number) => {
        const copy = new Map(graph.weights);
        const changed = w.slice();
        changed[index] += delta;
        copy.set(name, changed);
        return (await session.run(feeds(copy))).loss.data[0] as number;
      };
      const numeric = ((await at(h)) - (await at(-h))) / (2 * h);
      // h = 1e-2 on a float32 loss near 1: round-off ~1e-5 in the difference quotient; measured agreement ~1 %.
      expect(Math.abs(numeric)).toBeGreaterThan(1e-4);
      expect(Math.abs(analytic - numeric)).toBeLessThan(3e-5 + 0.02 * Math.abs(numeric));
    }
  });

  it('weights timesteps by Min-SNR-γ on the v-loss: min(SNR + 1, γ)/(SNR + 1), 1 at high noise, falling at low noise', () => {
    const snrPlusOne = (t: number) => 1 / (1 - TRAIN_ALPHAS_CUMPROD[t]);
    for (const t of [0, 50, 200, 500, 999]) {
      const expected = Math.min(snrPlusOne(t), 5) / snrPlusOne(t);
      expect(minSnrWeight(t, 5)).toBeCloseTo(expected, 12);
      expect(minSnrWeight(t, 0)).toBe(1);
    }
    expect(minSnrWeight(999, 5)).toBe(1);
    expect(minSnrWeight(0, 5)).toBeLessThan(0.01); // t = 0 is nearly clean: SNR + 1 in the thousands
    for (let t = 1; t < 1000; t++) expect(minSnrWeight(t, 5)).toBeGreaterThanOrEqual(minSnrWeight(t - 1, 5));
  });

  it("weights timesteps as diffusers' train_text_to_image.py does for v-prediction: min(SNR, γ)/(SNR + 1)", () => {
    // diffusers' compute_snr: SNR = (√ᾱ / √(1 − ᾱ))², computed here from ᾱ directly, not from SNR + 1.
    const snr = (t: number) => TRAIN_ALPHAS_CUMPROD[t] / (1 - TRAIN_ALPHAS_CUMPROD[t]);
    for (const t of [0, 50, 200, 500, 800, 999]) {
      expect(minSnrWeight(t, 5, 'diffusers')).toBeCloseTo(Math.min(snr(t), 5) / (snr(t) + 1), 12);
      expect(minSnrWeight(t, 0, 'diffusers')).toBe(1);
    }
    // Where SNR ≥ γ both forms cap the same implicit weight; below, diffusers' also fades the noisiest timesteps.
    for (let t = 0; t < 1000; t++) {
      if (snr(t) >= 5) expect(minSnrWeight(t, 5, 'diffusers')).toBeCloseTo(minSnrWeight(t, 5), 12);
      else expect(minSnrWeight(t, 5, 'diffusers')).toBeLessThan(minSnrWeight(t, 5));
    }
    expect(minSnrWeight(999, 5, 'diffusers')).toBeLessThan(0.01);
  });
});
