// prepare-model on a miniature export made with our graph builder (mini-export.ts): both external-data layouts,
// sharding, the manifest, dense and rank-r η, LoRA validation, and every refusal (a corrupted copy is cheap to make).
// The same pipeline on the real exporter's output is tested in prepare-fixture.test.ts.
import { describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import { readSafetensors, writeSafetensors } from '../lora/safetensors.ts';
import { parseLora } from '../lora/formats.ts';
import { serializeLora } from '../lora/serialize.ts';
import { findLoraSites } from '../onnx/lora-sites.ts';
import { readModel, writeModel } from '../onnx/model-io.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import { MINI, writeMiniDpoUnet, writeMiniExport, miniUnet, miniUnetParams } from './mini-export.ts';
import { prepareFromPaths } from './node-io.ts';

const scratch = () => mkdtempSync(join(tmpdir(), 'prepare-mini-'));

async function runUnet(path: string, seed = 3): Promise<Float32Array> {
  const { channels: c, size, tokens, context } = MINI;
  let s = seed;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const session = await ort.InferenceSession.create(path, { logSeverityLevel: 3 });
  const out = await session.run({
    sample: new ort.Tensor('float32', Float32Array.from({ length: c * size * size }, r), [1, c, size, size]),
    timestep: new ort.Tensor('float32', new Float32Array([501]), [1]),
    encoder_hidden_states: new ort.Tensor('float32', Float32Array.from({ length: tokens * context }, r), [1, tokens, context]),
  });
  await session.release();
  return out.out_sample.data as Float32Array;
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('prepare-model on a builder-made export', () => {
  for (const layout of ['diffusers', 'optimum'] as const) {
    it(`${layout} layout: manifest, hashes, and the prepared UNet computes what the export computes`, async () => {
      const dir = scratch();
      writeMiniExport(join(dir, 'export'), layout);
      const out = join(dir, 'out');
      const { manifest, summary } = await prepareFromPaths({ onnx: join(dir, 'export'), out });
      const onDisk = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as PreparedManifest;
      expect(onDisk.format).toBe(2);
      expect(onDisk.unet.inputs).toEqual({ sample: 'float32', timestep: 'float32', encoder_hidden_states: 'float32' });
      expect(onDisk.unet.outputs).toEqual(['out_sample']);
      expect(onDisk.textEncoder.inputs).toEqual({ input_ids: 'int32' });
      expect(onDisk.unet.externalData).toEqual(['unet/weights-00.bin']);
      expect(onDisk.latent).toEqual(layout === 'optimum'
        ? { channels: 4, vaeScaleFactor: 2, scalingFactor: 0.13025 }
        : { channels: 4, vaeScaleFactor: 2, scalingFactor: 0.18215 });
      expect(onDisk.context).toEqual({ length: MINI.tokens, dim: MINI.context });
      expect(onDisk.defaults.width).toBe(MINI.size * 2); // the sample input's static size × the VAE's factor
      expect(onDisk.tokenizer).toEqual({ dir: 'tokenizer', modelMaxLength: 77 });
      // -Infinity is not JSON: left out of manifest.scheduler (diffusers' default), kept in the verbatim copy.
      expect('lambda_min_clipped' in onDisk.scheduler).toBe(false);
      expect(onDisk.scheduler.skip_prk_steps).toBe(true);
      expect(readFileSync(join(out, 'scheduler/scheduler_config.json'), 'utf8')).toContain('"lambda_min_clipped": -Infinity');
      expect(onDisk.source.layout).toBe(layout);
      expect(manifest.files.map((f) => f.path)).toContain('text_encoder/weights-00.bin'); // inline weights moved out
      for (const f of onDisk.files) {
        expect(statSync(join(out, f.path)).size).toBe(f.bytes);
        expect(sha(join(out, f.path))).toBe(f.sha256);
      }
      // Tensors of at least 1 KiB go to the shard (conv_in, proj_in, to_k, conv_out weights); the rest stay inline.
      expect(summary.find((s) => s.component === 'unet')).toMatchObject({ tensors: 4, shards: 1 });
      expect(maxAbs(await runUnet(join(out, 'unet', 'model.onnx')), await runUnet(join(dir, 'export', 'unet', 'model.onnx')))).toBeLessThanOrEqual(1e-6);
    });
  }

  it('small shards: every tensor 64-byte aligned, no shard over the limit, same output', async () => {
    const dir = scratch();
    writeMiniExport(join(dir, 'export'), 'diffusers');
    const out = join(dir, 'out');
    const limit = 3500;
    const { manifest } = await prepareFromPaths({ onnx: join(dir, 'export'), out, maxShardBytes: limit });
    expect(manifest.unet.externalData).toEqual(['unet/weights-00.bin', 'unet/weights-01.bin', 'unet/weights-02.bin']);
    const model = readModel(readFileSync(join(out, 'unet', 'model.onnx')));
    const perShard = new Map<string, number>();
    for (const t of model.graph!.initializer!) {
      const location = t.externalData?.find((e) => e.key === 'location')?.value;
      if (!location) continue;
      const offset = Number(t.externalData?.find((e) => e.key === 'offset')?.value ?? 0);
      expect(offset % 64).toBe(0);
      perShard.set(location, (perShard.get(location) ?? 0) + 1);
    }
    for (const shard of manifest.unet.externalData) {
      const size = statSync(join(out, shard)).size;
      // A shard stays under the limit unless one tensor alone is larger.
      expect(size <= limit || perShard.get(shard.slice('unet/'.length)) === 1).toBe(true);
    }
    expect(maxAbs(await runUnet(join(out, 'unet', 'model.onnx')), await runUnet(join(dir, 'export', 'unet', 'model.onnx')))).toBeLessThanOrEqual(1e-6);
  });

  it('--eta-unet: θ + η equals θ_dpo for every parameter, in the initializer layout', async () => {
    const dir = scratch();
    const base = writeMiniExport(join(dir, 'export'), 'optimum');
    const dpo = writeMiniDpoUnet(join(dir, 'dpo'), base);
    const out = join(dir, 'out');
    const { manifest, etaRules } = await prepareFromPaths({ onnx: join(dir, 'export'), out, etaUnet: join(dir, 'dpo') });
    expect(etaRules).toEqual({ name: 6, linear: 1, norm: 2 });
    expect(manifest.offsets.eta).toMatchObject({ kind: 'dense', files: ['eta.safetensors'], tensors: 9 });
    const eta = readSafetensors(readFileSync(join(out, 'eta.safetensors'))).tensors;
    const names: Record<string, string> = {
      'down_blocks.0.resnets.0.norm1.weight': 'onnx::Mul_101', 'down_blocks.0.resnets.0.norm1.bias': 'onnx::Add_102',
      'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight': 'onnx::MatMul_103',
    };
    for (const [key, p] of base) {
      const e = eta.get(names[key] ?? key)!;
      const tuned = dpo.get(key)!.data;
      if (key.endsWith('to_k.weight')) {
        const [o, i] = p.shape;
        expect(e.shape).toEqual([i, o]);
        for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) expect(Math.abs(p.data[a * i + b] + e.data[b * o + a] - tuned[a * i + b])).toBeLessThan(1e-6);
      } else {
        expect(e.data.length).toBe(p.data.length);
        expect(maxAbs(p.data.map((x, j) => x + e.data[j]), tuned)).toBeLessThan(1e-6);
      }
    }
  });

  it('--eta-rank: a diffusers LoRA on the Linear / 1×1 Conv sites; the rest reported as dropped', async () => {
    const dir = scratch();
    const base = writeMiniExport(join(dir, 'export'), 'diffusers');
    writeMiniDpoUnet(join(dir, 'dpo'), base);
    const out = join(dir, 'out');
    const { manifest, etaRank } = await prepareFromPaths({ onnx: join(dir, 'export'), out, etaUnet: join(dir, 'dpo'), etaRank: 2 });
    expect(manifest.offsets.eta).toMatchObject({ kind: 'lora', file: 'eta.safetensors', rank: 2 });
    const sites = findLoraSites(miniUnet(miniUnetParams(1)), 'all');
    const set = parseLora(readFileSync(join(out, 'eta.safetensors')), sites);
    expect([...set.entries.keys()].sort()).toEqual(['down_blocks.0.attentions.0.proj_in', 'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k']);
    expect(set.entries.get('down_blocks.0.attentions.0.proj_in')!.conv1x1).toBe(true);
    expect(etaRank!.layers).toHaveLength(2);
    for (const l of etaRank!.layers) expect(l.relError).toBeGreaterThan(0);
    expect(etaRank!.dropped.tensors).toBe(7);
    expect(etaRank!.dropped.normShare).toBeGreaterThan(0);
    expect(etaRank!.dropped.normShare).toBeLessThan(1);
  });

  it('--eta-lora / --delta-lora: validated against the sites and copied; unmatched keys refused', async () => {
    const dir = scratch();
    writeMiniExport(join(dir, 'export'), 'diffusers');
    const sites = findLoraSites(miniUnet(miniUnetParams(1)), 'all');
    const entry = (t: (typeof sites)[0]) => ({ rank: 2, scale: 1, inFeatures: t.inFeatures, outFeatures: t.outFeatures, down: new Float32Array(2 * t.inFeatures).fill(0.1), up: new Float32Array(2 * t.outFeatures).fill(0.1), ...(t.opType === 'Conv' ? { conv1x1: true } : {}) });
    const lora = serializeLora({ entries: new Map(sites.map((t) => [t.modulePath, entry(t)])) }, 'kohya');
    writeFileSync(join(dir, 'delta.safetensors'), lora);
    const { manifest } = await prepareFromPaths({ onnx: join(dir, 'export'), out: join(dir, 'out'), deltaLora: join(dir, 'delta.safetensors') });
    expect(manifest.offsets.delta).toMatchObject({ kind: 'lora', file: 'delta.safetensors', rank: 2 });
    expect(sha(join(dir, 'out', 'delta.safetensors'))).toBe(sha(join(dir, 'delta.safetensors')));

    const bad = writeSafetensors({
      'unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q.lora.down.weight': { shape: [2, 8], data: new Float32Array(16) },
      'unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q.lora.up.weight': { shape: [8, 2], data: new Float32Array(16) },
    });
    writeFileSync(join(dir, 'bad.safetensors'), bad);
    await expect(prepareFromPaths({ onnx: join(dir, 'export'), out: join(dir, 'out2'), etaLora: join(dir, 'bad.safetensors') }))
      .rejects.toThrow(/--eta-lora .*bad\.safetensors: .*match no target.*mid_block\.attentions\.0/s);
  });
});

describe('prepare-model refuses bad input clearly', () => {
  function exportCopy(layout: 'diffusers' | 'optimum' = 'diffusers') {
    const dir = scratch();
    const params = writeMiniExport(join(dir, 'export'), layout);
    return { dir, export: join(dir, 'export'), out: join(dir, 'out'), params };
  }

  it('a missing component', async () => {
    const e = exportCopy();
    rmSync(join(e.export, 'vae_decoder'), { recursive: true });
    await expect(prepareFromPaths({ onnx: e.export, out: e.out })).rejects.toThrow(/lacks its vae_decoder component: expected .*vae_decoder\/model\.onnx/);
  });

  it('a half-SDXL export (text_encoder_2 but an SD1.5 UNet), and option combinations that make no sense', async () => {
    const e = exportCopy();
    await expect(prepareFromPaths({ onnx: e.export, out: e.out, etaRank: 4 })).rejects.toThrow(/--eta-rank needs --eta-unet/);
    await expect(prepareFromPaths({ onnx: e.export, out: e.out, etaUnet: 'a', etaLora: 'b' })).rejects.toThrow(/--eta-unet or --eta-lora, not both/);
    cpSync(join(e.export, 'text_encoder'), join(e.export, 'text_encoder_2'), { recursive: true });
    // SDXL is recognised by text_encoder_2; its UNet must then take SDXL's added conditions
    await expect(prepareFromPaths({ onnx: e.export, out: e.out })).rejects.toThrow(/is not a diffusers UNet export: it lacks the input\(s\) text_embeds, time_ids/);
  });

  it('a graph that is not ONNX', async () => {
    const e = exportCopy();
    writeFileSync(join(e.export, 'unet', 'model.onnx'), '<html>404 not found</html>');
    await expect(prepareFromPaths({ onnx: e.export, out: e.out })).rejects.toThrow(/unet\/model\.onnx is not an ONNX model/);
  });

  it('a truncated external weights file (offset + length past its end), before writing anything', async () => {
    const e = exportCopy();
    const weights = join(e.export, 'unet', 'weights.pb');
    truncateSync(weights, statSync(weights).size - 10);
    await expect(prepareFromPaths({ onnx: e.export, out: e.out })).rejects.toThrow(/tensor conv_out\.weight: external data bytes \d+\.\.\d+ lie past the end of weights\.pb/);
    expect(() => statSync(e.out)).toThrow(); // nothing written
  });

  it('an external location outside the graph folder', async () => {
    const e = exportCopy();
    const path = join(e.export, 'unet', 'model.onnx');
    const model = readModel(readFileSync(path));
    model.graph!.initializer![0].externalData!.find((x) => x.key === 'location')!.value = '../../../etc/passwd';
    writeFileSync(path, writeModel(model));
    await expect(prepareFromPaths({ onnx: e.export, out: e.out })).rejects.toThrow(/leaves the graph's folder/);
  });

  it('a UNet without encoder_hidden_states', async () => {
    const e = exportCopy();
    const path = join(e.export, 'unet', 'model.onnx');
    const model = readModel(readFileSync(path));
    model.graph!.input = model.graph!.input!.filter((i) => i.name !== 'encoder_hidden_states');
    writeFileSync(path, writeModel(model));
    await expect(prepareFromPaths({ onnx: e.export, out: e.out })).rejects.toThrow(/lacks the input\(s\) encoder_hidden_states/);
  });

  it('a DPO UNet whose safetensors header is corrupt or whose file is truncated', async () => {
    const e = exportCopy();
    writeMiniDpoUnet(join(e.dir, 'dpo'), e.params);
    const file = join(e.dir, 'dpo', 'diffusion_pytorch_model.safetensors');
    const good = readFileSync(file);
    truncateSync(file, good.length - 4);
    await expect(prepareFromPaths({ onnx: e.export, out: e.out, etaUnet: join(e.dir, 'dpo') })).rejects.toThrow(/safetensors: .*(past the end|cover only)/);
    const corrupt = Buffer.from(good);
    corrupt[8] = 0x5b; // '[' instead of '{'
    writeFileSync(file, corrupt);
    await expect(prepareFromPaths({ onnx: e.export, out: e.out, etaUnet: join(e.dir, 'dpo') })).rejects.toThrow(/header does not start with '\{'/);
  });

  it('a DPO parameter that maps nowhere, or with another shape, names both sides', async () => {
    const e = exportCopy();
    const tuned = new Map(e.params);
    tuned.set('mid_block.resnets.0.conv1.weight', { shape: [2, 2], data: new Float32Array(4) });
    tuned.set('down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight', { shape: [8, 12], data: new Float32Array(96) });
    writeMiniDpoUnet(join(e.dir, 'dpo'), tuned);
    await expect(prepareFromPaths({ onnx: e.export, out: e.out, etaUnet: join(e.dir, 'dpo') })).rejects.toThrow(
      /2 of 10 UNet parameters do not map.*to_k\.weight \[8, 12\] meets onnx::MatMul_103 \[32, 16\].*mid_block\.resnets\.0\.conv1\.weight \[2, 2\] maps to no initializer/s,
    );
  });

  it('a non-empty output folder that is not a prepared model', async () => {
    const e = exportCopy();
    cpSync(join(e.export, 'scheduler'), e.out, { recursive: true });
    await expect(prepareFromPaths({ onnx: e.export, out: e.out })).rejects.toThrow(/is not empty and holds no prepared model/);
    expect(readdirSync(e.out)).toEqual(['scheduler_config.json']);
  });

  it('a prepared model is replaced only by a complete new one; a failed run leaves it as it was', async () => {
    const e = exportCopy();
    writeMiniDpoUnet(join(e.dir, 'dpo'), e.params);
    await prepareFromPaths({ onnx: e.export, out: e.out, etaUnet: join(e.dir, 'dpo') });
    const first = readFileSync(join(e.out, 'manifest.json'), 'utf8');
    // A run that fails late (the tokenizer is read after every weight is written).
    const vocab = join(e.export, 'tokenizer', 'vocab.json');
    const vocabText = readFileSync(vocab, 'utf8');
    rmSync(vocab);
    await expect(prepareFromPaths({ onnx: e.export, out: e.out })).rejects.toThrow(/lacks vocab\.json \+ merges\.txt/);
    expect(readFileSync(join(e.out, 'manifest.json'), 'utf8')).toBe(first);
    expect(existsSync(join(e.out, 'eta.safetensors'))).toBe(true);
    writeFileSync(vocab, vocabText);
    const { manifest } = await prepareFromPaths({ onnx: e.export, out: e.out });
    expect(manifest.offsets.eta).toBeUndefined();
    expect(existsSync(join(e.out, 'eta.safetensors'))).toBe(false); // nothing stale from the first run
    expect(readdirSync(e.dir).filter((n) => n.includes('.partial-') || n.includes('.replaced-'))).toEqual([]);
  });
});
