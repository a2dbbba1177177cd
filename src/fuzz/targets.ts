// Fuzz targets: every parser that reads a file a person brings, with the valid seed inputs mutations start from, a
// mutator that knows the format, and the parser's own error type (anything else thrown is a crash). Node only: seeds
// come from models/ and from our own writers.
//   safetensors     readSafetensors                                  LoraError
//   lora-diffusers  parseLora on diffusers keys (the embedded η)      LoraError
//   lora-peft       parseLora on PEFT keys + lora_adapter_metadata    LoraError
//   lora-kohya      parseLora on kohya keys + alphas (diffusers and SGM spellings)  LoraError
//   onnx            readModel, externalLocations/Initializers, findLoraSites, every initializer read  OnnxError
//   model-stream    a model source (src/model/source/) streaming a changed file against the manifest   ManifestError
//   manifest        parseManifest                                    ManifestError
//   scheduler       parseSchedulerConfig, then createScheduler + setTimesteps as the worker does  SchedulerConfigError
//                   (and the schedulers' own plain `Error` range checks)
//   pairs           parsePairs with the embedded tokenizer's prompt check   PairsError
//   png             readPngText (tEXt / zTXt / iTXt) then parseParameters on `parameters`, as a dropped PNG   PngError | ParametersError
//   tokenizer-slow, tokenizer-json   the CLIP tokenizer files (tokenizer-targets.ts)              TokenizerFilesError
//   prepared-manifest   parseAnyManifest on format 2, then what the loaders read of it (prepared-manifest-target.ts)  ManifestError
//   pair-zip        pairsFromZip (zip reader, metadata.csv, sharp decoding, resize) on an image-folder zip        PairsError
//   pair-parquet    pairsFromParquet (hyparquet, Pick-a-Pic columns, sharp decoding) on a shard              PairsError
//   hub-listing, hub-download, shard-index, prepared-folder   preparation's inputs in the page (prepare-targets.ts)
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { createScheduler, parseSchedulerConfig, schedulerNameForConfig } from '../diffusion/schedulers/index.ts';
import { SchedulerConfigError } from '../diffusion/schedulers/config.ts';
import { createGenerator } from '../diffusion/noise/index.ts';
import { tokenize } from '../embedded/tokenizer.ts';
import { LoraError } from '../lora/errors.ts';
import { parseLora } from '../lora/formats.ts';
import { kohyaName, sgmPath } from '../lora/keys.ts';
import { readSafetensors, writeSafetensors } from '../lora/safetensors.ts';
import { serializeLora } from '../lora/serialize.ts';
import type { LoraTarget } from '../lora/types.ts';
import { isSafeRelativePath, ManifestError, parseManifest, type AnyManifest } from '../model/manifest.ts';
import { memorySource } from '../model/source/memory.ts';
import { findLoraSites } from '../onnx/lora-sites.ts';
import { externalInitializers, externalizeWeights, externalLocations, inlineExternalData, inlineTensor, readModel, readWeight, writeModel } from '../onnx/model-io.ts';
import { DataType, OnnxError, onnx } from '../onnx/proto.ts';
import { readTensor } from '../onnx/tensor.ts';
import { encodePairs, PairsError, parsePairs } from '../train/pairs.ts';
import { decodeImageNode } from '../train/decode-node.ts';
import { pairsFromParquet, pairsFromZip, type PairSet } from '../train/pair-sources.ts';
import { ParametersError, parseParameters } from '../share/parameters.ts';
import { MAX_PNG_TEXT_BYTES, PNG_SIGNATURE, PngError, pngChunk, readChunks, readPngText, withPngText, type PngChunk } from '../share/png-text.ts';
import { encodePng } from '../world/png.ts';
import { INTERESTING_INTS, mutateBytes, mutateJsonText, pick, type Random } from './mutate.ts';
import { frame, mutateSafetensors } from './safetensors-mutate.ts';
import { invariant } from './invariant.ts';
import { preparedManifestTarget } from './prepared-manifest-target.ts';
import { tokenizerJsonTarget, tokenizerSlowTarget } from './tokenizer-targets.ts';
import { PREPARE_TARGETS } from './prepare-targets.ts';

const isCount = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
const product = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** An input is one or more files (the ONNX target: the model and its external data). */
export type Parts = Uint8Array[];

