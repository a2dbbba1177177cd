// The emitted diffusers script against the real thing: scripts/fixtures/check_diffusers_roundtrip.py ran the script
// `npm run generate --emit-python` wrote, with diffusers v0.29.2 on the tiny SD1.5 fixture, for two recipes (a dense η
// mixed as gen.py's mix_models at α 0.5 with β 0.8 under DPM++ 2M; a LoRA η at 0.6 with α 0.7 and the δ diffusers'
// train_diffusion_dpo.py saved at 1.3 under DDIM) and kept its final latents (diffusers-script-reference.safetensors).
// Our engine, with the same settings, must give them within 1e-4 relative L2 (measured 1.3e-6 there), while NPO moves
// the latents by more than 0.5 relative to the baseline, so a wrong mix, scale or branch fails. The same for the tiny
// SDXL (StableDiffusionXLPipeline; measured 8.5e-7, NPO moves the latents by 0.32).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../lora/safetensors.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import { createModelEngine } from '../pipelines/index.ts';
import type { ModelDirectory } from '../pipelines/read-directory.ts';
import { prepareFixture, relL2 } from '../pipelines/reference-metrics.ts';
import type { GenerateParams } from '../worker/protocol.ts';
import { assembleSdxlExport } from '../../scripts/fixtures/sdxl-export.ts';
import { diffusersModelOf, diffusersScript, DiffusersScriptError, py } from './diffusers-script.ts';
import { memorySource } from '../model/source/memory.ts';

const FIXTURE = join(import.meta.dirname, '../../fixtures/sd15');
const file = (name: string) => new Uint8Array(readFileSync(join(FIXTURE, name)));
const reference = readSafetensors(file('diffusers-script-reference.safetensors'));
const recipes: Record<string, string[]> = JSON.parse(reference.metadata!.recipes);

/** GenerateParams and LoRA flags from the generate flags the check ran. */
function fromFlags(flags: string[]) {
  const value = (name: string) => flags[flags.indexOf(`--${name}`) + 1];
  const all = (name: string) => flags.flatMap((f, i) => (f === `--${name}` ? [flags[i + 1]] : []));
  const params: GenerateParams = {
    prompt: value('prompt'), negativePrompt: '', seed: Number(value('seed')), steps: Number(value('steps')), omega: Number(value('omega')),
    alpha: Number(value('alpha')), beta: Number(value('beta')), scheduler: value('scheduler'), width: Number(value('width')), height: Number(value('height')),
  };
  const loras = (name: string) => all(name).map((arg) => ({ bytes: new Uint8Array(readFileSync(arg.slice(0, arg.lastIndexOf(':')))), scale: Number(arg.slice(arg.lastIndexOf(':') + 1)) }));
  return { params, eta: loras('eta'), delta: loras('delta') };
}

describe('the emitted diffusers script reproduces our images (tiny SD1.5, references from diffusers v0.29.2)', () => {
  let model: ModelDirectory;
  let manifest: PreparedManifest;
  beforeAll(() => {
    model = prepareFixture(join(FIXTURE, 'export-diffusers'), ['--eta-unet', join(FIXTURE, 'dpo-unet'), '--delta-lora', join(FIXTURE, 'dpo-script-delta.safetensors')]);
    manifest = model.manifest as PreparedManifest;
  });

  for (const name of ['dense_eta', 'lora_eta']) {
    it(`${name}: baseline and NPO latents equal the script's within 1e-4 relative L2`, async () => {
      const { params, eta, delta } = fromFlags(recipes[name]);
      const engine = await createModelEngine(ort, memorySource(manifest, model.files));
      if (eta.length) engine.useLora('eta', eta); // as npm run generate --eta / --delta
      if (delta.length) engine.useLora('delta', delta);
      await engine.generate(params, ['baseline', 'npo'], {});
      const latents = engine.lastLatents()!.latents;
      await engine.release();
      const want = (kind: string) => reference.tensors.get(`${name}.${kind}.latents`)!.data as Float32Array;
      expect(relL2(latents.get('baseline')!, want('baseline'))).toBeLessThan(1e-4);
      expect(relL2(latents.get('npo')!, want('npo'))).toBeLessThan(1e-4);
      expect(relL2(want('npo'), want('baseline'))).toBeGreaterThan(0.5);
    });
  }

  it("writes the page's settings, the model's files and scheduler into the script", () => {
    const model = diffusersModelOf(manifest, 'prepared');
    expect(model.eta).toEqual({ kind: 'unet', path: join(FIXTURE, 'dpo-unet') });
    expect(model.delta).toEqual({ kind: 'loras', loras: [{ path: `prepared/${(manifest.offsets.delta as { file: string }).file}`, scale: 1 }] });
    const script = diffusersScript({ model, params: fromFlags(recipes.dense_eta).params, madeBy: 'test' });
    expect(script).toContain('"seed": 42, "steps": 6, "guidance_scale": 7.5, "alpha": 0.5, "beta": 0.8');
    expect(script).toContain('from diffusers import StableDiffusionPipeline, UNet2DConditionModel, DPMSolverMultistepScheduler');
    expect(script).toContain('"algorithm_type": "dpmsolver++"');
    expect(script).not.toContain('@'); // every placeholder filled
  });

  it('refuses a scheduler diffusers has no class for, and SDXL without a negative prompt gets None', () => {
    const model = { ...diffusersModelOf(manifest, ''), kind: 'sdxl' as const };
    const params = fromFlags(recipes.dense_eta).params;
    expect(() => diffusersScript({ model, params: { ...params, scheduler: 'nope' }, madeBy: 't' })).toThrow(DiffusersScriptError);
    expect(diffusersScript({ model, params, madeBy: 't' })).toContain('"negative_prompt": None');
    expect(diffusersScript({ model, params: { ...params, negativePromptGiven: true }, madeBy: 't' })).toContain('"negative_prompt": ""');
  });
});

