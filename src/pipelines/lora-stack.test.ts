// Several LoRAs stacked on one branch with their own scales (the paper's SPO+NPO recipe, G-U-N/Diffusion-NPO gen_xl.py
// load_spo_ours_pipeline) on the tiny SDXL fixture, prepared with `npm run prepare-model --eta-lora/--delta-lora
// path:scale` as a user would, against diffusers running the LoRAs as adapters weighted by set_adapters in the
// official double-UNet loop (scripts/fixtures/make_sdxl_stack_reference.py → fixtures/sdxl/stack-references.*).
// Tolerance as issue 16: final latents within 1e-3 relative L2.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { assembleSdxlExport, SDXL_FIXTURE } from '../../scripts/fixtures/sdxl-export.ts';
import { readSafetensors } from '../lora/safetensors.ts';
import { parseAnyManifest, type PreparedManifest } from '../model/manifest.ts';
import type { GenerateParams } from '../worker/protocol.ts';
import { createModelEngine } from './index.ts';
import { prepareFixture, relL2 } from './reference-metrics.ts';
import { memorySource } from '../model/source/memory.ts';

const references = readSafetensors(new Uint8Array(readFileSync(join(SDXL_FIXTURE, 'stack-references.safetensors')))).tensors;
const meta = JSON.parse(readFileSync(join(SDXL_FIXTURE, 'stack-references.json'), 'utf8'));
const s = meta.settings;
const SPO = join(SDXL_FIXTURE, 'delta-diffusers.safetensors');
const NPO = join(SDXL_FIXTURE, 'npo-attn1.safetensors');

const params: GenerateParams = {
  prompt: s.prompt, negativePrompt: '', negativePromptGiven: false, seed: s.seed, steps: s.steps, omega: s.omega,
  alpha: 1, beta: 1, scheduler: 'euler', width: s.size, height: s.size,
};

async function npoLatents(args: string[]) {
  const model = prepareFixture(assembleSdxlExport(), args);
  const engine = await createModelEngine(ort, memorySource(model.manifest, model.files));
  try {
    await engine.generate(params, ['npo'], {});
    return { latents: engine.lastLatents()!.latents.get('npo')!, manifest: model.manifest as PreparedManifest };
  } finally {
    await engine.release();
  }
}

describe('stacked LoRAs on one branch (SDXL fixture) vs diffusers set_adapters', () => {
  it('SPO+NPO: η = SPO, δ = NPO at 0.8 (θ_pos = θ + SPO, θ_neg = θ + SPO + 0.8·NPO)', async () => {
    const { latents, manifest } = await npoLatents(['--eta-lora', SPO, '--delta-lora', `${NPO}:0.8`]);
    expect(manifest.offsets.eta).toMatchObject({ kind: 'lora', file: 'eta.safetensors' });
    expect(manifest.offsets.eta).not.toHaveProperty('scale');
    expect(manifest.offsets.delta).toMatchObject({ kind: 'lora', file: 'delta.safetensors', scale: 0.8 });
    expect(relL2(latents, references.get('stack.euler.spo_npo.latents')!.data)).toBeLessThan(1e-3);
  });

  it('two LoRAs on the negative branch, each with its scale (θ_neg = θ + 0.6·SPO + 0.8·NPO)', async () => {
    const { latents, manifest } = await npoLatents(['--delta-lora', `${SPO}:0.6`, '--delta-lora', `${NPO}:0.8`]);
    const delta = manifest.offsets.delta!;
    expect(delta.kind).toBe('stack');
    if (delta.kind !== 'stack') return;
    expect(delta.parts.map((p) => [p.file, p.scale])).toEqual([['delta-lora-0.safetensors', 0.6], ['delta-lora-1.safetensors', 0.8]]);
    expect(manifest.files.map((f) => f.path)).toEqual(expect.arrayContaining(['delta-lora-0.safetensors', 'delta-lora-1.safetensors']));
    // the footprint the fit check reads: the union of both LoRAs' layers (NPO's attn1 lie inside SPO's), out × in each
    const layers = new Map<string, number>();
    for (const file of [SPO, NPO]) {
      const t = readSafetensors(new Uint8Array(readFileSync(file))).tensors;
      for (const [key, down] of t) {
        if (key.endsWith('.lora.down.weight')) layers.set(key, down.shape[1] * t.get(key.replace('.down.', '.up.'))!.shape[0]);
      }
    }
    expect(layers.size).toBe(138);
    expect(manifest.npoFootprint).toEqual({
      touchedElements: [...layers.values()].reduce((a, b) => a + b, 0), largestTouchedElements: Math.max(...layers.values()),
      stacked: true, offsetArrays: 1, elementBytes: 4,
    });
    // the loader checks a stack before using it: a scale that is not a number, or an empty stack, is refused
    expect(parseAnyManifest(JSON.stringify(manifest))).toMatchObject({ offsets: { delta: { kind: 'stack' } } });
    const edited = (d: unknown) => JSON.stringify({ ...manifest, offsets: { delta: d } });
    expect(() => parseAnyManifest(edited({ ...delta, parts: [delta.parts[0], { ...delta.parts[1], scale: '0.8' }] }))).toThrow(/offsets\.delta\.parts\[1\]\.scale is "0\.8", expected a number/);
    expect(() => parseAnyManifest(edited({ ...delta, parts: [] }))).toThrow(/offsets\.delta\.parts is an array, expected 1 to 64 LoRAs/);
    const reference = references.get('stack.euler.neg_stack.latents')!.data;
    expect(relL2(latents, reference)).toBeLessThan(1e-3);
    // and the scales matter: both at 1 is another image
    const { latents: unscaled } = await npoLatents(['--delta-lora', SPO, '--delta-lora', NPO]);
    expect(relL2(unscaled, reference)).toBeGreaterThan(1e-2);
  });
});