export interface FuzzTarget {
  name: string;
  /** The parser's own error type, by name (for reports). */
  errorType: string;
  seeds(): Parts[];
  mutate(r: Random, seed: Parts): Parts;
  run(input: Parts): void | Promise<void>;
  /** Whether a thrown value is the parser refusing the input (anything else is a crash). */
  expected(error: unknown): boolean;
}

const models = (path: string) => new Uint8Array(readFileSync(new URL(`../../models/${path}`, import.meta.url)));
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const utf8 = (s: string) => new TextEncoder().encode(s);

function memo<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

// ---------------------------------------------------------------------------------------------------------------------
// safetensors and LoRA formats
// ---------------------------------------------------------------------------------------------------------------------

const unetModel = memo(() => readModel(models('unet.onnx')));
/** The embedded UNet's LoRA targets: what the worker parses a brought LoRA against. */
const loraTargets = memo((): LoraTarget[] =>
  findLoraSites(unetModel()).map((s) => ({ modulePath: s.modulePath, inFeatures: s.inFeatures, outFeatures: s.outFeatures })));
const etaSet = memo(() => parseLora(models('eta.safetensors'), loraTargets()));

/** Keys renamed by a function, data untouched (kohya SGM spelling). */
function renamed(bytes: Uint8Array, rename: (key: string) => string): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(text(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  const out = Object.fromEntries(Object.entries(header).map(([k, v]) => [k === '__metadata__' ? k : rename(k), v]));
  return frame(JSON.stringify(out), bytes.subarray(8 + n));
}

const safetensorsSeeds = memo((): Parts[] => [
  [models('eta.safetensors')],
  [writeSafetensors({ a: { shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }, b: { shape: [], data: [7], dtype: 'F16' }, c: { shape: [0, 4], data: [] } }, { note: 'small' })],
  [frame(JSON.stringify({ x: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] }, y: { dtype: 'F64', shape: [1], data_offsets: [4, 12] } }), new Uint8Array([0x80, 0x3f, 0, 0x40, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]))],
]);

function checkLoraSet(set: ReturnType<typeof parseLora>): void {
  const byPath = new Map(loraTargets().map((t) => [t.modulePath, t]));
  for (const [path, e] of set.entries) {
    const t = byPath.get(path);
    invariant(t !== undefined && e.inFeatures === t.inFeatures && e.outFeatures === t.outFeatures, `${path}: entry does not fit its target`);
    invariant(Number.isSafeInteger(e.rank) && e.rank >= 1, `${path}: rank ${e.rank}`);
    invariant(e.down.length === e.rank * e.inFeatures && e.up.length === e.outFeatures * e.rank, `${path}: factor lengths disagree with rank`);
    invariant(Number.isFinite(e.scale), `${path}: scale ${e.scale}`);
    invariant(e.down.every(Number.isFinite) && e.up.every(Number.isFinite), `${path}: non-finite weights accepted`);
  }
}

function checkSafetensors(file: ReturnType<typeof readSafetensors>): void {
  for (const [name, t] of file.tensors) {
    invariant(t.shape.every(isCount) && product(t.shape) === t.data.length, `${name}: shape [${t.shape}] but ${t.data.length} values`);
  }
  invariant(Object.values(file.metadata).every((v) => typeof v === 'string'), 'non-string metadata accepted');
}

function loraTarget(name: string, seeds: () => Parts[]): FuzzTarget {
  return {
    name,
    errorType: 'LoraError',
    seeds,
    mutate: (r, [bytes]) => [mutateSafetensors(r, bytes, true)],
    run([bytes]) {
      // Both ways the worker parses: the model's own LoRAs (unmatched keys are an error), a brought one (skipped).
      for (const unmatched of ['error', 'skip'] as const) {
        try {
          checkLoraSet(parseLora(bytes, loraTargets(), { unmatched }));
        } catch (error) {
          if (unmatched === 'skip' || !(error instanceof LoraError)) throw error;
        }
      }
    },
    expected: (e) => e instanceof LoraError,
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// ONNX
// ---------------------------------------------------------------------------------------------------------------------

/** Every model's external data file is offered under this name (as the manifest would list it). */
export const EXTERNAL_NAME = 'model.onnx.data';

const onnxSeeds = memo((): Parts[] => {
  const textEncoder = models('text_encoder.onnx');
  const external = externalizeWeights(readModel(textEncoder), EXTERNAL_NAME, 256);
  const unet = inlineExternalData(unetModel(), new Map([['unet.onnx.data', models('unet.onnx.data')]]));
  const unetExternal = externalizeWeights(unet, EXTERNAL_NAME, 4096);
  return [[textEncoder], [writeModel(external.model), external.data], [writeModel(unetExternal.model), unetExternal.data]];
});

/** The documented rule for external data locations (docs/security.md), written out independently of model-io's. */
const isPlainFileName = (p: string) => !p.startsWith('/') && ![...p].some((c) => c < ' ' || c === '\x7f' || c === '\\' || c === ':') && p.split('/').every((s) => s !== '' && s !== '..');

const FLOATS = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE]);

