// Fuzz target prepared-manifest: parseAnyManifest on prepare-model's format 2 (SD1.5 and SDXL), with mutations that
// know the format (component files and external data, offsets, the sdxl section, defaults, tokenizer folders), then
// what the loaders do with an accepted one: the fit check (model/fit.ts), each component's external data mapped to
// the names its graph uses (pipelines/onnx-component.ts), and every path they fetch. Node only.
import { checkFit } from '../model/fit.ts';
import { isPrepared, ManifestError, parseAnyManifest, type PreparedManifest } from '../model/manifest.ts';
import { componentFiles } from '../pipelines/onnx-component.ts';
import { invariant } from './invariant.ts';
import { INTERESTING_INTS, mutateJsonText, pick, Raw, toJson, type JsonLike, type Random } from './mutate.ts';
import type { FuzzTarget, Parts } from './targets.ts';

const SHA = 'ab'.repeat(32);
const file = (path: string, bytes: number) => ({ path, bytes, sha256: SHA });

const component = (dir: string, inputs: Record<string, string>, outputs: string[], largest: number) => ({
  file: `${dir}/model.onnx`, externalData: [`${dir}/weights-00.bin`, `${dir}/weights-01.bin`], inputs, outputs, dtype: 'float16', largestTensorBytes: largest,
});

