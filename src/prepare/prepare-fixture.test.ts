// prepare-model on the real exporter's output: fixtures/sd15 (a tiny seeded SD1.5-shaped pipeline exported by
// diffusers' convert_stable_diffusion_checkpoint_to_onnx.py and by optimum; a perturbed "DPO" UNet saved by
// diffusers; one δ LoRA in three key formats; references computed by torch — scripts/fixtures/make_sd15_fixture.py).
import { describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readSafetensors } from '../lora/safetensors.ts';
import { findLoraSites } from '../onnx/lora-sites.ts';
import { externalizeWeights, inlineExternalData, readModel, readWeight, writeModel } from '../onnx/model-io.ts';
import { DataType } from '../onnx/proto.ts';
import { floatToHalf } from '../lora/float16.ts';
import { makeTensor } from '../onnx/tensor.ts';
import { float16Transform, planFloat16 } from './float16-graph.ts';
import { nodeFolder, nodeOutput, prepareFromPaths } from './node-io.ts';
import { rewriteComponent } from './stream-onnx.ts';

const FIXTURE = 'fixtures/sd15';
const EXPORT = join(FIXTURE, 'export-diffusers');
const DPO = join(FIXTURE, 'dpo-unet');
const REFS = join(FIXTURE, 'references.safetensors');
const scratch = () => mkdtempSync(join(tmpdir(), 'prepare-fixture-'));

/** Every external file next to a graph, by location (small fixture: fine to hold in memory). */
function filesOf(dir: string, model: ReturnType<typeof readModel>): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const t of model.graph!.initializer ?? []) {
    const loc = t.externalData?.find((e) => e.key === 'location')?.value;
    if (loc && !files.has(loc)) files.set(loc, new Uint8Array(readFileSync(join(dir, loc))));
  }
  return files;
}

async function run(path: string | Uint8Array, feeds: Record<string, ort.Tensor>) {
  const session = typeof path === 'string'
    ? await ort.InferenceSession.create(path, { logSeverityLevel: 3 })
    : await ort.InferenceSession.create(path, { logSeverityLevel: 3 });
  const out = await session.run(feeds);
  await session.release();
  return out;
}

function seededFeeds(timestepType: 'float32' | 'int64') {
  let s = 7;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  return {
    sample: new ort.Tensor('float32', Float32Array.from({ length: 2 * 4 * 8 * 8 }, r), [2, 4, 8, 8]),
    timestep: timestepType === 'float32' ? new ort.Tensor('float32', new Float32Array([981, 501]), [2]) : new ort.Tensor('int64', BigInt64Array.from([981n, 501n]), [2]),
    encoder_hidden_states: new ort.Tensor('float32', Float32Array.from({ length: 2 * 77 * 32 }, r), [2, 77, 32]),
  };
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const relL2 = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
};