function mutateOnnxStructure(r: Random, bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  const inits = (graph.initializer ??= []);
  const nodes = (graph.node ??= []);
  const big = () => pick(r, INTERESTING_INTS);
  for (let k = 1 + r.int(2); k > 0; k--) {
    const t = inits.length ? pick(r, inits) : undefined;
    const op = r.int(9);
    if (!t || op === 0) {
      const node = nodes.length ? pick(r, nodes) : undefined;
      if (node) node.name = pick(r, ['', '/', '/to_q/MatMul', `/${'a/'.repeat(2000)}to_q/MatMul`, `${node.name}/x`, '/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul']);
      const inputs = node?.input ?? [];
      if (node && r.int(2) === 0) node.input = pick(r, [[], [inputs[0] ?? ''], [...inputs, ...inputs]]);
    } else if (op === 1) t.dims = pick(r, [[big()], [big(), big()], [-2, -2], [2 ** 31, 2 ** 31, 2 ** 31], [], [0]]);
    else if (op === 2) t.dataType = pick(r, [0, 1, 2, 3, 6, 7, 9, 10, 11, 13, 16, 99]);
    else if (op === 3 && t.externalData?.length) {
      const e = pick(r, t.externalData);
      e.value = pick(r, [String(big()), String(-big()), '', 'x', '1e400', '0x10', '../../etc/passwd', '/abs', 'http://example.invalid/w', 'NaN']);
    } else if (op === 4 && t.externalData?.length) {
      t.externalData = pick(r, [[], t.externalData.slice(1), [...t.externalData, ...t.externalData], t.externalData.filter((e) => e.key !== 'length')]);
    } else if (op === 5) {
      t.dataLocation = 1 - (t.dataLocation || 0);
    } else if (op === 6 && t.rawData?.length) {
      t.rawData = t.rawData.subarray(0, r.int(t.rawData.length));
    } else if (op === 7) {
      t.rawData = new Uint8Array(0);
      t.floatData = pick(r, [[], [1, 2, 3], [NaN]]);
    } else {
      inits.splice(r.int(inits.length), 1);
    }
  }
  return onnx.ModelProto.encode(model).finish();
}

const onnxTarget: FuzzTarget = {
  name: 'onnx',
  errorType: 'OnnxError',
  seeds: onnxSeeds,
  mutate(r, parts) {
    const [model, data] = parts;
    const c = r.int(10);
    if (c <= 3) return [mutateOnnxStructure(r, model), ...parts.slice(1)];
    if (c <= 6 || !data) return [mutateBytes(r, model), ...parts.slice(1)];
    if (c === 7) return [model]; // external data missing
    return [model, mutateBytes(r, data, [0, 64, data.length - 1])];
  },
  run([model, data]) {
    const m = readModel(model);
    const files = new Map(data ? [[EXTERNAL_NAME, data]] : []);
    for (const location of externalLocations(m)) invariant(isPlainFileName(location), `external data location ${JSON.stringify(location)} accepted`);
    for (const w of externalInitializers(m, 'unet/model.onnx')) {
      invariant(w.file.startsWith('unet/') && isSafeRelativePath(w.file), `external initializer ${w.name}: file ${JSON.stringify(w.file)} accepted`);
      invariant(isCount(w.offset) && isCount(w.bytes), `external initializer ${w.name}: offset ${w.offset}, ${w.bytes} bytes`);
    }
    for (const site of findLoraSites(m)) invariant(site.inFeatures >= 1 && site.outFeatures >= 1 && site.dims.every(isCount), `LoRA site ${site.modulePath}: dims [${site.dims}]`);
    for (const t of m.graph!.initializer ?? []) {
      const { dims, data } = FLOATS.has(t.dataType ?? 0) ? readWeight(t, files) : readTensor(inlineTensor(t, files));
      invariant(dims.every(isCount) && product(dims) === data.length, `tensor ${t.name}: dims [${dims}] but ${data.length} values`);
    }
  },
  expected: (e) => e instanceof OnnxError,
};

