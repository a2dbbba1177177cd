// The training CLI (src/cli/train.ts) as a person runs it: progress lines, a diffusers LoRA at --out that parseLora
// reads, a NaN that stops with an error and leaves the last good LoRA, and a bad pairs file named precisely.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { assembleSdxlExport } from '../../scripts/fixtures/sdxl-export.ts';
import { parseLora } from '../lora/formats.ts';
import { encodePairs } from './pairs.ts';
import { readModel } from '../onnx/model-io.ts';
import { planTrainingMemory } from './memory-plan.ts';
import type { CheckpointMode } from './unet-segments.ts';

const root = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'train-cli-'));
const S = 32;
const image = (v: number) => new Float32Array(3 * S * S).map((_, i) => (i % 97 < 40 ? v : -v));
const pairsFile = (prompt: string) => {
  const path = join(dir, `${prompt.replace(/\W/g, '_')}.json`);
  writeFileSync(path, JSON.stringify(encodePairs([{ prompt, winner: image(0.8), loser: image(-0.5) }, { prompt, winner: image(0.6), loser: image(-0.2) }], S, S)));
  return path;
};

/** Prepared SD models train with --execution-mode parallel: the same numbers, the session started in seconds (quick-start.ts). */
async function train(args: string[], model = 'models'): Promise<{ code: number; stdout: string; stderr: string }> {
  const quick = model === 'models' ? [] : ['--execution-mode', 'parallel'];
  try {
    const { stdout, stderr } = await promisify(execFile)(join(root, 'node_modules/.bin/tsx'), ['--import', './scripts/raw-imports.mjs', 'src/cli/train.ts', '--model', model, ...quick, ...args], { cwd: root });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('npm run train', () => {
  it('prints one progress line per step and writes a diffusers LoRA', async () => {
    const out = join(dir, 'lora.safetensors');
    const run = await train(['--pairs', pairsFile('a red square'), '--steps', '2', '--batch', '1', '--rank', '2', '--reverse', '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^NPO/);
    expect(run.stdout.match(/^step \d\/2 {2}loss [\d.]+ {2}acc [\d.]+ {2}\|g\| \S+ {2}[\d.]+ steps\/s$/gm)).toHaveLength(2);
    const bytes = new Uint8Array(readFileSync(out));
    const keys = Object.keys(JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true))))));
    expect(keys.filter((k) => k.endsWith('.lora.down.weight'))).toHaveLength(56); // every attention projection of the embedded UNet (7 transformer blocks × 8)
    expect(keys).toContain('unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q.lora.up.weight');
    const lora = parseLora(bytes, [{ modulePath: 'mid_block.attentions.0.transformer_blocks.0.attn1.to_q', inFeatures: 64, outFeatures: 64 }], { unmatched: 'skip' });
    expect(lora.entries.get('mid_block.attentions.0.transformer_blocks.0.attn1.to_q')!.rank).toBe(2);
  });

  it('stops on NaN with a clear error and leaves the last good LoRA at --out', async () => {
    const out = join(dir, 'nan.safetensors');
    const run = await train(['--pairs', pairsFile('a red square'), '--steps', '4', '--batch', '1', '--rank', '2', '--lr', '1e30', '--out', out]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/train: step 2: the loss is NaN .*\nwrote the last good LoRA \(after step 0\) to /);
    expect(readFileSync(out).byteLength).toBeGreaterThan(1000);
  });

  it('names the pair and the words when the pairs file has a prompt the model cannot read, and refuses an unknown --execution-mode', async () => {
    const run = await train(['--pairs', pairsFile('a red dragon'), '--out', join(dir, 'x.safetensors')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/pair 0: the model cannot read the prompt "a red dragon".*"dragon"/);
    const mode = await train(['--pairs', pairsFile('a red square'), '--execution-mode', 'fast', '--out', join(dir, 'x.safetensors')]);
    expect(mode.code).toBe(1);
    expect(mode.stderr).toMatch(/--execution-mode must be sequential or parallel, got fast/);
  });

  it('trains from an image zip and a Pick-a-Pic shard, and names a broken image of a shard', async () => {
    const zip = await train(['--pairs', 'fixtures/pair-sources/pairs.zip', '--steps', '1', '--batch', '1', '--rank', '2', '--reverse', '--out', join(dir, 'zip.safetensors')]);
    expect(zip.code, zip.stderr).toBe(0);
    expect(zip.stdout).toMatch(/^NPO \(reversed pairs\): 2 pairs from fixtures\/pair-sources\/pairs.zip/m);
    const shard = await train(['--pairs', 'fixtures/pair-sources/pickapic.parquet', '--max-pairs', '1', '--steps', '1', '--batch', '1', '--rank', '2', '--out', join(dir, 'pq.safetensors')]);
    expect(shard.code, shard.stderr).toBe(0);
    expect(shard.stdout).toMatch(/^fixtures\/pair-sources\/pickapic.parquet: the first 1 pairs of the shard's 3 rows \(the limit asked for\)\nDPO: 1 pairs/m);
    const broken = await train(['--pairs', 'fixtures/pair-sources/pickapic-broken-image.parquet', '--steps', '1', '--out', join(dir, 'b.safetensors')]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/^train: fixtures\/pair-sources\/pickapic-broken-image.parquet row 2, jpg_1: cannot be decoded as a PNG, JPEG or WebP image/);
  });

  it('trains on a prepared SD1.5 model (latents through its VAE encoder) and writes diffusers lora.down/up keys', async () => {
    const model = join(dir, 'sd15');
    await promisify(execFile)(join(root, 'node_modules/.bin/tsx'), ['src/cli/prepare-model.ts', '--onnx', 'fixtures/sd15/export-diffusers', '--delta-lora', 'fixtures/sd15/delta-diffusers.safetensors', '--out', model], { cwd: root });
    // δ is trained from θ: the model's own offsets are never read (a dense η is as large as the UNet), so training
    // runs without their files
    rmSync(join(model, 'delta.safetensors'));
    const S64 = 64;
    const img = (v: number) => new Float32Array(3 * S64 * S64).map((_, i) => v + 0.2 * Math.sin(i / 7));
    const pairs = join(dir, 'pairs64.json');
    writeFileSync(pairs, JSON.stringify(encodePairs([{ prompt: 'a red square', winner: img(0.6), loser: img(-0.5) }], S64, S64)));
    const out = join(dir, 'sd15-npo.safetensors');
    const run = await train(['--pairs', pairs, '--resolution', '64', '--steps', '2', '--batch', '1', '--rank', '2', '--reverse', '--out', out], model);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^NPO .*model stable-diffusion-1.5, rank 2, 2 steps, batch 1, β 500/m);
    const keysOf = (path: string) => {
      const bytes = new Uint8Array(readFileSync(path));
      return Object.keys(JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true))))));
    };
    const keys = keysOf(out);
    expect(keys.filter((k) => k.endsWith('.lora.down.weight'))).toHaveLength(32); // to_q/k/v/out.0 of the fixture's 8 attentions
    expect(keys).toContain('unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora.down.weight');
    // The memory plan chooses activation checkpointing when the step exceeds --memory-gib (coarse to fine), and the
    // checkpointed graph trains to the same losses (checkpoint.test.ts compares the gradients themselves).
    expect(run.stdout).toMatch(/^weights fp32, memory plan \d+\.\d\d GiB without checkpointing$/m);
    const losses = (stdout: string) => [...stdout.matchAll(/^step .* loss (\S+) /gm)].map((m) => m[1]);
    const unet = readModel(readFileSync(join(model, 'unet/model.onnx')));
    const planned = (checkpoint: CheckpointMode) => planTrainingMemory(unet, { batch: 1, rank: 2, latentDims: [4, 8, 8], contextDims: [77, 32], checkpoint }).totalBytes;
    const between = (planned('layers') + planned('blocks')) / 2 / 2 ** 30; // only layers fits
    const squeezed = await train(['--pairs', pairs, '--resolution', '64', '--steps', '2', '--batch', '1', '--rank', '2', '--reverse', '--memory-gib', between.toFixed(9), '--out', join(dir, 'ck.safetensors')], model);
    expect(squeezed.code, squeezed.stderr).toBe(0);
    expect(squeezed.stdout).toMatch(/^weights fp32, checkpointing layers: memory plan \d+\.\d\d GiB \(\d+\.\d\d GiB without; activations .*\); tried off .*, blocks .*, layers .*; ORT's CPU arena off \(it may hold up to 2× the plan, over the 0\.\d\d GiB available\)$/m);
    // Less than even the finest plan: refused before the first step, with the numbers, and no LoRA written.
    const tooLittle = await train(['--pairs', pairs, '--resolution', '64', '--steps', '2', '--batch', '1', '--rank', '2', '--memory-gib', '0.01', '--out', join(dir, 'none.safetensors')], model);
    expect(tooLittle.code).toBe(1);
    expect(tooLittle.stderr).toMatch(/training stable-diffusion-1\.5 at 64×64, batch 1, rank 2 needs about \d+ MiB \(weights .*\); this backend has 10 MiB\. Lower the resolution or the batch/);
    expect(() => readFileSync(join(dir, 'none.safetensors'))).toThrow();
    expect(losses(squeezed.stdout)).toHaveLength(2);
    // Printed to 4 decimals; onnxruntime's default fusions differ between the two graphs by float32 round-off.
    losses(squeezed.stdout).forEach((l, i) => expect(Math.abs(Number(l) - Number(losses(run.stdout)[i]))).toBeLessThanOrEqual(1.5e-4));
    const bad = await train(['--pairs', pairs, '--resolution', '64', '--steps', '1', '--checkpoint', 'everything', '--out', join(dir, 'z.safetensors')], model);
    expect(bad.stderr).toMatch(/--checkpoint must be one of auto, off, blocks, layers, got everything/);
    const kohya = join(dir, 'sd15-npo-kohya.safetensors');
    const kohyaRun = await train(['--pairs', pairs, '--resolution', '64', '--steps', '1', '--batch', '1', '--rank', '2', '--format', 'kohya', '--weights', 'fp16', '--out', kohya], model);
    expect(kohyaRun.code).toBe(0);
    expect(kohyaRun.stdout).toMatch(/^weights fp16, memory plan \d+\.\d\d GiB without checkpointing$/m); // frozen weights stored as float16
    expect((await train(['--pairs', pairs, '--weights', 'fp8', '--out', join(dir, 'w.safetensors')], model)).stderr).toMatch(/--weights must be one of fp32, fp16, got fp8/);
    expect(keysOf(kohya)).toContain('lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight');
    expect(keysOf(kohya)).toContain('lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha');
    const refused = await train(['--pairs', pairs, '--resolution', '60', '--steps', '1', '--out', join(dir, 'y.safetensors')], model);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/train: training width 60 must be a positive multiple of the VAE factor 8/);
    const half = join(dir, 'sd15-fp16');
    await promisify(execFile)(join(root, 'node_modules/.bin/tsx'), ['src/cli/prepare-model.ts', '--onnx', 'fixtures/sd15/export-diffusers', '--dtype', 'float16', '--out', half], { cwd: root });
    const fp16 = await train(['--pairs', pairs, '--resolution', '64', '--steps', '1', '--out', join(dir, 'z.safetensors')], half);
    expect(fp16.code).toBe(1);
    expect(fp16.stderr).toMatch(/train: training needs a float32 model for now; stable-diffusion-1.5 has unet in float16/);
  });

  it('trains on a prepared SDXL model with β_dpo 2000 by default and writes kohya keys in SGM names (--format kohya-sgm)', async () => {
    const model = join(dir, 'sdxl');
    await promisify(execFile)(join(root, 'node_modules/.bin/tsx'), ['src/cli/prepare-model.ts', '--onnx', assembleSdxlExport(), '--out', model], { cwd: root });
    const S64 = 64;
    const img = (v: number) => new Float32Array(3 * S64 * S64).map((_, i) => v + 0.2 * Math.sin(i / 7));
    const pairs = join(dir, 'pairs64-sdxl.json');
    writeFileSync(pairs, JSON.stringify(encodePairs([{ prompt: 'a red square', winner: img(0.6), loser: img(-0.5) }], S64, S64)));
    const out = join(dir, 'sdxl-npo-kohya.safetensors');
    const run = await train(['--pairs', pairs, '--resolution', '64', '--steps', '1', '--batch', '1', '--rank', '2', '--reverse', '--format', 'kohya-sgm', '--out', out], model);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^NPO .*rank 2, 1 steps, batch 1, β 2000,/m);
    const bytes = new Uint8Array(readFileSync(out));
    const keys = Object.keys(JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true))))));
    expect(keys.filter((k) => k.endsWith('.lora_down.weight'))).toHaveLength(136);
    expect(keys).toContain('lora_unet_middle_block_1_transformer_blocks_1_attn2_to_v.lora_down.weight');
    expect(keys).toContain('lora_unet_output_blocks_0_1_transformer_blocks_0_attn1_to_out_0.alpha');
  });
});
