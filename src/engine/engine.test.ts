// The sampling engine on onnxruntime-node with the committed embedded model: reproducibility by seed, what α and β
// may and may not change, and the identities of NPO-CFG (paper Eq. 10) that must hold exactly.
import { describe, expect, it, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { parseManifest, type ModelManifest } from '../model/manifest.ts';
import { createModelEngine } from '../pipelines/index.ts';
import type { Engine } from './engine.ts';
import { runTraining } from '../worker/training.ts';
import { encodePairs } from '../train/pairs.ts';
import { readSafetensors, writeSafetensors } from '../lora/safetensors.ts';
import type { GenerateParams } from '../worker/protocol.ts';
import { memorySource } from '../model/source/memory.ts';
import type { ModelSource } from '../model/source/source.ts';
import { externalLocations, readModel } from '../onnx/model-io.ts';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const dir = join(import.meta.dirname, '../../models');
const manifest = parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));
const files = new Map(manifest.files.map((f) => [f.path, new Uint8Array(readFileSync(join(dir, f.path)))]));
const params: GenerateParams = { ...manifest.defaults, steps: 6 };

const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => v === b[i]);
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('sampling engine (onnxruntime-node, committed model)', () => {
  let engine: Engine;
  let noLoras: Engine;
  beforeAll(async () => {
    engine = await createModelEngine(ort, memorySource(manifest, files));
    const bare: ModelManifest = { ...manifest, loras: {} };
    noLoras = await createModelEngine(ort, memorySource(bare, files));
  });

  it('finds the LoRA sites and loads η and δ', () => {
    // Transformer blocks: down_blocks.1 and .2, mid_block, up_blocks.0 and .1 (two each); 8 projections each
    // (attn1, attn2 × q, k, v, out).
    expect(engine.info.loraSites).toBe(7 * 8);
    expect(engine.info.hasEta && engine.info.hasDelta).toBe(true);
  });

  it('gives identical images for the same seed and different ones for another seed', async () => {
    const a = await engine.generate(params, ['baseline', 'npo'], {});
    const b = await engine.generate(params, ['baseline', 'npo'], {});
    const c = await engine.generate({ ...params, seed: params.seed + 1 }, ['baseline'], {});
    expect(same(a.images.get('npo')!, b.images.get('npo')!)).toBe(true);
    expect(same(a.images.get('baseline')!, b.images.get('baseline')!)).toBe(true);
    expect(maxDiff(a.images.get('baseline')!, c.images.get('baseline')!)).toBeGreaterThan(0.05);
  });

  it('computes each image the same alone or batched with the other (tolerance 1e-5)', async () => {
    const both = await engine.generate(params, ['baseline', 'npo'], {});
    const alone = await engine.generate(params, ['npo'], {});
    expect(maxDiff(both.images.get('npo')!, alone.images.get('npo')!)).toBeLessThan(1e-5);
  });

  it('sends low-resolution previews when asked, without changing the images', async () => {
    const plain = await engine.generate(params, ['baseline', 'npo'], {});
    const steps: number[] = [];
    const withPreviews = await engine.generate(params, ['baseline', 'npo'], {
      wantPreview: (step) => step % 2 === 1,
      onPreview: (step, previews) => {
        steps.push(step);
        for (const p of previews.values()) {
          expect([p.channels, p.height, p.width]).toEqual([3, 16, 16]); // 32² block-averaged by 2
          expect(p.chw.every(Number.isFinite)).toBe(true);
        }
      },
    });
    expect(steps).toEqual([1, 3, 5]);
    expect(engine.stats().previews).toBe(3);
    for (const kind of ['baseline', 'npo'] as const) expect(same(plain.images.get(kind)!, withPreviews.images.get(kind)!)).toBe(true);
  });

  it('runs the UNet once per step, whether a call mixes θ_pos and θ_neg or not (stacked weight sets)', async () => {
    for (const images of [['baseline'], ['npo'], ['baseline', 'npo']] as const) {
      await engine.generate(params, [...images], {});
      expect(engine.stats().unetCalls, images.join('+')).toBe(params.steps);
    }
  });

  it('changes the NPO image but not the baseline when α moves', async () => {
    const a = await engine.generate({ ...params, alpha: 1 }, ['baseline', 'npo'], {});
    const merges = engine.stats().merge!.merges;
    const b = await engine.generate({ ...params, alpha: 0.2 }, ['baseline', 'npo'], {});
    expect(same(a.images.get('baseline')!, b.images.get('baseline')!)).toBe(true);
    expect(maxDiff(a.images.get('npo')!, b.images.get('npo')!)).toBeGreaterThan(1e-3);
    // One re-merge of θ_neg, over every site η touches (all 56 projections); ω alone re-merges nothing.
    expect(engine.stats().merge).toMatchObject({ merges: merges + 1, tensors: 56 });
    await engine.generate({ ...params, alpha: 0.2, omega: params.omega + 1 }, ['npo'], {});
    expect(engine.stats().merge!.merges).toBe(merges + 1);
  });

  it('with α = 1, β = 0 the NPO image is the baseline (θ_neg = θ_pos), within float tolerance 1e-5', async () => {
    const r = await engine.generate({ ...params, alpha: 1, beta: 0 }, ['baseline', 'npo'], {});
    expect(maxDiff(r.images.get('baseline')!, r.images.get('npo')!)).toBeLessThan(1e-5);
  });

  it('with η = δ = 0 and α = β = 0 both images are identical', async () => {
    const r = await noLoras.generate({ ...params, alpha: 0, beta: 0 }, ['baseline', 'npo'], {});
    expect(same(r.images.get('baseline')!, r.images.get('npo')!)).toBe(true);
  });

  it('stops when cancelled and reports progress per step', async () => {
    const controller = new AbortController();
    const steps: number[] = [];
    const run = engine.generate({ ...params, steps: 10 }, ['npo'], {
      signal: controller.signal,
      onStep: (step) => { steps.push(step); if (step === 3) controller.abort(); },
    });
    await expect(run).rejects.toThrow(/cancelled/);
    expect(steps).toEqual([1, 2, 3]);
  });

  it('swaps δ for another LoRA file and back: only the NPO image changes, and restoring restores it exactly', async () => {
    const before = await engine.generate(params, ['baseline', 'npo'], {});
    engine.useLora('delta', files.get(manifest.loras.eta!.file));
    const swapped = await engine.generate(params, ['baseline', 'npo'], {});
    engine.useLora('delta', undefined);
    const restored = await engine.generate(params, ['npo'], {});
    expect(same(before.images.get('baseline')!, swapped.images.get('baseline')!)).toBe(true);
    expect(maxDiff(before.images.get('npo')!, swapped.images.get('npo')!)).toBeGreaterThan(1e-3);
    expect(same(before.images.get('npo')!, restored.images.get('npo')!)).toBe(true);
    expect(() => engine.useLora('delta', new Uint8Array([1, 2, 3]))).toThrow(/safetensors/);
  });

  it("runs without η ('none'): base against base+NPO, exactly an engine built with δ alone; α no longer matters", async () => {
    const withEta = await engine.generate(params, ['baseline', 'npo'], {});
    engine.useLora('eta', 'none');
    const off = await engine.generate(params, ['baseline', 'npo'], {});
    const otherAlpha = await engine.generate({ ...params, alpha: params.alpha + 0.5 }, ['npo'], {});
    engine.useLora('eta', undefined);
    const restored = await engine.generate(params, ['baseline', 'npo'], {});
    const deltaOnly = await createModelEngine(ort, memorySource({ ...manifest, loras: { delta: manifest.loras.delta } }, files));
    const reference = await deltaOnly.generate(params, ['baseline', 'npo'], {});
    await deltaOnly.release();
    for (const kind of ['baseline', 'npo'] as const) {
      expect(maxDiff(off.images.get(kind)!, reference.images.get(kind)!)).toBeLessThan(1e-5);
      expect(same(restored.images.get(kind)!, withEta.images.get(kind)!)).toBe(true);
    }
    expect(maxDiff(off.images.get('baseline')!, withEta.images.get('baseline')!)).toBeGreaterThan(1e-3); // η mattered
    expect(same(otherAlpha.images.get('npo')!, off.images.get('npo')!)).toBe(true);
  });

  it('keeps no copy of the UNet files once ORT has them; reads them again only to rebuild for other tensors', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const dataFiles = new Set(externalLocations(readModel(files.get(manifest.unet.file)!)));
    expect(dataFiles.size).toBeGreaterThan(0);
    // Each read of a UNet data file hands out a fresh copy (as a URL or folder source does), watched by a WeakRef.
    const handedOut: WeakRef<ArrayBufferLike>[] = [];
    const inMemory = memorySource(manifest, files);
    const watched: ModelSource = { ...inMemory, read: async (path, options) => {
      const bytes = (await inMemory.read(path, options)).slice();
      if (dataFiles.has(path)) handedOut.push(new WeakRef(bytes.buffer));
      return bytes;
    } };
    const watchedEngine = await createModelEngine(ort, watched);
    const first = await watchedEngine.generate(params, ['baseline', 'npo'], {});
    watchedEngine.useLora('delta', undefined); // the same tensors touched: merged again from the θ it kept
    const again = await watchedEngine.generate(params, ['baseline', 'npo'], {});
    expect(handedOut).toHaveLength(dataFiles.size);
    for (const kind of ['baseline', 'npo'] as const) expect(same(again.images.get(kind)!, first.images.get(kind)!)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    expect(handedOut.map((ref) => ref.deref())).toEqual(handedOut.map(() => undefined));
    // Nothing touched any more: a session of the export as it is, made from the files read again.
    watchedEngine.useLora('eta', 'none');
    watchedEngine.useLora('delta', 'none');
    const bare = await watchedEngine.generate(params, ['baseline', 'npo'], {});
    expect(handedOut).toHaveLength(2 * dataFiles.size);
    expect(same(bare.images.get('baseline')!, bare.images.get('npo')!)).toBe(true);
    await watchedEngine.release();
  });

  it('uses a brought LoRA that also trains other layers, counting the keys it ignores; refuses one that matches nothing', () => {
    const { tensors } = readSafetensors(files.get(manifest.loras.eta!.file)!);
    const ff = 'unet.down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2';
    const extra = { [`${ff}.lora.down.weight`]: { shape: [4, 256], data: new Float32Array(1024) }, [`${ff}.lora.up.weight`]: { shape: [64, 4], data: new Float32Array(256) } };
    const mixed = writeSafetensors({ ...Object.fromEntries([...tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data }])), ...extra });
    expect(engine.useLora('delta', mixed).skipped).toBe(2);
    expect(() => engine.useLora('delta', writeSafetensors(extra))).toThrow(/none of its 2 keys matches the model's 56 attention projections/);
    engine.useLora('delta', undefined);
  });

  it('trains a δ from a pairs.json with the worker training job, and the engine accepts it', async () => {
    const size = manifest.unet.config.sampleSize;
    const image = (value: number) => new Float32Array(3 * size * size).fill(value);
    const pairsJson = JSON.stringify(encodePairs([
      { prompt: params.prompt, winner: image(0.5), loser: image(-0.5) },
      { prompt: 'a blue square', winner: image(-0.2), loser: image(0.3) },
    ], size, size));
    const reports: number[] = [];
    const result = await runTraining({
      ort, manifest, files, pairsJson, signal: new AbortController().signal,
      options: { reverse: true, rank: 2, steps: 2, beta: 500, lr: 1e-3, batch: 2, seed: 0 },
      onStep: (r) => void reports.push(r.loss),
    });
    expect(result.steps).toBe(2);
    expect(reports.every(Number.isFinite)).toBe(true);
    engine.useLora('delta', result.lora);
    engine.useLora('delta', undefined);
    await expect(runTraining({
      ort, manifest, files, pairsJson: '{"version":1,"width":8,"height":8,"pairs":[]}', signal: new AbortController().signal,
      options: { reverse: true, rank: 2, steps: 1, beta: 500, lr: 1e-3, batch: 1, seed: 0 }, onStep: () => undefined,
    })).rejects.toThrow(/8×8/);
  });

  it('names unknown prompt words instead of guessing', async () => {
    await expect(engine.generate({ ...params, prompt: 'a red dragon' }, ['baseline'], {})).rejects.toThrow(/"dragon"/);
  });
});