// ---------------------------------------------------------------------------------------------------------------------
// JSON files: manifest, scheduler_config.json, pairs.json
// ---------------------------------------------------------------------------------------------------------------------

function jsonTarget(name: string, errorType: string, seeds: () => string[], run: (text: string) => void, expected: (e: unknown) => boolean): FuzzTarget {
  return {
    name,
    errorType,
    seeds: memo(() => seeds().map((s) => [utf8(s)])),
    mutate: (r, [bytes]) => [r.int(6) === 0 ? mutateBytes(r, bytes) : utf8(mutateJsonText(r, text(bytes)))],
    run: ([bytes]) => run(text(bytes)),
    expected,
  };
}

const SCHEDULER_SEEDS = [
  '{"_class_name": "DPMSolverMultistepScheduler", "_diffusers_version": "0.29.2", "algorithm_type": "dpmsolver++", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "dynamic_thresholding_ratio": 0.995, "euler_at_final": false, "final_sigmas_type": "zero", "lambda_min_clipped": -Infinity, "lower_order_final": true, "num_train_timesteps": 1000, "prediction_type": "epsilon", "sample_max_value": 1.0, "solver_order": 2, "solver_type": "midpoint", "steps_offset": 1, "thresholding": false, "timestep_spacing": "linspace", "trained_betas": null, "use_karras_sigmas": false, "use_lu_lambdas": false, "variance_type": null}',
  '{"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null}',
  '{"_class_name": "EulerDiscreteScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "num_train_timesteps": 1000, "use_karras_sigmas": true, "timestep_spacing": "leading", "steps_offset": 1, "sigma_min": null, "sigma_max": null}',
  '{"_class_name": "UniPCMultistepScheduler", "solver_order": 2, "solver_type": "bh2", "num_train_timesteps": 50, "trained_betas": [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1]}',
  '{"_class_name": "LCMScheduler", "original_inference_steps": 50, "timestep_scaling": 10.0, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}',
];

/** The worker's use of a config: the scheduler the config names (or each picker choice), timesteps for a run. */
function runScheduler(config: string) {
  const c = parseSchedulerConfig(config);
  const name = schedulerNameForConfig(c) ?? 'ddim';
  for (const n of [name, 'euler-ancestral']) {
    const s = createScheduler(n, c);
    s.setTimesteps(Math.min(4, Number(c.num_train_timesteps) || 4));
    const T = s.config.num_train_timesteps as number;
    invariant(s.timesteps.length > 0 && s.timesteps.every((t) => Number.isFinite(t) && t >= 0 && t < T), `${n}: timesteps ${s.timesteps.slice(0, 5)} outside [0, ${T})`);
    invariant(Number.isFinite(s.initNoiseSigma) && s.initNoiseSigma > 0, `${n}: initNoiseSigma ${s.initNoiseSigma}`);
    const x = new Float32Array(4).fill(0.5);
    const out = s.step(s.scaleModelInput(x, s.timesteps[0]), s.timesteps[0], x, { generator: createGenerator(0) }).prevSample;
    invariant(out.every(Number.isFinite), `${n}: a step of an accepted config gives ${out}`);
  }
}

const PAIR_SIZE = 32;

