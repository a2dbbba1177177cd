// `npm run generate`: headless generation on onnxruntime-node with the same pipelines the page runs (for scripts and
// CI). Writes baseline.png and npo.png (same seed; without and with NPO), the final latents before the VAE as
// little-endian float32 NCHW (`*.latents.f32`), and run.json with every setting, the seed used, timings and the token
// ids of the prompt and negative prompt (SDXL: of both tokenizers, ids and ids2). ω is our guidance: diffusers'
// guidance_scale = ω + 1. SDXL: without --negative-prompt there is no negative prompt (zeros, as diffusers'
// negative_prompt=None with force_zeros_for_empty_prompt); --negative-prompt "" encodes the empty string.
// Usage: npm run generate -- --model <prepared dir> --prompt "…" [--negative-prompt "…"] [--seed 42] [--steps 25]
//          [--scheduler dpm++2m] [--omega 6.5] [--alpha 1] [--beta 1] [--eta <lora>[:scale]]… [--delta <lora>[:scale]]…
//          [--width 512 --height 512] --out <dir> [--tokens-only] [--emit-python <file.py>]
// --emit-python writes a Python script that makes the same pair with diffusers and the official NPO recipe
// (src/share/diffusers-script.ts; also its batch form for a prompt list on many GPUs); without --out it only writes that.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { encodePng } from '../world/png.ts';
import { createModelEngine } from '../pipelines/index.ts';
import { openModelDirectory } from '../model/source/node-directory.ts';
import { parseLoraArgs } from './lora-arg.ts';
import type { GenerateParams, ImageKind } from '../worker/protocol.ts';
import { isPrepared, type AnyManifest } from '../model/manifest.ts';
import { diffusersModelOf, diffusersScript, type DiffusersOffset } from '../share/diffusers-script.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' }, prompt: { type: 'string' }, 'negative-prompt': { type: 'string' }, seed: { type: 'string' },
    steps: { type: 'string' }, scheduler: { type: 'string' }, omega: { type: 'string' }, alpha: { type: 'string' }, beta: { type: 'string' },
    eta: { type: 'string', multiple: true }, delta: { type: 'string', multiple: true }, width: { type: 'string' }, height: { type: 'string' }, out: { type: 'string' },
    'tokens-only': { type: 'boolean', default: false }, 'emit-python': { type: 'string' },
  },
});