describe('prepare-model on the real tiny SD1.5 export (fixtures/sd15)', () => {
  it('diffusers layout: every component computes exactly what the export computes', async () => {
    const out = join(scratch(), 'out');
    const { manifest } = await prepareFromPaths({ onnx: EXPORT, out });
    expect(manifest.unet.inputs).toEqual({ sample: 'float32', timestep: 'float32', encoder_hidden_states: 'float32' });
    expect(manifest.textEncoder.inputs).toEqual({ input_ids: 'int32' });
    expect(manifest.latent).toEqual({ channels: 4, vaeScaleFactor: 8, scalingFactor: 0.18215 });
    expect(manifest.context).toEqual({ length: 77, dim: 32 });
    expect(manifest.vaeEncoder?.file).toBe('vae_encoder/model.onnx');
    expect(manifest.source.layout).toBe('diffusers');
    const feeds = seededFeeds('float32');
    const a = await run(join(out, 'unet/model.onnx'), feeds);
    const b = await run(join(EXPORT, 'unet/model.onnx'), feeds);
    expect(maxAbs(a.out_sample.data as Float32Array, b.out_sample.data as Float32Array)).toBeLessThanOrEqual(1e-6);
    const ids = { input_ids: new ort.Tensor('int32', Int32Array.from({ length: 77 }, (_, i) => (i === 0 ? 49406 : i < 5 ? 320 + i : 49407)), [1, 77]) };
    const te = [await run(join(out, 'text_encoder/model.onnx'), ids), await run(join(EXPORT, 'text_encoder/model.onnx'), ids)];
    expect(maxAbs(te[0].last_hidden_state.data as Float32Array, te[1].last_hidden_state.data as Float32Array)).toBeLessThanOrEqual(1e-6);
    const z = { latent_sample: new ort.Tensor('float32', Float32Array.from({ length: 4 * 64 }, (_, i) => Math.sin(i)), [1, 4, 8, 8]) };
    const vae = [await run(join(out, 'vae_decoder/model.onnx'), z), await run(join(EXPORT, 'vae_decoder/model.onnx'), z)];
    expect(maxAbs(vae[0].sample.data as Float32Array, vae[1].sample.data as Float32Array)).toBeLessThanOrEqual(1e-6);
  });

  it.skipIf(!existsSync(join(FIXTURE, 'export-optimum/unet/model.onnx')))('optimum layout (model.onnx_data, int64 timestep) prepares and computes the same', async () => {
    const dir = scratch();
    const exp = join(dir, 'export');
    cpSync(EXPORT, exp, { recursive: true });
    rmSync(join(exp, 'unet'), { recursive: true });
    cpSync(join(FIXTURE, 'export-optimum/unet'), join(exp, 'unet'), { recursive: true });
    const { manifest } = await prepareFromPaths({ onnx: exp, out: join(dir, 'out') });
    expect(manifest.source.layout).toBe('optimum');
    const timestep = manifest.unet.inputs.timestep;
    expect(['int64', 'float32']).toContain(timestep);
    const feeds = seededFeeds(timestep as 'int64' | 'float32');
    const a = await run(join(dir, 'out/unet/model.onnx'), feeds);
    const b = await run(join(exp, 'unet/model.onnx'), feeds);
    expect(maxAbs(a.out_sample.data as Float32Array, b.out_sample.data as Float32Array)).toBeLessThanOrEqual(1e-6);
  });

  it.skipIf(!existsSync(DPO))('--eta-unet: θ + η == θ_dpo for every DPO tensor (matched by value, not by our mapping)', async () => {
    const out = join(scratch(), 'out');
    const { manifest, etaRules } = await prepareFromPaths({ onnx: EXPORT, out, etaUnet: DPO });
    const dpo = readSafetensors(new Uint8Array(readFileSync(join(DPO, 'diffusion_pytorch_model.safetensors')))).tensors;
    expect(manifest.offsets.eta).toMatchObject({ kind: 'dense', tensors: dpo.size });
    expect(etaRules!.name + etaRules!.linear + etaRules!.norm).toBe(dpo.size);
    expect(etaRules!.linear).toBeGreaterThan(0);
    expect(etaRules!.norm).toBeGreaterThan(0);
    const eta = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const f of (manifest.offsets.eta as { files: string[] }).files) for (const [k, v] of readSafetensors(new Uint8Array(readFileSync(join(out, f)))).tensors) eta.set(k, v);
    expect(eta.size).toBe(dpo.size);
    const unet = readModel(readFileSync(join(EXPORT, 'unet/model.onnx')));
    const files = filesOf(join(EXPORT, 'unet'), unet);
    const inits = new Map(unet.graph!.initializer!.map((t) => [t.name!, t]));
    // θ + η per initializer, then every DPO tensor must equal exactly one of them (same order, or transposed for 2-D).
    const merged = [...eta].map(([name, e]) => {
      const theta = readWeight(inits.get(name)!, files);
      expect(theta.dims).toEqual(e.shape);
      return { name, dims: theta.dims, data: theta.data.map((x, i) => x + e.data[i]), used: false };
    });
    for (const [key, t] of dpo) {
      const hits = merged.filter((m) => !m.used && m.data.length === t.data.length && (close(m.data, t.data) || (t.shape.length === 2 && close(m.data, transpose(t.data, t.shape[0], t.shape[1])))));
      expect(hits.length, `${key}: initializers equal to θ_dpo`).toBeGreaterThanOrEqual(1);
      hits[0].used = true;
    }
  });

  it.skipIf(!existsSync(DPO))('says the bytes it will write before it writes anything: its weight files, the dense η included', async () => {
    const out = join(scratch(), 'out');
    let told = -1;
    let written = -1;
    const { manifest } = await prepareFromPaths({
      onnx: EXPORT, out, etaUnet: DPO,
      beforeWriting: async (bytes) => void ((told = bytes), (written = existsSync(out) ? readdirSync(out).length : 0)),
    });
    expect(written).toBe(0);
    // What a page checks against its storage quota: the shards and η (graphs, tokenizer and manifest are small at real size).
    const weights = manifest.files.filter((f) => /\/weights-\d+\.bin$|^eta[^/]*\.safetensors$/.test(f.path)).reduce((sum, f) => sum + f.bytes, 0);
    expect(Math.abs(told - weights) / weights).toBeLessThan(0.02); // each tensor is padded to 64 bytes in the shards
  });

  it.skipIf(!existsSync(DPO) || !existsSync(REFS))('--eta-unet: the export with θ + η merged reproduces torch\'s DPO UNet output', async () => {
    const out = join(scratch(), 'out');
    const { manifest } = await prepareFromPaths({ onnx: EXPORT, out, etaUnet: DPO });
    const refs = referenceTensors(['unet.sample', 'unet.encoder_hidden_states', 'unet.out_sample', 'unet.out_sample.dpo']);
    const eta = readSafetensors(new Uint8Array(readFileSync(join(out, (manifest.offsets.eta as { files: string[] }).files[0])))).tensors;
    const unet = readModel(readFileSync(join(out, 'unet/model.onnx')));
    const inlined = inlineExternalData(unet, filesOf(join(out, 'unet'), unet));
    inlined.graph!.initializer = inlined.graph!.initializer!.map((t) => {
      const e = eta.get(t.name!);
      if (!e) return t;
      const theta = readWeight(t);
      return makeTensor(t.name!, theta.dims, theta.data.map((x, i) => x + e.data[i]));
    });
    const r = (k: string) => refs.get(k)!;
    const timesteps = JSON.parse(readFileSync(join(FIXTURE, 'references.json'), 'utf8')).settings.unet_call.timestep as number[];
    const result = await run(writeModel(inlined), {
      sample: new ort.Tensor('float32', r('unet.sample').data, r('unet.sample').shape),
      timestep: new ort.Tensor('float32', Float32Array.from(timesteps), [timesteps.length]),
      encoder_hidden_states: new ort.Tensor('float32', r('unet.encoder_hidden_states').data, r('unet.encoder_hidden_states').shape),
    });
    const expected = r('unet.out_sample.dpo').data;
    const base = r('unet.out_sample').data;
    expect(relL2(base, expected)).toBeGreaterThan(1e-3); // η matters
    expect(relL2(result.out_sample.data as Float32Array, expected)).toBeLessThan(1e-4);
  });

  it.skipIf(!existsSync(DPO))('--eta-rank: per-layer error equals the float64 singular-value tail of that layer\'s η', async () => {
    const out = join(scratch(), 'out');
    const { manifest, etaRank } = await prepareFromPaths({ onnx: EXPORT, out, etaUnet: DPO, etaRank: 2 });
    expect(manifest.offsets.eta).toMatchObject({ kind: 'lora', file: 'eta.safetensors', rank: 2 });
    expect(etaRank!.layers.length).toBeGreaterThan(10);
    expect(etaRank!.dropped.tensors).toBeGreaterThan(0);
    const unet = readModel(readFileSync(join(EXPORT, 'unet/model.onnx')));
    const files = filesOf(join(EXPORT, 'unet'), unet);
    const inits = new Map(unet.graph!.initializer!.map((t) => [t.name!, t]));
    const sites = new Map(findLoraSites(unet, 'all').map((s) => [s.modulePath, s]));
    const dpo = readSafetensors(new Uint8Array(readFileSync(join(DPO, 'diffusion_pytorch_model.safetensors')))).tensors;
    for (const layer of etaRank!.layers.slice(0, 6)) {
      const site = sites.get(layer.module)!;
      const theta = readWeight(inits.get(site.weightName)!, files).data;
      const tuned = dpo.get(`${layer.module}.weight`)!.data;
      const [o, i] = [site.outFeatures, site.inFeatures];
      const w = new Float64Array(o * i);
      for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) w[a * i + b] = tuned[a * i + b] - (site.layout === 'in-out' ? theta[b * o + a] : theta[a * i + b]);
      const s2 = gramEigenvalues(w, o, i);
      const total = s2.reduce((x, y) => x + y, 0);
      const tail = Math.sqrt(s2.slice(2).reduce((x, y) => x + y, 0) / total);
      expect(Math.abs(layer.relError - tail), layer.module).toBeLessThan(1e-5 * Math.max(1, tail));
    }
  });

  it.skipIf(!existsSync(DPO))('a float16 export (weights cast after export): dtype float16, η in float16, θ + η ≈ θ_dpo to half precision', async () => {
    const dir = scratch();
    const exp = join(dir, 'export');
    cpSync(EXPORT, exp, { recursive: true });
    const unet = readModel(readFileSync(join(EXPORT, 'unet/model.onnx')));
    const inlined = inlineExternalData(unet, filesOf(join(EXPORT, 'unet'), unet));
    inlined.graph!.initializer = inlined.graph!.initializer!.map((t) => {
      if (t.dataType !== DataType.FLOAT) return t;
      const { dims, data } = readWeight(t);
      const half = Uint16Array.from(data, (v) => floatToHalf(v));
      return { name: t.name, dims, dataType: DataType.FLOAT16, rawData: new Uint8Array(half.buffer) };
    });
    const { model, data } = externalizeWeights(inlined, 'weights.pb');
    writeFileSync(join(exp, 'unet/model.onnx'), writeModel(model));
    writeFileSync(join(exp, 'unet/weights.pb'), data);
    const out = join(dir, 'out');
    const { manifest } = await prepareFromPaths({ onnx: exp, out, etaUnet: DPO, dtype: 'float16' });
    expect(manifest.unet.dtype).toBe('float16');
    expect(manifest.source.exportDtype).toBe('float16');
    const etaFile = readSafetensors(new Uint8Array(readFileSync(join(out, 'eta.safetensors'))));
    const theta16 = new Map(model.graph!.initializer!.map((t) => [t.name!, t]));
    const dpo = readSafetensors(new Uint8Array(readFileSync(join(DPO, 'diffusion_pytorch_model.safetensors')))).tensors;
    const dpoValues = [...dpo.values()].map((t) => t.data);
    let checked = 0;
    for (const [name, e] of etaFile.tensors) {
      expect(e.dtype).toBe('F16');
      const theta = readWeight(theta16.get(name)!, new Map([['weights.pb', data]])).data;
      const merged = theta.map((x, i) => x + e.data[i]);
      // Some DPO tensor equals θ + η to half precision (same order, or transposed for MatMul weights).
      const tol = (v: number) => 2 ** -10 * Math.abs(v) + 2 ** -20;
      const fits = (ref: ArrayLike<number>) => ref.length === merged.length && merged.every((v, i) => Math.abs(v - ref[i]) <= 2 * tol(ref[i]) + tol(e.data[i]));
      const dims = e.shape;
      expect(dpoValues.some((ref) => fits(ref) || (dims.length === 2 && fits(transpose(ref, dims[1], dims[0])))), name).toBe(true);
      checked++;
    }
    expect(checked).toBe(dpo.size);
    await expect(prepareFromPaths({ onnx: exp, out: join(dir, 'out2'), dtype: 'float32' })).rejects.toThrow(/the export is float16; converting float16 weights up to float32 is not supported/);
  });

  it('--dtype float16 on the float32 export: float16 weights (half the bytes), float32 inputs/outputs, outputs within 2e-3', async () => {
    const dir = scratch();
    const out = join(dir, 'out');
    const { manifest } = await prepareFromPaths({ onnx: EXPORT, out, dtype: 'float16', etaUnet: existsSync(DPO) ? DPO : undefined });
    expect([manifest.unet.dtype, manifest.textEncoder.dtype, manifest.vaeDecoder.dtype]).toEqual(['float16', 'float16', 'float16']);
    expect(manifest.unet.inputs).toEqual({ sample: 'float32', timestep: 'float32', encoder_hidden_states: 'float32' });
    const size = (p: string) => manifest.files.find((f) => f.path === p)!.bytes;
    expect(size('unet/weights-00.bin')).toBeLessThan(0.51 * statSync(join(EXPORT, 'unet/weights.pb')).size);
    const prepared = readModel(readFileSync(join(out, 'unet/model.onnx')));
    for (const t of prepared.graph!.initializer!) if (t.dataLocation === 1) expect(t.dataType, t.name!).toBe(DataType.FLOAT16);
    if (existsSync(DPO)) {
      const eta = readSafetensors(new Uint8Array(readFileSync(join(out, 'eta.safetensors')))).tensors;
      const types = new Map(prepared.graph!.initializer!.map((t) => [t.name!, t.dataType]));
      for (const [name, e] of eta) expect(e.dtype, name).toBe(types.get(name) === DataType.FLOAT16 ? 'F16' : 'F32');
    }
    const feeds = seededFeeds('float32');
    feeds.timestep = new ort.Tensor('float32', new Float32Array([978.6, 501.3]), [2]); // fractional: not representable in float16
    const a = await run(join(out, 'unet/model.onnx'), feeds);
    const b = await run(join(EXPORT, 'unet/model.onnx'), feeds);
    expect(a.out_sample.type).toBe('float32');
    expect(relL2(a.out_sample.data as Float32Array, b.out_sample.data as Float32Array)).toBeLessThan(2e-3);
    const ids = { input_ids: new ort.Tensor('int32', Int32Array.from({ length: 77 }, (_, i) => (i === 0 ? 49406 : i < 5 ? 320 + i : 49407)), [1, 77]) };
    const te = [await run(join(out, 'text_encoder/model.onnx'), ids), await run(join(EXPORT, 'text_encoder/model.onnx'), ids)];
    expect(relL2(te[0].last_hidden_state.data as Float32Array, te[1].last_hidden_state.data as Float32Array)).toBeLessThan(2e-3);
    const z = { latent_sample: new ort.Tensor('float32', Float32Array.from({ length: 4 * 64 }, (_, i) => Math.sin(i)), [1, 4, 8, 8]) };
    const vae = [await run(join(out, 'vae_decoder/model.onnx'), z), await run(join(EXPORT, 'vae_decoder/model.onnx'), z)];
    expect(relL2(vae[0].sample.data as Float32Array, vae[1].sample.data as Float32Array)).toBeLessThan(2e-3);

    // Without the float32 timestep island the same conversion is several times further off at a fractional timestep.
    const plan = planFloat16(readModel(readFileSync(join(EXPORT, 'unet/model.onnx'))), []);
    const noIsland = await nodeOutput(join(dir, 'no-island')).begin();
    await rewriteComponent(nodeFolder(EXPORT), 'unet/model.onnx', noIsland, '', { transform: float16Transform(plan.convert) }, 'model.onnx', plan.model);
    await noIsland.commit();
    const c = await run(join(dir, 'no-island/model.onnx'), feeds);
    expect(relL2(c.out_sample.data as Float32Array, b.out_sample.data as Float32Array)).toBeGreaterThan(2 * relL2(a.out_sample.data as Float32Array, b.out_sample.data as Float32Array));
  });

  for (const fmt of ['diffusers', 'peft', 'kohya']) {
    const file = join(FIXTURE, `delta-${fmt}.safetensors`);
    it.skipIf(!existsSync(file))(`--delta-lora in ${fmt} format: validated on the export's Linear/1×1 sites and copied`, async () => {
      const out = join(scratch(), 'out');
      const { manifest } = await prepareFromPaths({ onnx: EXPORT, out, deltaLora: file });
      expect(manifest.offsets.delta).toMatchObject({ kind: 'lora', file: 'delta.safetensors', rank: 4 });
      expect(readFileSync(join(out, 'delta.safetensors')).equals(readFileSync(file))).toBe(true);
    });
  }

  it('a truncated shard or a corrupted prepared graph is caught by verification on re-read', async () => {
    const dir = scratch();
    const exp = join(dir, 'export');
    cpSync(EXPORT, exp, { recursive: true });
    const weights = join(exp, 'unet', 'weights.pb');
    writeFileSync(weights, readFileSync(weights).subarray(0, 1000));
    await expect(prepareFromPaths({ onnx: exp, out: join(dir, 'out') })).rejects.toThrow(/external data bytes \d+\.\.\d+ lie past the end of weights\.pb \(1000 bytes\)/);
  });
});