const pairsSeeds = memo((): string[] => {
  const image = (v: number) => Float32Array.from({ length: 3 * PAIR_SIZE * PAIR_SIZE }, (_, i) => ((i * 37 + v) % 200) / 100 - 1);
  const pairs = [{ prompt: 'a small red circle', winner: image(1), loser: image(2) }, { prompt: 'a blue square on a yellow background', winner: image(3), loser: image(4) }];
  const rgba = encodePairs(pairs.slice(0, 1), PAIR_SIZE, PAIR_SIZE);
  const bytes = Uint8Array.from(atob(rgba.pairs[0].a.data), (c) => c.charCodeAt(0));
  const withAlpha = new Uint8Array(PAIR_SIZE * PAIR_SIZE * 4);
  for (let p = 0; p < PAIR_SIZE * PAIR_SIZE; p++) withAlpha.set([...bytes.subarray(3 * p, 3 * p + 3), 255], 4 * p);
  rgba.pairs[0].b = { encoding: 'rgba8', data: btoa(String.fromCharCode(...withAlpha)), width: PAIR_SIZE, height: PAIR_SIZE };
  return [JSON.stringify(encodePairs(pairs, PAIR_SIZE, PAIR_SIZE)), JSON.stringify(encodePairs(pairs.slice(1), PAIR_SIZE, PAIR_SIZE, 'float32-chw')), JSON.stringify(rgba)];
});

// ---------------------------------------------------------------------------------------------------------------------
// PNG: a dropped image's text chunks, then A1111 `parameters` (what the page does with a PNG dropped on it)
// ---------------------------------------------------------------------------------------------------------------------

const fixturePng = (name: string) => new Uint8Array(readFileSync(new URL(`../share/fixtures/${name}`, import.meta.url)));


const pngSeeds = memo((): Parts[] => {
  const small = encodePng(Float32Array.from({ length: 3 * 4 * 3 }, (_, i) => (i % 7) / 3.5 - 1), 4, 3);
  const ours = withPngText(small, 'parameters', 'a small red circle\nNegative prompt: blurry\nSteps: 20, Sampler: DDIM, CFG scale: 3, Seed: 42, Size: 32x32, Model: embedded-world, NPO alpha: 1, NPO beta: 1');
  // A decompression bomb: 64 MiB of text in a ~64 KB zTXt chunk (the reader must stop inflating at its limit).
  const bomb = new Uint8Array([...new TextEncoder().encode('parameters'), 0, 0, ...deflateSync(new Uint8Array(64 << 20), { level: 9 })]);
  const chunks = readChunks(small);
  const withBomb = concat([PNG_SIGNATURE, ...chunks.slice(0, 1).map((c) => small.subarray(c.offset, c.offset + 12 + c.data.length)), pngChunk('zTXt', bomb),
    ...chunks.slice(1).map((c) => small.subarray(c.offset, c.offset + 12 + c.data.length))]);
  return [[fixturePng('pil-text.png')], [fixturePng('pil-ztxt.png')], [fixturePng('pil-itxt.png')], [ours], [withBomb]];
});

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}

/** Chunk-aware mutations: a chunk's body mutated (text or bytes) with its CRC recomputed, or its length field hostile. */
function mutatePng(r: Random, png: Uint8Array): Uint8Array {
  let chunks: PngChunk[];
  try {
    chunks = readChunks(png);
  } catch {
    return mutateBytes(r, png);
  }
  if (r.int(4) === 0) return mutateBytes(r, png, chunks.flatMap((c) => [c.offset, c.offset + 4, c.offset + 8, c.offset + 8 + c.data.length]));
  const c = pick(r, chunks);
  const raw = (x: PngChunk) => png.subarray(x.offset, x.offset + 12 + x.data.length);
  let body: Uint8Array = c.data;
  if (c.type === 'tEXt' && r.int(2) === 0) {
    // The parameters text itself: a long line, hostile field values, missing pieces.
    const text = new TextDecoder('latin1').decode(c.data);
    const cut = text.indexOf('\u0000');
    const value = text.slice(cut + 1);
    const hostile = pick(r, [
      `${value}, Steps: 1e999`, `${value}, Seed: ${'9'.repeat(400)}`, value.replace(/Steps: \d+/, 'Steps: -1'), value.replace(/Steps: \d+/, 'Steps: 0.5'),
      `${'a '.repeat(100_000)}`, `${'a'.repeat(50_000)}: b, ${'c '.repeat(50_000)}`, `${value}\n${'Negative prompt: x\n'.repeat(1000)}`,
      value.replace(/, /g, ',"'), value.split('\n').at(-1)!, '', '\n\n\n', `${value}, Size: 99999999x99999999`, `${value.replace(/\n[^\n]*$/, '')}\nSteps: 5, Sampler: "${'\\'.repeat(10_000)}, CFG scale: x`,
    ]);
    body = new Uint8Array([...new TextEncoder().encode(text.slice(0, cut)), 0, ...Array.from(hostile, (ch) => ch.charCodeAt(0) & 0xff)]);
  } else if (r.int(3) === 0) {
    const out = png.slice();
    new DataView(out.buffer).setUint32(c.offset, pick(r, INTERESTING_INTS) >>> 0);
    return out;
  } else body = mutateBytes(r, c.data);
  return concat([png.subarray(0, c.offset), pngChunk(c.type, body), png.subarray(c.offset + 12 + c.data.length)].concat(r.int(20) === 0 ? [raw(c)] : []));
}

