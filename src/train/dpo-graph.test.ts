// The DPO graph on the embedded UNet architecture (seeded random weights), checked two ways:
// 1. its loss, accuracy, model_diff and ref_diff against a float64 TypeScript evaluation of DESIGN §2 built on
//    separate runs of the LoRA-injected UNet (policy: scale s, reference: scale 0) on x_t computed in TypeScript;
// 2. its LoRA gradients against central finite differences of the forward graph's loss (float32 ORT; step and
//    tolerance stated below), on the largest-gradient coordinates of a few sites and along random directions.
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { paramSource } from '../embedded/layers.ts';
import { createGraphBuilder } from '../onnx/builder.ts';
import { DataType } from '../onnx/proto.ts';
import { buildUnet, TINY_UNET } from '../embedded/unet.ts';
import { findLoraSites } from '../onnx/lora-sites.ts';
import { writeModel } from '../onnx/model-io.ts';
import { injectLora } from '../onnx/passes/inject-lora.ts';
import { buildDpoGraph, type DpoGraph } from './dpo-graph.ts';
import { createRandom } from './random.ts';

const B = 2;
const RANK = 2;
const BETA = 2500;
const SCALE = 0.75;
const IMAGE = 3 * 32 * 32;
const quiet = { logSeverityLevel: 3 as const };

type Feeds = Record<string, ort.Tensor>;
const tensor = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);