function number(name: string, fallback: number): number {
  const text = values[name as keyof typeof values] as string | undefined;
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${JSON.stringify(text)}`);
  return n;
}

/** The run's settings: the flags, else the model's defaults (its size from the engine, or a prepared manifest's). */
function settings(d: AnyManifest['defaults'], size: { width: number; height: number } | undefined): GenerateParams {
  const fallback = size ?? ('width' in d ? d : undefined);
  return {
    prompt: values.prompt ?? d.prompt,
    negativePrompt: values['negative-prompt'] ?? d.negativePrompt,
    // SDXL: no --negative-prompt = no negative prompt (zero embeddings where the model says force_zeros_for_empty_prompt);
    // --negative-prompt "" = the empty string encoded (diffusers' negative_prompt=None vs "").
    negativePromptGiven: values['negative-prompt'] !== undefined,
    seed: number('seed', d.seed),
    steps: number('steps', d.steps),
    scheduler: values.scheduler ?? d.scheduler,
    omega: number('omega', d.omega),
    alpha: number('alpha', d.alpha),
    beta: number('beta', d.beta),
    width: fallback ? number('width', fallback.width) : undefined,
    height: fallback ? number('height', fallback.height) : undefined,
  };
}

async function main() {
  if (!values.model || !(values.out || values['emit-python'])) throw new Error('usage: npm run generate -- --model <dir> --prompt "…" --out <dir> [--emit-python <file>] (see src/cli/generate.ts)');
  // Every file is checked against the manifest's sizes and SHA-256 as the engine reads it.
  const source = await openModelDirectory(values.model);
  if (!values.out) return emitPython(values['emit-python']!, source.manifest, values.model, settings(source.manifest.defaults, undefined));
  const engine = await createModelEngine(ort, source, { sessionOptions: { logSeverityLevel: 3 } });
  const params = settings(engine.info.defaults, engine.info);
  // Repeated --eta / --delta stack their LoRAs on that branch, each with its own scale (path:scale).
  for (const role of ['eta', 'delta'] as const) {
    const loras = parseLoraArgs(values[role], role);
    if (loras.length) {
      const { skipped } = engine.useLora(role, loras.map(({ path, scale }) => ({ bytes: new Uint8Array(readFileSync(path)), scale })));
      if (skipped) console.error(`${role}: ${skipped} keys of ${loras.map((l) => l.path).join(', ')} target layers that are not patched (skipped)`);
    }
  }
  if (values['emit-python']) emitPython(values['emit-python'], source.manifest, values.model, params);
  mkdirSync(values.out, { recursive: true });
  const tokens = { prompt: engine.tokens(params.prompt), negativePrompt: engine.tokens(params.negativePrompt) };
  const run: Record<string, unknown> = { model: values.model, modelName: engine.info.name, kind: engine.info.kind, params, guidanceScale: params.omega + 1, tokens, eta: values.eta, delta: values.delta };
  if (values['tokens-only']) {
    writeFileSync(join(values.out, 'run.json'), `${JSON.stringify(run, null, 2)}\n`);
    return engine.release();
  }

  const started = performance.now();
  const kinds: ImageKind[] = ['baseline', 'npo'];
  const { seed, images } = await engine.generate(params, kinds, {
    onStep: (step, total) => process.stderr.write(`\rstep ${step}/${total}`),
  });
  process.stderr.write('\n');
  const milliseconds = performance.now() - started;
  const latents = engine.lastLatents();
  for (const kind of kinds) {
    writeFileSync(join(values.out, `${kind}.png`), encodePng(images.get(kind)!, params.width!, params.height!));
    const latent = latents?.latents.get(kind) ?? images.get(kind)!;
    writeFileSync(join(values.out, `${kind}.latents.f32`), littleEndian(latent));
  }
  Object.assign(run, { seed, latentShape: [1, ...(latents?.shape ?? [])], milliseconds: Math.round(milliseconds), stats: engine.stats() });
  writeFileSync(join(values.out, 'run.json'), `${JSON.stringify(run, null, 2)}\n`);
  console.log(`wrote ${join(values.out, 'baseline.png')} and npo.png (seed ${seed}, ${params.steps} steps, ${(milliseconds / 1000).toFixed(1)} s)`);
  await engine.release();
}

/** The diffusers script for these settings; --eta / --delta given here replace the model's own η / δ in it too. */
function emitPython(file: string, manifest: AnyManifest, modelDir: string, params: GenerateParams) {
  if (!isPrepared(manifest)) throw new Error(`--emit-python: ${manifest.name} is the embedded model, which has no diffusers equivalent (prepared SD1.5/SDXL models only)`);
  const model = diffusersModelOf(manifest, modelDir);
  const asLoras = (raws: string[] | undefined): DiffusersOffset | undefined => (raws?.length ? { kind: 'loras', loras: parseLoraArgs(raws, 'lora') } : undefined);
  model.eta = asLoras(values.eta) ?? model.eta;
  model.delta = asLoras(values.delta) ?? model.delta;
  const madeBy = `npm run generate -- ${process.argv.slice(2).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`;
  writeFileSync(file, diffusersScript({ model, params, madeBy }));
  console.error(`wrote ${file}`);
}

/** Float32 as little-endian bytes whatever the host's byte order. */
function littleEndian(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return bytes;
}

main().catch((error) => {
  console.error(`generate: ${(error as Error).message}`);
  process.exit(1);
});