const pngTarget: FuzzTarget = {
  name: 'png',
  errorType: 'PngError | ParametersError',
  seeds: pngSeeds,
  mutate: (r, [png]) => [mutatePng(r, png)],
  async run([png]) {
    const text = await readPngText(png);
    for (const [k, v] of text) invariant(typeof k === 'string' && typeof v === 'string' && v.length <= Math.max(MAX_PNG_TEXT_BYTES, png.length), `text chunk ${k.slice(0, 40)} of ${v.length} characters`);
    const parameters = text.get('parameters');
    if (parameters !== undefined) {
      const parsed = parseParameters(parameters);
      const { steps, seed } = parsed.params;
      invariant(steps === undefined || (Number.isInteger(steps) && steps >= 1), `steps ${steps}`);
      invariant(seed === undefined || Number.isFinite(seed), `seed ${seed}`);
      invariant(parsed.eta === undefined || typeof parsed.eta === 'boolean', `eta ${parsed.eta}`);
    }
  },
  expected: (e) => e instanceof PngError || e instanceof ParametersError,
};

// ---------------------------------------------------------------------------------------------------------------------
// image pair sources: a zip of an image folder, a Pick-a-Pic parquet shard (fixtures/pair-sources)
// ---------------------------------------------------------------------------------------------------------------------

const pairSource = (name: string) => new Uint8Array(readFileSync(new URL(`../../fixtures/pair-sources/${name}`, import.meta.url)));
const SOURCE_SIZE = 8;

function checkPairSet(set: PairSet) {
  for (const pair of set.file.pairs) {
    for (const image of [pair.a, pair.b]) invariant(atob(image.data).length === 3 * SOURCE_SIZE * SOURCE_SIZE, 'a prepared image of the wrong size');
  }
}

function pairSourceTarget(name: string, seed: string, read: (bytes: Uint8Array) => Promise<PairSet>): FuzzTarget {
  return {
    name,
    errorType: 'PairsError',
    seeds: memo(() => [[pairSource(seed)]]),
    mutate: (r, [bytes]) => [mutateBytes(r, bytes)],
    run: async ([bytes]) => checkPairSet(await read(bytes)),
    expected: (e) => e instanceof PairsError,
  };
}

const sourceOptions = { size: SOURCE_SIZE, decode: decodeImageNode };
const pairZipTarget = pairSourceTarget('pair-zip', 'pairs.zip', (bytes) => pairsFromZip(bytes, 'fuzz.zip', sourceOptions));
const pairParquetTarget = pairSourceTarget('pair-parquet', 'pickapic.parquet', (bytes) =>
  pairsFromParquet({ byteLength: bytes.byteLength, slice: (start, end) => bytes.slice(start, end).buffer }, 'fuzz.parquet', sourceOptions));

// ---------------------------------------------------------------------------------------------------------------------
// Model files as a source streams them (src/model/source/): whatever the bytes, the stream either refuses them with
// a ManifestError or hands out exactly the manifest's file, chunk by chunk at their offsets.
// ---------------------------------------------------------------------------------------------------------------------