/** An SD1.5 and an SDXL manifest as prepare-model writes them (sizes of the real float16 preparations). */
export function preparedSeed(kind: 'sd15' | 'sdxl'): Record<string, unknown> {
  const sdxl = kind === 'sdxl';
  const unetInputs = { sample: 'float16', timestep: 'int64', encoder_hidden_states: 'float16', ...(sdxl ? { text_embeds: 'float16', time_ids: 'float16' } : {}) };
  const dirs = ['unet', 'text_encoder', 'vae_decoder', 'vae_encoder', ...(sdxl ? ['text_encoder_2'] : [])];
  const tokenizers = ['tokenizer', ...(sdxl ? ['tokenizer_2'] : [])];
  return {
    format: 2, kind, name: `stable-diffusion-${kind}`, description: `Stable Diffusion ${kind} prepared from /exports/${kind}`, status: 'prepared',
    unet: component('unet', unetInputs, ['out_sample'], sdxl ? 52_428_800 : 26_214_400),
    textEncoder: component('text_encoder', { input_ids: 'int32' }, ['last_hidden_state', 'pooler_output', 'hidden_states.11'], 75_890_688),
    vaeDecoder: component('vae_decoder', { latent_sample: 'float16' }, ['sample'], 4_718_592),
    vaeEncoder: component('vae_encoder', { sample: 'float16' }, ['latent_sample'], 4_718_592),
    tokenizer: { dir: 'tokenizer', modelMaxLength: 77 },
    latent: { channels: 4, vaeScaleFactor: 8, scalingFactor: sdxl ? 0.13025 : 0.18215 },
    context: { length: 77, dim: sdxl ? 2048 : 768 },
    scheduler: { _class_name: 'EulerDiscreteScheduler', beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000, steps_offset: 1 },
    defaults: { prompt: '', negativePrompt: '', steps: 25, omega: sdxl ? 4 : 6.5, alpha: 1, beta: 1, seed: 42, scheduler: 'dpm++2m', width: sdxl ? 1024 : 512, height: sdxl ? 1024 : 512 },
    offsets: {
      eta: { kind: 'dense', files: ['eta-00.safetensors', 'eta-01.safetensors'], tensors: 686, description: 'θ_dpo − θ' },
      delta: sdxl
        ? { kind: 'stack', parts: [{ kind: 'lora', file: 'delta.safetensors', rank: 8, description: 'NPO', scale: 1 }, { kind: 'lora', file: 'spo.safetensors', rank: 64, description: 'SPO', scale: 0.8 }], description: 'SPO + NPO' }
        : { kind: 'lora', file: 'delta.safetensors', rank: 8, description: 'diffusers LoRA on 192 layers' },
    },
    npoFootprint: { touchedElements: 955_187_200, largestTouchedElements: 6_553_600, stacked: false, offsetArrays: 2, elementBytes: 2 },
    source: { tool: 'npo-playground prepare-model v1', onnx: `/exports/${kind}`, exportDtype: 'float16' },
    files: [
      ...dirs.flatMap((d) => [file(`${d}/model.onnx`, 1_000_000), file(`${d}/weights-00.bin`, 1_900_000_000), file(`${d}/weights-01.bin`, 300_000_000)]),
      ...tokenizers.flatMap((d) => [file(`${d}/tokenizer.json`, 2_224_000), file(`${d}/tokenizer_config.json`, 705)]),
      file('eta-00.safetensors', 1_700_000_000), file('eta-01.safetensors', 20_000_000), file('delta.safetensors', 6_000_000), file('spo.safetensors', 90_000_000),
    ],
    ...(sdxl ? {
      sdxl: {
        textEncoder2: component('text_encoder_2', { input_ids: 'int64' }, ['text_embeds', 'hidden_states.31'], 104_857_600), tokenizer2: { dir: 'tokenizer_2', modelMaxLength: 77 },
        hiddenStates: ['hidden_states.11', 'hidden_states.31'], pooled: 'text_embeds', hiddenDims: [768, 1280], textEmbedsDim: 1280, timeIdsDim: 6, forceZerosForEmptyPrompt: true,
      },
    } : {}),
  };
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const seeds = (): Parts[] => [[utf8(JSON.stringify(preparedSeed('sd15'), null, 2))], [utf8(JSON.stringify(preparedSeed('sdxl')))]];

/** Where the loaders look: the fields a hostile manifest would aim at. */
const FIELD_PATHS = [
  'kind', 'unet.file', 'unet.externalData', 'unet.externalData.0', 'unet.inputs.timestep', 'unet.outputs', 'unet.dtype', 'unet.largestTensorBytes',
  'textEncoder', 'vaeDecoder.externalData.1', 'vaeEncoder', 'tokenizer.dir', 'tokenizer.modelMaxLength', 'latent.channels', 'latent.vaeScaleFactor',
  'latent.scalingFactor', 'context.length', 'context.dim', 'defaults.width', 'defaults.height', 'defaults.steps', 'defaults.seed', 'defaults.omega',
  'offsets', 'offsets.eta', 'offsets.eta.kind', 'offsets.eta.files', 'offsets.eta.files.0', 'offsets.eta.tensors', 'offsets.delta.kind',
  'offsets.delta.file', 'offsets.delta.rank', 'files.0.bytes', 'files.1.path', 'files', 'sdxl', 'sdxl.hiddenDims', 'sdxl.hiddenDims.1',
  'sdxl.hiddenStates', 'sdxl.textEncoder2.externalData', 'sdxl.tokenizer2.dir', 'sdxl.timeIdsDim', 'sdxl.forceZerosForEmptyPrompt', 'format',
  'offsets.delta.parts', 'offsets.delta.parts.0.scale', 'offsets.delta.parts.1.file', 'offsets.delta.parts.1.kind', 'npoFootprint',
  'npoFootprint.touchedElements', 'npoFootprint.largestTouchedElements', 'npoFootprint.elementBytes', 'npoFootprint.offsetArrays',
];

function hostile(r: Random, original: unknown): JsonLike {
  return pick<() => JsonLike>(r, [
    () => pick(r, INTERESTING_INTS), () => -pick(r, INTERESTING_INTS), () => pick(r, [0, -1, 0.5, 1e308, 2 ** 53, 2 ** 31, 2 ** 32 + 8]),
    () => new Raw(pick(r, ['NaN', 'Infinity', '-1e999'])),
    () => pick(r, ['', '../weights.bin', '/etc/passwd', 'https://example.invalid/w.bin', 'unet/../../x', 'unet/./model.onnx', 'a\\b', 'C:/w', '%2e%2e/x', 'lora', 'dense', 'stack', 'sdxl', 'sd3']),
    () => pick<JsonLike>(r, [null, true, false, [], {}, [1, 2], ['unet/model.onnx', 'unet/model.onnx'], { toString: 1, valueOf: 'x' }]),
    () => Array.from({ length: pick(r, [2, 1001, 20_000]) }, (_, i) => `unet/weights-${i}.bin`),
    () => (typeof original === 'number' ? pick(r, [original * 2 ** 30, original + 1, -original, original / 3]) : 'x'.repeat(pick(r, [513, 100_000]))),
    () => (typeof original === 'string' ? `${original}x` : 7),
  ])();
}

/** Sets (or, one time in six, deletes) the field at a dotted path of the parsed manifest. */
function mutateField(r: Random, text: string): string {
  const root = JSON.parse(text) as Record<string, unknown>;
  for (let k = 1 + r.int(2); k > 0; k--) {
    const path = pick(r, FIELD_PATHS).split('.');
    let parent: unknown = root;
    for (const key of path.slice(0, -1)) parent = parent && typeof parent === 'object' ? (parent as Record<string, unknown>)[key] : undefined;
    if (!parent || typeof parent !== 'object') continue;
    const key = path.at(-1)!;
    const slot = parent as Record<string, unknown>;
    if (r.int(6) === 0) delete slot[key];
    else slot[key] = hostile(r, slot[key]);
  }
  return toJson(root as JsonLike);
}

/** Every path a loader fetches or hands to ORT for this manifest. */
function referencedPaths(m: PreparedManifest): string[] {
  const components = [m.unet, m.textEncoder, m.vaeDecoder, m.vaeEncoder, m.sdxl?.textEncoder2].filter((c) => c !== undefined);
  const offsets = [m.offsets.eta, m.offsets.delta].flatMap((o) => (o === undefined ? [] : o.kind === 'lora' ? [o.file] : o.kind === 'stack' ? o.parts.map((p) => p.file) : o.files));
  const tokenizers = [m.tokenizer.dir, m.sdxl?.tokenizer2.dir].filter((d) => d !== undefined).flatMap((d) => [`${d}/tokenizer.json`, `${d}/tokenizer_config.json`]);
  return [...components.flatMap((c) => [c.file, ...c.externalData]), ...offsets, ...tokenizers];
}

const isPlainPath = (p: string) => p.length > 0 && !p.startsWith('/') && !/[\\:?#%\u0000-\u001f\u007f]/.test(p) && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
const isIn = (v: number, lo: number, hi: number) => Number.isSafeInteger(v) && v >= lo && v <= hi;

function checkAccepted(m: PreparedManifest): void {
  const listed = new Set(m.files.map((f) => f.path));
  for (const p of referencedPaths(m)) invariant(typeof p === 'string' && isPlainPath(p) && listed.has(p), `referenced path ${JSON.stringify(p)} accepted but not a listed plain path`);
  const empty = new Map(m.files.map((f) => [f.path, new Uint8Array(0)]));
  for (const c of [m.unet, m.textEncoder, m.vaeDecoder, m.vaeEncoder, m.sdxl?.textEncoder2]) {
    if (c) for (const location of componentFiles(c, empty).keys()) invariant(isPlainPath(location), `external data location ${JSON.stringify(location)}`);
  }
  const f = m.latent.vaeScaleFactor;
  invariant(isIn(m.latent.channels, 1, 64) && isIn(f, 1, 64) && m.latent.scalingFactor > 0, `latent ${JSON.stringify(m.latent)}`);
  invariant([m.defaults.width, m.defaults.height].every((s) => isIn(s / f, 1, 8192)), `default size ${m.defaults.width}×${m.defaults.height} at factor ${f}`);
  invariant(isIn(m.context.length, 1, 4096) && isIn(m.context.dim, 1, 1 << 16) && isIn(m.tokenizer.modelMaxLength, 2, 4096), 'context or tokenizer length out of range');
  invariant(isIn(m.defaults.steps, 1, 1000) && [m.defaults.omega, m.defaults.alpha, m.defaults.beta].every(Number.isFinite), 'defaults out of range');
  for (const o of [m.offsets.eta, m.offsets.delta]) invariant(o === undefined || o.kind === 'lora' || o.kind === 'stack' || o.kind === 'dense', `offset kind ${String((o as { kind?: unknown } | undefined)?.kind)}`);
  if (m.kind === 'sdxl') {
    const x = m.sdxl!;
    invariant(x.hiddenDims.length === 2 && x.hiddenDims[0] + x.hiddenDims[1] === m.context.dim && x.hiddenStates.length === 2, 'sdxl widths do not make up the context');
  }
  for (const backend of ['wasm', 'webgpu'] as const) {
    const report = checkFit(m, { backend, maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27 });
    invariant(Number.isFinite(report.totalBytes) && report.problems.every((p) => typeof p === 'string'), `fit report ${report.totalBytes}`);
  }
}

export const preparedManifestTarget: FuzzTarget = {
  name: 'prepared-manifest',
  errorType: 'ManifestError',
  seeds,
  mutate: (r, [bytes]) => {
    const text = new TextDecoder().decode(bytes);
    return [utf8(r.int(2) === 0 ? mutateField(r, text) : mutateJsonText(r, text))];
  },
  run([bytes]) {
    const m = parseAnyManifest(new TextDecoder().decode(bytes));
    if (isPrepared(m)) checkAccepted(m);
  },
  expected: (e) => e instanceof ManifestError,
};