describe('Diffusion-DPO graph', () => {
  const unet = buildUnet(TINY_UNET, paramSource(1234));
  let graph: DpoGraph;
  let training: ort.InferenceSession;
  let forward: ort.InferenceSession;
  const rand = createRandom(21);
  const normal = (n: number, std: number) => Float32Array.from({ length: n }, () => rand.normal() * std);
  const inputs = {
    x_w: normal(B * IMAGE, 0.5), x_l: normal(B * IMAGE, 0.5), noise: normal(B * IMAGE, 1),
    alpha_bar: new Float32Array([0.7, 0.2]), timestep: new Float32Array([300, 700]), context: normal(B * 16 * 64, 1),
  };
  const lora = new Map<string, Float32Array>();
  let feeds: Feeds;

  beforeAll(async () => {
    graph = buildDpoGraph(unet, { rank: RANK });
    for (const l of graph.lora) {
      lora.set(l.a, normal(RANK * l.site.inFeatures, 0.3));
      lora.set(l.b, normal(l.site.outFeatures * RANK, 0.3));
    }
    feeds = {
      x_w: tensor(inputs.x_w, [B, 3, 32, 32]), x_l: tensor(inputs.x_l, [B, 3, 32, 32]), noise: tensor(inputs.noise, [B, 3, 32, 32]),
      alpha_bar: tensor(inputs.alpha_bar, [B]), timestep: tensor(inputs.timestep, [B]), context: tensor(inputs.context, [B, 16, 64]),
      beta_dpo: tensor(new Float32Array([BETA]), []), lora_scale: tensor(new Float32Array([SCALE]), []),
    };
    training = await ort.InferenceSession.create(graph.training, quiet);
    forward = await ort.InferenceSession.create(writeModel(graph.forward), quiet);
  });

  const loraFeeds = (values: Map<string, Float32Array>): Feeds =>
    Object.fromEntries(graph.lora.flatMap((l) => [[l.a, tensor(values.get(l.a)!, [RANK, l.site.inFeatures])], [l.b, tensor(values.get(l.b)!, [l.site.outFeatures, RANK])]]));

  it('computes DESIGN §2 exactly: loss, accuracy and the diffs match a float64 evaluation from separate UNet runs', async () => {
    const injected = injectLora(unet, findLoraSites(unet), RANK);
    const session = await ort.InferenceSession.create(writeModel(injected.model), quiet);
    const mse = async (x: Float32Array, scale: number) => {
      const xt = new Float32Array(B * IMAGE);
      for (let p = 0; p < B; p++) {
        const [sa, sb] = [Math.sqrt(inputs.alpha_bar[p]), Math.sqrt(1 - inputs.alpha_bar[p])];
        for (let i = 0; i < IMAGE; i++) xt[p * IMAGE + i] = sa * x[p * IMAGE + i] + sb * inputs.noise[p * IMAGE + i];
      }
      const out = await session.run({
        ...loraFeeds(lora), lora_scale: tensor(new Float32Array([scale]), []),
        sample: tensor(xt, [B, 3, 32, 32]), timestep: tensor(inputs.timestep, [B]), encoder_hidden_states: tensor(inputs.context, [B, 16, 64]),
      });
      const eps = out.out_sample.data as Float32Array;
      return Array.from({ length: B }, (_, p) => {
        let s = 0;
        for (let i = 0; i < IMAGE; i++) s += (eps[p * IMAGE + i] - inputs.noise[p * IMAGE + i]) ** 2;
        return s / IMAGE;
      });
    };
    const [pw, pl, rw, rl] = [await mse(inputs.x_w, SCALE), await mse(inputs.x_l, SCALE), await mse(inputs.x_w, 0), await mse(inputs.x_l, 0)];
    const md = pw.map((v, i) => v - pl[i]);
    const rd = rw.map((v, i) => v - rl[i]);
    const softplus = (u: number) => Math.max(u, 0) + Math.log1p(Math.exp(-Math.abs(u)));
    const wantLoss = md.reduce((s, m, i) => s + softplus(BETA * (m - rd[i])), 0) / B;
    const wantAcc = md.reduce((s, m, i) => s + (m - rd[i] < 0 ? 1 : m === rd[i] ? 0.5 : 0), 0) / B;

    const out = await training.run({ ...feeds, ...loraFeeds(lora) });
    const got = (name: string) => [...(out[name].data as Float32Array)];
    got('model_diff').forEach((v, i) => expect(Math.abs(v - md[i])).toBeLessThan(1e-6));
    got('ref_diff').forEach((v, i) => expect(Math.abs(v - rd[i])).toBeLessThan(1e-6));
    expect(md.some((m, i) => Math.abs(m - rd[i]) > 1e-5)).toBe(true); // the LoRA moves the policy off the reference
    // The loss is mean softplus(β·(model_diff − ref_diff)) of the graph's own diffs (float32 rounding only) ...
    const [gmd, grd] = [got('model_diff'), got('ref_diff')];
    const ownLoss = gmd.reduce((s, m, i) => s + softplus(BETA * (m - grd[i])), 0) / B;
    expect(Math.abs(got('loss')[0] - ownLoss)).toBeLessThan(1e-5 * Math.max(1, ownLoss));
    // ... so, softplus being 1-Lipschitz, it is off the float64 value by at most β · mean(|Δmodel_diff| + |Δref_diff|),
    // the diffs' own errors against the separate runs (each < 1e-6 above; β = 2500 makes that up to 5e-3).
    const lipschitz = (BETA * gmd.reduce((s, m, i) => s + Math.abs(m - md[i]) + Math.abs(grd[i] - rd[i]), 0)) / B;
    expect(Math.abs(got('loss')[0] - wantLoss)).toBeLessThanOrEqual(lipschitz + 1e-5);
    expect(got('accuracy')[0]).toBe(wantAcc);
    await session.release();
  });

  it('LoRA gradients match central finite differences (largest coordinates of 4 sites and 2 random directions; rel. 1e-2; measured ≤ 5e-3)', async () => {
    const out = await training.run({ ...feeds, ...loraFeeds(lora) });
    const grad = (name: string) => out[`${name}_grad`].data as Float32Array;
    const lossAt = async (values: Map<string, Float32Array>) => ((await forward.run({ ...feeds, ...loraFeeds(values) })).loss.data as Float32Array)[0];
    const fd = async (direction: Map<string, Float32Array>, h: number) => {
      const shifted = (sign: number) => new Map([...lora].map(([k, v]) => [k, v.map((x, i) => x + sign * h * (direction.get(k)?.[i] ?? 0))]));
      return ((await lossAt(shifted(1))) - (await lossAt(shifted(-1)))) / (2 * h);
    };
    const H = 1e-2; // float32 loss noise ~1e-6 (β·ulp of the per-sample MSE): FD noise ~1e-4, curvature error ~h²
    const checks: { what: string; analytic: number; numeric: number }[] = [];
    const sites = [graph.lora[0], graph.lora[9], graph.lora[18], graph.lora[31]];
    for (const l of sites) {
      for (const name of [l.a, l.b]) {
        const g = grad(name);
        const i = g.reduce((best, v, k) => (Math.abs(v) > Math.abs(g[best]) ? k : best), 0);
        const direction = new Map([[name, Float32Array.from(g, (_, k) => (k === i ? 1 : 0))]]);
        checks.push({ what: `${name}[${i}]`, analytic: g[i], numeric: await fd(direction, H) });
      }
    }
    for (let d = 0; d < 2; d++) {
      const direction = new Map([...lora].map(([k, v]) => [k, v.map(() => rand.normal())]));
      const norm = Math.sqrt([...direction.values()].reduce((s, v) => s + v.reduce((t, x) => t + x * x, 0), 0));
      for (const v of direction.values()) v.forEach((x, i) => (v[i] = x / norm));
      const analytic = [...direction].reduce((s, [k, v]) => s + v.reduce((t, x, i) => t + x * grad(k)[i], 0), 0);
      checks.push({ what: `direction ${d}`, analytic, numeric: await fd(direction, H) });
    }
    const scale = Math.max(...checks.map((c) => Math.abs(c.numeric)));
    expect(scale).toBeGreaterThan(1e-3);
    for (const c of checks) expect(Math.abs(c.analytic - c.numeric) / Math.max(Math.abs(c.numeric), 0.05 * scale), c.what).toBeLessThan(1e-2);
  });

  it('works on a toy UNet with an int64 timestep (optimum exports) and MatMul, Gemm and 1×1 Conv sites; their gradients match FD (rel. 1e-2)', async () => {
    const g = createGraphBuilder('toy');
    const sample = g.input('sample', DataType.FLOAT, ['b', 2, 2, 2]);
    const t = g.input('timestep', DataType.INT64, ['b']);
    const ctx = g.input('encoder_hidden_states', DataType.FLOAT, ['b', 2, 3]);
    const q = g.scope('attn', () => g.scope('to_q', () => g.op('MatMul', [ctx, g.initializer('wq', [3, 3], normal(9, 1))])));
    const pooled = g.op('Reshape', [g.op('ReduceMean', [q], { axes: [1, 2], keepdims: 0 }), g.int64s([-1, 1])]); // [b, 1]
    const k = g.scope('attn', () => g.scope('to_k', () => g.op('Gemm', [pooled, g.initializer('wk', [8, 1], normal(8, 1))], { transB: 1 }))); // [b, 8]
    const mixed = g.scope('proj_in', () => g.op('Conv', [sample, g.initializer('wp', [2, 2, 1, 1], normal(4, 1))], { kernel_shape: [1, 1] }));
    const time = g.op('Reshape', [g.op('Cast', [t], { to: DataType.FLOAT }), g.int64s([-1, 1, 1, 1])]);
    const h = g.op('Add', [g.op('Tanh', [g.op('Add', [mixed, g.op('Reshape', [k, g.int64s([-1, 2, 2, 2])])])]), g.op('Mul', [time, g.scalar(1e-3)])]);
    g.node('Identity', [h], {}, { outputs: ['out_sample'] });
    g.output('out_sample', DataType.FLOAT, ['b', 2, 2, 2]);
    const toy = buildDpoGraph(g.build(), { rank: 2, targets: ['to_q', 'to_k', 'proj_in'] });
    expect(toy.lora.map((l) => `${l.site.modulePath}:${l.site.opType}`)).toEqual(['attn.to_q:MatMul', 'attn.to_k:Gemm', 'proj_in:Conv']);
    const [train, fwd] = [await ort.InferenceSession.create(toy.training, quiet), await ort.InferenceSession.create(writeModel(toy.forward), quiet)];
    const n = 2 * 8;
    const base: Feeds = {
      x_w: tensor(normal(n, 1), [2, 2, 2, 2]), x_l: tensor(normal(n, 1), [2, 2, 2, 2]), noise: tensor(normal(n, 1), [2, 2, 2, 2]),
      alpha_bar: tensor(new Float32Array([0.5, 0.9]), [2]), timestep: tensor(new Float32Array([10, 20]), [2]), context: tensor(normal(12, 1), [2, 2, 3]),
      beta_dpo: tensor(new Float32Array([3]), []), lora_scale: tensor(new Float32Array([0.8]), []),
    };
    const values = new Map(toy.lora.flatMap((l) => [[l.a, normal(2 * l.site.inFeatures, 0.5)], [l.b, normal(2 * l.site.outFeatures, 0.5)]]));
    const dims = new Map(toy.lora.flatMap((l) => [[l.a, [2, l.site.inFeatures]], [l.b, [l.site.outFeatures, 2]]]));
    const feedsOf = (v: Map<string, Float32Array>): Feeds => ({ ...base, ...Object.fromEntries([...v].map(([k2, x]) => [k2, tensor(x, dims.get(k2)!)])) });
    const out = await train.run(feedsOf(values));
    const lossAt = async (v: Map<string, Float32Array>) => ((await fwd.run(feedsOf(v))).loss.data as Float32Array)[0];
    const h2 = 1e-2;
    for (const [name, x] of values) {
      const grad = out[`${name}_grad`].data as Float32Array;
      for (const i of [0, x.length - 1]) {
        const shifted = (sign: number) => new Map([...values].map(([k2, y]) => [k2, k2 === name ? y.map((v, j) => (j === i ? v + sign * h2 : v)) : y]));
        const numeric = ((await lossAt(shifted(1))) - (await lossAt(shifted(-1)))) / (2 * h2);
        expect(Math.abs(grad[i] - numeric), `${name}[${i}]: ${grad[i]} vs ${numeric}`).toBeLessThan(1e-2 * Math.max(Math.abs(numeric), 1e-2));
      }
    }
    await train.release();
    await fwd.release();
  });
});