const STREAMED = 'eta.safetensors';
const streamedFile = memo(() => {
  const bytes = models(STREAMED);
  const manifest = { files: [{ path: STREAMED, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') }] } as AnyManifest;
  return { bytes, manifest };
});

const modelStreamTarget: FuzzTarget = {
  name: 'model-stream',
  errorType: 'ManifestError',
  seeds: memo(() => [[streamedFile().bytes]]),
  mutate(r, [bytes]) {
    // Mostly changed bytes; sometimes an HTML page in front, or the file unchanged (so some inputs pass).
    const c = r.int(10);
    if (c === 0) return [bytes];
    if (c === 1) return [new Uint8Array([...utf8('<!DOCTYPE html><html>'), ...bytes.subarray(0, r.int(bytes.byteLength))])];
    return [mutateBytes(r, bytes)];
  },
  async run([bytes]) {
    const { manifest, bytes: expected } = streamedFile();
    const chunkBytes = 1 + ((bytes[0] ?? 0) * 257 + bytes.byteLength) % 70_000; // chunk sizes vary with the input
    const received = new Uint8Array(expected.byteLength);
    let next = 0;
    for await (const { offset, bytes: chunk } of memorySource(manifest, new Map([[STREAMED, bytes]])).stream(STREAMED, { chunkBytes })) {
      invariant(offset === next && chunk.byteLength <= chunkBytes && offset + chunk.byteLength <= received.byteLength, `chunk at ${offset} of ${chunk.byteLength} bytes, expected one at ${next}`);
      received.set(chunk, offset);
      next += chunk.byteLength;
    }
    invariant(next === expected.byteLength && Buffer.from(received).equals(Buffer.from(expected)), 'a stream that is not the manifest\'s file was accepted');
  },
  expected: (e) => e instanceof ManifestError,
};

/** Seeds as plain Uint8Arrays: Node Buffers (readFileSync, protobufjs) share memory on .slice(), so a mutation would write into the seed. */
const plain = (target: FuzzTarget): FuzzTarget => ({ ...target, seeds: memo(() => target.seeds().map((parts) => parts.map((p) => new Uint8Array(p)))) });

export const TARGETS: FuzzTarget[] = ([
  { name: 'safetensors', errorType: 'LoraError', seeds: safetensorsSeeds, mutate: (r, [b]) => [mutateSafetensors(r, b, false)], run: ([b]) => checkSafetensors(readSafetensors(b)), expected: (e) => e instanceof LoraError },
  loraTarget('lora-diffusers', memo(() => [[models('eta.safetensors')]])),
  loraTarget('lora-peft', memo(() => [[serializeLora(etaSet(), 'peft', { metadata: { note: 'fuzz seed' } })]])),
  loraTarget('lora-kohya', memo(() => {
    const kohya = serializeLora(etaSet(), 'kohya');
    const toSgm = new Map(loraTargets().map((t) => [kohyaName(t.modulePath), kohyaName(sgmPath(t.modulePath) ?? t.modulePath)]));
    return [[kohya], [renamed(kohya, (k) => { const dot = k.indexOf('.'); return (toSgm.get(k.slice(0, dot)) ?? k.slice(0, dot)) + k.slice(dot); })]];
  })),
  onnxTarget,
  modelStreamTarget,
  jsonTarget('manifest', 'ManifestError', () => [text(models('manifest.json'))], (t) => void parseManifest(t), (e) => e instanceof ManifestError),
  jsonTarget('scheduler', 'SchedulerConfigError | Error', () => [JSON.stringify(JSON.parse(text(models('manifest.json'))).scheduler), ...SCHEDULER_SEEDS], runScheduler,
    // The schedulers' own range checks throw plain Error with a message; TypeError, RangeError … are crashes.
    (e) => e instanceof SchedulerConfigError || (e instanceof Error && e.constructor === Error)),
  pngTarget,
  jsonTarget('pairs', 'PairsError', pairsSeeds, (t) => {
    for (const p of parsePairs(t, { width: PAIR_SIZE, height: PAIR_SIZE, checkPrompt: (prompt) => void tokenize(prompt, 16) })) {
      for (const image of [p.winner, p.loser]) invariant(image.length === 3 * PAIR_SIZE * PAIR_SIZE && image.every(Number.isFinite), 'a decoded image of the wrong size or with non-finite values');
    }
  }, (e) => e instanceof PairsError),
  tokenizerSlowTarget,
  tokenizerJsonTarget,
  preparedManifestTarget,
  pairZipTarget,
  pairParquetTarget,
  ...PREPARE_TARGETS,
] satisfies FuzzTarget[]).map(plain);

export function targetByName(name: string): FuzzTarget {
  const t = TARGETS.find((x) => x.name === name);
  if (!t) throw new Error(`unknown fuzz target "${name}"; targets: ${TARGETS.map((x) => x.name).join(', ')}`);
  return t;
}