/**
 * F32 tensors of references.safetensors by name. The file also holds int64/int32 tensors (token ids, timesteps),
 * which src/lora/safetensors.ts (a LoRA reader: float dtypes only) refuses, so this reads just the named F32 ones.
 */
function referenceTensors(names: string[]): Map<string, { shape: number[]; data: Float32Array }> {
  const bytes = readFileSync(REFS);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  return new Map(names.map((name) => {
    const e = header[name];
    if (e?.dtype !== 'F32') throw new Error(`references.safetensors: ${name} is ${e?.dtype ?? 'missing'}, expected F32`);
    const [a, b] = e.data_offsets;
    return [name, { shape: e.shape, data: new Float32Array(new Uint8Array(bytes.subarray(8 + n + a, 8 + n + b)).buffer) }];
  }));
}

function close(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) > 1e-6) return false;
  return true;
}

function transpose(a: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

/**
 * Squared singular values of W [rows, cols], descending: eigenvalues of the smaller Gram matrix by the classical
 * two-sided Jacobi eigenvalue method (float64), independent of the one-sided Jacobi / randomized code under test.
 */
function gramEigenvalues(w: Float64Array, rows: number, cols: number): number[] {
  const n = Math.min(rows, cols);
  const g = new Float64Array(n * n);
  for (let p = 0; p < n; p++) for (let q = 0; q < n; q++) {
    let s = 0;
    if (rows >= cols) for (let k = 0; k < rows; k++) s += w[k * cols + p] * w[k * cols + q];
    else for (let k = 0; k < cols; k++) s += w[p * cols + k] * w[q * cols + k];
    g[p * n + q] = s;
  }
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += g[p * n + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) {
      const apq = g[p * n + q];
      if (Math.abs(apq) < 1e-300) continue;
      const theta = (g[q * n + q] - g[p * n + p]) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1), s = t * c;
      for (let k = 0; k < n; k++) {
        const gkp = g[k * n + p], gkq = g[k * n + q];
        g[k * n + p] = c * gkp - s * gkq;
        g[k * n + q] = s * gkp + c * gkq;
      }
      for (let k = 0; k < n; k++) {
        const gpk = g[p * n + k], gqk = g[q * n + k];
        g[p * n + k] = c * gpk - s * gqk;
        g[q * n + k] = s * gpk + c * gqk;
      }
    }
  }
  return Array.from({ length: n }, (_, i) => Math.max(0, g[i * n + i])).sort((a, b) => b - a);
}