describe('the emitted diffusers script reproduces our images (tiny SDXL: dense η, δ a stack of two LoRAs, Euler, no negative prompt)', () => {
  it("baseline and NPO latents equal StableDiffusionXLPipeline's within 1e-4 relative L2", async () => {
    const sdxl = join(import.meta.dirname, '../../fixtures/sdxl');
    const model = prepareFixture(assembleSdxlExport(), ['--eta-unet', join(sdxl, 'dpo-unet'), '--delta-lora', join(sdxl, 'delta-diffusers.safetensors'),
      '--delta-lora', `${join(sdxl, 'npo-attn1.safetensors')}:0.8`]);
    const xlReference = readSafetensors(new Uint8Array(readFileSync(join(sdxl, 'diffusers-script-reference.safetensors'))));
    const { params } = fromFlags(JSON.parse(xlReference.metadata!.checks).generate_flags);
    const engine = await createModelEngine(ort, memorySource(model.manifest, model.files));
    await engine.generate(params, ['baseline', 'npo'], {});
    const latents = engine.lastLatents()!.latents;
    await engine.release();
    const want = (kind: string) => xlReference.tensors.get(`sdxl.${kind}.latents`)!.data as Float32Array;
    expect(relL2(latents.get('baseline')!, want('baseline'))).toBeLessThan(1e-4);
    expect(relL2(latents.get('npo')!, want('npo'))).toBeLessThan(1e-4);
    expect(relL2(want('npo'), want('baseline'))).toBeGreaterThan(0.1);
  });
});

describe('py: JSON-like values as Python literals', () => {
  it('writes None/True/False, infinities (also the configs\' "-Infinity" strings), escaped strings', () => {
    expect(py({ a: null, b: [true, false], c: -Infinity, d: '-Infinity', e: 'say "hi"\n', f: 'é', g: 1e-6 }))
      .toBe('{"a": None, "b": [True, False], "c": -float("inf"), "d": -float("inf"), "e": "say \\"hi\\"\\n", "f": "\\u00e9", "g": 0.000001}');
    expect(py('a 😀 cat')).toBe('"a \\U0001f600 cat"'); // one character in Python, not a surrogate pair
  });

  it('keeps a prompt or model name with newlines and "@…@" out of the code and comments', () => {
    const model = { kind: 'sd15' as const, name: 'evil\nimport os', scheduler: {}, base: 'b', notes: [], delta: undefined, eta: undefined };
    const params = { prompt: 'x @SETTINGS@ y\nz', negativePrompt: '', seed: 1, steps: 2, omega: 3, alpha: 1, beta: 1, scheduler: 'ddim' };
    const script = diffusersScript({ model, params, madeBy: 'line one\nline two' });
    expect(script).toContain('for the model "evil import os"');
    expect(script).toContain('(line one line two)');
    expect(script).toContain('"prompt": "x @SETTINGS@ y\\nz"');
  });
});
