// prepare-model's pipeline: an SD1.x ONNX export (+ optional η as a DPO UNet or LoRA, δ as a LoRA) → a prepared model
// directory (PreparedManifest, src/model/manifest.ts). Everything that can be refused is checked before the first
// weight is copied (components, UNet inputs, external-data bounds, η mapping, LoRA keys), then weights stream one
// tensor at a time into shards, and finally every file is read back, hashed and bounds-checked.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { floatToHalf, decodeHalfArray } from '../lora/float16.ts';
import { parseLora } from '../lora/formats.ts';
import { serializeLora } from '../lora/serialize.ts';
import type { LoraEntry, LoraSet } from '../lora/types.ts';
import type { LoraOffset, OnnxComponent, PreparedManifest, PreparedOffset, WeightDtype } from '../model/manifest.ts';
import { findLoraSites } from '../onnx/lora-sites.ts';
import { isExternal, readModel } from '../onnx/model-io.ts';
import { DataType, OnnxError, int, type ModelProto, type TensorProto } from '../onnx/proto.ts';
import { dataTypeName } from '../onnx/tensor.ts';
import { float16Transform, planFloat16, roundToHalf } from './float16-graph.ts';
import { countRules, mapDenseEta, toInitializerLayout, type DenseMapping } from './map-dense-eta.ts';
import {
  checkUnetInputs, COMPONENTS, exportVaeConfig, findComponents, findVaeDecoder, jsonSafeScheduler, readExportFacts, SCHEDULER_OF_CLASS, TOKENIZER_FILES, type ComponentKey,
} from './manifest.ts';
import { ALIGN, DEFAULT_SHARD_BYTES, hashFile, openAppender, type WrittenFile } from './shard-writer.ts';
import { createTensorReader, graphInputs, readGraph, rewriteComponent, tensorByteSize } from './stream-onnx.ts';
import { openSafetensors, openSafetensorsFolder, planSafetensors, type PlannedTensor } from './stream-safetensors.ts';
import { truncatedSvd } from './svd.ts';
import { buildTokenizerFiles } from '../text/index.ts';
import { exportKind, readSdxlFacts, type SdxlFacts } from './sdxl.ts';
import { npoFootprint } from './npo-footprint.ts';

export const PREPARE_VERSION = 1;

/** A LoRA file and the scale its ΔW is applied with (prepare-model's `--eta-lora path[:scale]`, repeatable). */
export interface LoraArg { path: string; scale: number }

export interface PrepareOptions {
  onnx: string;
  out: string;
  etaUnet?: string;
  /** η / δ as LoRAs: one path, or several stacked on that branch, each ΔW times its scale (Σ scaleᵢ·ΔWᵢ). */
  etaLora?: string | readonly LoraArg[];
  deltaLora?: string | readonly LoraArg[];
  /** With etaUnet: extract a rank-r LoRA per Linear / 1×1 Conv instead of the dense η. */
  etaRank?: number;
  dtype?: WeightDtype;
  /**
   * Another VAE decoder export to use instead of the export's own (e.g. madebyollin/sdxl-vae-fp16-fix, whose config
   * says force_upcast false, so --dtype float16 may convert it). Its config.json gives scaling_factor and force_upcast.
   */
  vae?: string;
  maxShardBytes?: number;
  name?: string;
  /** Progress and report lines (stderr in the CLI). */
  log?: (line: string) => void;
}

export interface ComponentSummary {
  component: string;
  tensors: number;
  bytes: number;
  shards: number;
}

export interface PrepareResult {
  manifest: PreparedManifest;
  summary: ComponentSummary[];
  /** Dense η: parameters mapped by each rule. */
  etaRules?: Record<string, number>;
  /** Rank-r η: per-layer relative Frobenius error, and what a LoRA cannot express. */
  etaRank?: { layers: { module: string; relError: number }[]; dropped: { tensors: number; normShare: number } };
  notes: string[];
}

const KEY_DIR: Record<ComponentKey, string> = Object.fromEntries(COMPONENTS.map((c) => [c.key, c.dir])) as Record<ComponentKey, string>;

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

/** Progress lines at most once a second (and at 100 %), so a 3.4 GB copy prints a few dozen lines, not thousands. */
function progress(label: string, log: (line: string) => void) {
  let last = 0;
  return (done: number, total: number) => {
    const now = Date.now();
    if (done < total && now - last < 1000) return;
    last = now;
    log(`${label}: ${formatBytes(done)} / ${formatBytes(total)} (${total ? ((100 * done) / total).toFixed(1) : '100.0'}%)`);
  };
}

/**
 * Where to write: a fresh sibling folder that replaces --out only when everything is written and verified, so a failed
 * run leaves --out as it was. --out must be absent, empty, or a model prepared before (its manifest says format 2);
 * any other folder is refused rather than overwritten.
 */
function startOutput(out: string): { work: string; commit(): void; abort(): void } {
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new Error(`--out ${out} exists and is not a folder`);
    if (readdirSync(out).length > 0 && !isPreparedFolder(out)) {
      throw new Error(`--out ${out} is not empty and holds no prepared model; choose a new folder (nothing was written)`);
    }
  }
  const work = `${out.replace(/[\\/]+$/, '')}.partial-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  return {
    work,
    commit() {
      const old = `${work.replace(/\.partial-/, '.replaced-')}`;
      const replacing = existsSync(out);
      if (replacing) renameSync(out, old);
      renameSync(work, out);
      if (replacing) rmSync(old, { recursive: true, force: true });
    },
    abort: () => rmSync(work, { recursive: true, force: true }),
  };
}

function isPreparedFolder(dir: string): boolean {
  try {
    return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))?.format === 2;
  } catch {
    return false;
  }
}

/** The export's element type for a component: float16 when most initializer bytes are float16. */
function graphDtype(model: ModelProto): WeightDtype {
  let f16 = 0, f32 = 0;
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataType === DataType.FLOAT16) f16 += tensorByteSize(t);
    else if (t.dataType === DataType.FLOAT) f32 += tensorByteSize(t);
  }
  return f16 > f32 ? 'float16' : 'float32';
}

/** A float initializer's bytes as float32 values (float16 decoded). */
function floatValues(tensor: TensorProto, bytes: Uint8Array): Float32Array {
  const copy = new Uint8Array(bytes).buffer; // a copy: inline raw data may be a Buffer view of the whole graph
  if (tensor.dataType === DataType.FLOAT) return new Float32Array(copy);
  if (tensor.dataType === DataType.FLOAT16) return decodeHalfArray(new Uint16Array(copy));
  throw new OnnxError(`initializer ${tensor.name} is ${dataTypeName(tensor.dataType ?? 0)}; a weight offset needs float32 or float16`);
}

/** θ as the prepared model holds it: the export's values, rounded to float16 when --dtype float16 converted them. */
function baseValues(m: DenseMapping, tensor: TensorProto, bytes: Uint8Array): Float32Array {
  const values = floatValues(tensor, bytes);
  return m.dataType === DataType.FLOAT16 && tensor.dataType === DataType.FLOAT ? roundToHalf(values) : values;
}

function encodeAs(values: Float32Array, dataType: number, name: string): Uint8Array {
  if (dataType === DataType.FLOAT) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const half = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    half[i] = floatToHalf(values[i]);
    if ((half[i] & 0x7c00) === 0x7c00 && Number.isFinite(values[i])) throw new Error(`${name}: value ${values[i]} overflows float16`);
  }
  return new Uint8Array(half.buffer);
}

const loraArgs = (given: PrepareOptions['etaLora']): readonly LoraArg[] => (given === undefined ? [] : typeof given === 'string' ? [{ path: given, scale: 1 }] : given);
/** Provenance: the path as before for one LoRA at scale 1, else every path with its scale. */
const sourceOf = (loras: readonly LoraArg[]) => (loras.length === 1 && loras[0].scale === 1 ? loras[0].path : loras.map((l) => ({ ...l })));

/**
 * The VAE components to keep float32 under --dtype float16: those whose config says `force_upcast` (SDXL's VAE
 * overflows in float16; diffusers' pipelines then run it in float32: StableDiffusionXLPipeline upcasts the VAE to
 * decode, img2img to encode). An fp16-fix VAE (--vae) says force_upcast false and is converted. A float16 export with
 * force_upcast cannot be upcast here (its weights are already rounded): that is said in a note.
 */
function upcastVae(
  graphs: Map<ComponentKey, ModelProto>, decoderConfig: Record<string, unknown> | undefined, encoderConfig: Record<string, unknown> | undefined,
  toHalf: boolean, notes: string[],
): Set<ComponentKey> {
  const keep = new Set<ComponentKey>();
  const configs: [ComponentKey, Record<string, unknown> | undefined][] = [['vaeDecoder', decoderConfig], ['vaeEncoder', encoderConfig]];
  for (const [key, config] of configs) {
    const graph = graphs.get(key);
    if (!graph || config?.force_upcast !== true) continue;
    const dir = KEY_DIR[key];
    if (toHalf) {
      keep.add(key);
      notes.push(`${dir}: kept float32 under --dtype float16, as its config says force_upcast (diffusers runs this VAE in float32; an fp16-fix VAE given with --vae would be converted)`);
    } else if (graphDtype(graph) === 'float16') {
      notes.push(`${dir}: the export is float16 but its config says force_upcast (diffusers would run it in float32: this VAE can overflow to NaN in float16); give --vae with a float32 export of it or an fp16-fix VAE (force_upcast false)`);
    }
  }
  return keep;
}

/** Reads a LoRA and maps it onto the UNet's Linear / 1×1 Conv sites; unmatched keys are an error (parseLora's). */
function validateLora({ path, scale }: LoraArg, unet: ModelProto, role: string): LoraSet {
  if (!Number.isFinite(scale)) throw new Error(`--${role}-lora ${path}: scale ${scale} is not a finite number`);
  if (!existsSync(path)) throw new Error(`--${role}-lora ${path} does not exist`);
  try {
    return parseLora(readFileSync(path), findLoraSites(unet, 'all'));
  } catch (error) {
    (error as Error).message = `--${role}-lora ${path}: ${(error as Error).message}`;
    throw error;
  }
}

const maxRank = (set: LoraSet) => Math.max(0, ...[...set.entries.values()].map((e) => e.rank));

export function prepareModel(options: PrepareOptions): PrepareResult {
  const log = options.log ?? (() => {});
  const notes: string[] = [];
  const maxShard = options.maxShardBytes ?? DEFAULT_SHARD_BYTES;
  const etaLoras = loraArgs(options.etaLora), deltaLoras = loraArgs(options.deltaLora);
  if (options.etaUnet && etaLoras.length) throw new Error('give η once: --eta-unet or --eta-lora, not both');
  if (options.etaRank !== undefined && !options.etaUnet) throw new Error('--eta-rank needs --eta-unet (it approximates the dense η of a fine-tuned UNet)');
  if (options.etaRank !== undefined && !(Number.isInteger(options.etaRank) && options.etaRank > 0)) throw new Error(`--eta-rank ${options.etaRank} must be a positive integer`);

  // 1. Everything that can be refused, before any weight is copied.
  const paths = findComponents(options.onnx);
  const replacementVae = options.vae ? findVaeDecoder(options.vae) : undefined;
  if (replacementVae) paths.vaeDecoder = replacementVae.model;
  const graphs = new Map<ComponentKey, ModelProto>();
  for (const [key, path] of Object.entries(paths) as [ComponentKey, string][]) {
    const model = readGraph(path);
    const reader = createTensorReader(dirname(path));
    try {
      for (const t of model.graph?.initializer ?? []) if (isExternal(t)) reader.span(t);
    } finally {
      reader.close();
    }
    graphs.set(key, model);
  }
  const unet = graphs.get('unet')!;
  const kind = exportKind(graphs.has('textEncoder2'), unet);
  checkUnetInputs(unet, paths.unet!, kind);
  const exportDtype = graphDtype(unet);
  if (options.dtype === 'float32' && exportDtype === 'float16') {
    throw new Error('--dtype float32: the export is float16; converting float16 weights up to float32 is not supported (prepare without --dtype)');
  }
  /** --dtype float16 on a float32 export: graphs converted (float16-graph.ts), weights cast while streaming. */
  const toHalf = options.dtype === 'float16' && exportDtype === 'float32';
  const textOut = (graphs.get('textEncoder')!.graph?.output ?? [])[0];
  const textDim = int(textOut?.type?.tensorType?.shape?.dim?.at(-1)?.dimValue);
  const facts = readExportFacts(options.onnx, unet, graphs.get('vaeDecoder')!, textDim || undefined, replacementVae?.config);
  notes.push(...facts.notes);
  // Only diffusers' SDXL pipelines honour force_upcast (StableDiffusionPipeline never reads it, and AutoencoderKL
  // defaults it to true, so SD1.5 configs re-saved by diffusers say true too).
  const keepFloat32 = kind !== 'sdxl' ? new Set<ComponentKey>() : upcastVae(graphs, replacementVae ? replacementVae.config : exportVaeConfig(options.onnx, 'vae_decoder'), exportVaeConfig(options.onnx, 'vae_encoder'), toHalf, notes);
  const { notes: sdxlNotes = [], ...sdxl } = kind === 'sdxl' ? readSdxlFacts(unet, graphs.get('textEncoder')!, graphs.get('textEncoder2'), facts.context.dim, facts.modelIndex) : {};
  notes.push(...sdxlNotes);

  const etaSets = etaLoras.map((l) => validateLora(l, unet, 'eta'));
  const deltaSets = deltaLoras.map((l) => validateLora(l, unet, 'delta'));
  const dpo = options.etaUnet ? openSafetensorsFolder(options.etaUnet) : undefined;
  let mappings: DenseMapping[] | undefined;
  try {
    if (dpo) {
      mappings = mapDenseEta(unet, new Map([...dpo.entries].map(([k, e]) => [k, e.shape])));
      const rules = countRules(mappings);
      log(`η: ${mappings.length} UNet parameters mapped (${rules.name} by name, ${rules.linear} Linear/1×1 Conv through node names, ${rules.norm} norm scale/bias through node names)`);
    }
    const output = startOutput(options.out);
    const out = output.work;
    try {
      // 2. Components: weights streamed into shards.
      const summary: ComponentSummary[] = [];
      /** SHA-256 of each weight file as computed while writing; checked against a fresh read at the end. */
      const written = new Map<string, string>();
      const components: Partial<Record<ComponentKey, OnnxComponent>> = {};
      for (const [key, path] of Object.entries(paths) as [ComponentKey, string][]) {
        const dir = KEY_DIR[key];
        const plan = toHalf && !keepFloat32.has(key) ? planFloat16(graphs.get(key)!) : undefined;
        const done = rewriteComponent(path, join(out, dir), { maxShardBytes: maxShard, onProgress: progress(dir, log), transform: plan && float16Transform(plan.convert) }, 'model.onnx', plan?.model ?? graphs.get(key));
        if (key === 'unet' && mappings) {
          // η is written in the prepared initializer's dtype (float16 after --dtype float16).
          const prepared = new Map((done.model.graph?.initializer ?? []).map((t) => [t.name ?? '', t.dataType ?? 0]));
          mappings = mappings.map((m) => ({ ...m, dataType: prepared.get(m.initializer) ?? m.dataType }));
        }
        if (key !== 'unet') graphs.delete(key); // lets inline weights (a text encoder's ~500 MB) be collected
        components[key] = {
          file: `${dir}/model.onnx`,
          externalData: done.shards.map((s) => `${dir}/${s.file}`),
          inputs: graphInputs(done.model),
          outputs: (done.model.graph?.output ?? []).map((o) => o.name ?? ''),
          dtype: graphDtype(done.model),
          largestTensorBytes: done.largestTensorBytes,
        };
        summary.push({ component: dir, tensors: done.tensors, bytes: done.bytes, shards: done.shards.length });
        for (const f of [...done.shards, done.graph]) written.set(`${dir}/${f.file}`, f.sha256);
      }

      // 3. η and δ.
      const offsets: PreparedManifest['offsets'] = {};
      let etaRules: PrepareResult['etaRules'];
      let etaRank: PrepareResult['etaRank'];
      if (dpo && mappings) {
        const base = createTensorReader(dirname(paths.unet!));
        const inits = new Map((unet.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
        try {
          if (options.etaRank !== undefined) {
            const r = extractRankEta(mappings, dpo.read, base.read, inits, unet, options.etaRank, join(out, 'eta.safetensors'), log);
            etaRank = r.report;
            offsets.eta = { kind: 'lora', file: 'eta.safetensors', rank: options.etaRank, description: `rank-${options.etaRank} SVD of θ_dpo − θ from ${options.etaUnet}` };
            summary.push({ component: 'eta (rank)', tensors: r.tensors, bytes: r.bytes, shards: 1 });
          } else {
            const files = writeDenseEta(mappings, dpo.read, base.read, inits, out, maxShard, progress('eta', log));
            for (const f of files) written.set(f.file, f.sha256);
            offsets.eta = { kind: 'dense', files: files.map((f) => f.file), tensors: mappings.length, description: `θ_dpo − θ from ${options.etaUnet}` };
            summary.push({ component: 'eta (dense)', tensors: mappings.length, bytes: files.reduce((a, f) => a + f.bytes, 0), shards: files.length });
          }
          etaRules = countRules(mappings);
        } finally {
          base.close();
        }
      }
      if (etaLoras.length) offsets.eta = copyLoras(etaLoras, etaSets, out, 'eta', summary);
      if (deltaLoras.length) offsets.delta = copyLoras(deltaLoras, deltaSets, out, 'delta', summary);

      // What the offsets will cost when running (checked against the adapter's limits before loading: src/model/fit.ts).
      const rankEta = etaRank ? [parseLora(readFileSync(join(out, 'eta.safetensors')), findLoraSites(unet, 'all'))] : [];
      const footprint = npoFootprint(unet, { eta: [...etaSets, ...rankEta], delta: deltaSets, dense: etaRank ? undefined : mappings }, components.unet!.dtype === 'float16' ? 2 : 4);

      // 4. Tokenizer and scheduler, copied as shipped.
      const tokenizerDir = copyTokenizer(options.onnx, out, notes);
      const tokenizer2Dir = kind === 'sdxl' ? copyTokenizer(options.onnx, out, notes, 'tokenizer_2') : undefined;
      mkdirSync(join(out, 'scheduler'), { recursive: true });
      writeFileSync(join(out, 'scheduler', 'scheduler_config.json'), facts.schedulerText);

      // 5. Verify and describe.
      for (const [key, c] of Object.entries(components) as [ComponentKey, OnnxComponent][]) verifyComponent(out, c, key);
      const files = listFiles(out);
      for (const f of files) {
        const sha = written.get(f.path);
        if (sha !== undefined && sha !== f.sha256) throw new Error(`verify: ${f.path} reads back with SHA-256 ${f.sha256}, but ${sha} was written`);
      }
      const unverified = [...written.keys()].filter((p) => !files.some((f) => f.path === p));
      if (unverified.length) throw new Error(`verify: written files missing from ${out}: ${unverified.join(', ')}`);
      const className = String(facts.scheduler._class_name ?? '');
      const scheduler = jsonSafeScheduler(withoutResavedSpacing(facts.scheduler, notes));
      if (scheduler.dropped.length) notes.push(`scheduler: left out of manifest.scheduler (not JSON; diffusers' defaults): ${scheduler.dropped.join(', ')}`);
      const manifest: PreparedManifest = {
        format: 2,
        kind,
        name: options.name ?? String(facts.modelIndex?._name_or_path ?? (kind === 'sdxl' ? 'stable-diffusion-xl' : 'stable-diffusion-1.5')),
        description: `Stable Diffusion ${kind === 'sdxl' ? 'XL' : '(SD1.x)'} prepared from ${options.onnx}`,
        status: 'prepared',
        unet: components.unet!,
        textEncoder: components.textEncoder!,
        vaeDecoder: components.vaeDecoder!,
        ...(components.vaeEncoder ? { vaeEncoder: components.vaeEncoder } : {}),
        tokenizer: { dir: tokenizerDir, modelMaxLength: facts.modelMaxLength },
        latent: facts.latent,
        context: facts.context,
        scheduler: scheduler.config,
        defaults: {
          // The official NPO sampling (DESIGN §2): DPMSolverMultistep, 25 steps, g = 7.5 (ω = 6.5); SDXL: g = 5 (ω = 4),
          // diffusers' StableDiffusionXLPipeline default.
          prompt: '', negativePrompt: '', steps: 25, omega: kind === 'sdxl' ? 4 : 6.5, alpha: 1, beta: 1, seed: 42,
          scheduler: 'dpm++2m',
          width: facts.sampleSize * facts.latent.vaeScaleFactor,
          height: facts.sampleSize * facts.latent.vaeScaleFactor,
        },
        offsets,
        ...(footprint ? { npoFootprint: footprint } : {}),
        source: {
          tool: `npo-playground prepare-model v${PREPARE_VERSION}`,
          date: new Date().toISOString(),
          onnx: options.onnx,
          ...(options.etaUnet ? { etaUnet: options.etaUnet } : {}),
          ...(options.etaRank ? { etaRank: options.etaRank } : {}),
          ...(etaLoras.length ? { etaLora: sourceOf(etaLoras) } : {}),
          ...(deltaLoras.length ? { deltaLora: sourceOf(deltaLoras) } : {}),
          ...(options.vae ? { vae: options.vae } : {}),
          exportScheduler: className ? (SCHEDULER_OF_CLASS[className] ?? className) : undefined,
          exportDtype,
          layout: exportLayout(graphs.get('unet')!),
        },
        files,
        ...(kind === 'sdxl' ? {
          sdxl: { ...(sdxl as SdxlFacts), textEncoder2: components.textEncoder2!, tokenizer2: { dir: tokenizer2Dir!, modelMaxLength: facts.modelMaxLength } },
        } : {}),
      };
      writeFileSync(join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      output.commit();
      return { manifest, summary, etaRules, etaRank, notes };
    } catch (error) {
      output.abort();
      throw error;
    }
  } finally {
    dpo?.close();
  }
}

/** 'diffusers' (weights.pb), 'optimum' (model.onnx_data), or whatever one external file the UNet names. */
function exportLayout(unet: ModelProto): string {
  const locations = new Set((unet.graph?.initializer ?? []).filter(isExternal).map(externalLocation));
  if (locations.has('weights.pb')) return 'diffusers';
  if (locations.has('model.onnx_data')) return 'optimum';
  return locations.size ? [...locations].join(', ') : 'inline';
}

const externalLocation = (t: TensorProto) => (t.externalData ?? []).find((e) => e.key === 'location')?.value ?? '';

/** Dense η in safetensors shards: for every mapping, η = θ_dpo − θ in the initializer's layout and dtype. */
function writeDenseEta(
  mappings: DenseMapping[], readDpo: (k: string) => Float32Array, readBase: (t: TensorProto) => Uint8Array | null,
  inits: Map<string, TensorProto>, out: string, maxShard: number, onProgress: (done: number, total: number) => void,
): WrittenFile[] {
  const planned = mappings.map((m) => ({ m, t: { name: m.initializer, dtype: m.dataType === DataType.FLOAT16 ? 'F16' : 'F32', shape: m.dims } as PlannedTensor }));
  const bytesOf = (p: PlannedTensor) => p.shape.reduce((a, b) => a * b, 1) * (p.dtype === 'F16' ? 2 : 4);
  const groups: (typeof planned)[] = [];
  let size = 0;
  for (const p of planned) {
    const b = bytesOf(p.t);
    if (!groups.length || (size + b > maxShard && size > 0)) {
      groups.push([]);
      size = 0;
    }
    groups.at(-1)!.push(p);
    size += b;
  }
  const total = planned.reduce((a, p) => a + bytesOf(p.t), 0);
  let done = 0;
  const files: WrittenFile[] = [];
  groups.forEach((group, i) => {
    const name = groups.length === 1 ? 'eta.safetensors' : `eta-${String(i).padStart(2, '0')}.safetensors`;
    const file = openAppender(out, name);
    file.append(planSafetensors(group.map((p) => p.t), { format: 'pt', content: 'dense eta = theta_dpo - theta, per ONNX initializer' }).header);
    for (const { m } of group) {
      const tensor = inits.get(m.initializer)!;
      const theta = baseValues(m, tensor, readBase(tensor)!);
      const dpoValues = toInitializerLayout(m, readDpo(m.key));
      const eta = new Float32Array(theta.length);
      for (let j = 0; j < eta.length; j++) eta[j] = dpoValues[j] - theta[j];
      const bytes = encodeAs(eta, m.dataType, m.initializer);
      file.append(bytes);
      done += bytes.length;
      onProgress(done, total);
    }
    files.push(file.finish());
  });
  // Read back through the validating reader: the header must describe exactly what was written.
  for (const f of files) openSafetensors(join(out, f.file)).close();
  return files;
}

/** Rank-r η: truncated SVD per Linear / 1×1 Conv weight; everything else is dropped and its norm share reported. */
function extractRankEta(
  mappings: DenseMapping[], readDpo: (k: string) => Float32Array, readBase: (t: TensorProto) => Uint8Array | null,
  inits: Map<string, TensorProto>, unet: ModelProto, rank: number, path: string, log: (line: string) => void,
) {
  const sites = new Map(findLoraSites(unet, 'all').map((s) => [s.weightName, s]));
  const entries = new Map<string, LoraEntry>();
  const layers: { module: string; relError: number }[] = [];
  let keptSq = 0, droppedSq = 0, droppedTensors = 0;
  for (const m of mappings) {
    const tensor = inits.get(m.initializer)!;
    const theta = baseValues(m, tensor, readBase(tensor)!);
    const dpoValues = toInitializerLayout(m, readDpo(m.key));
    const site = sites.get(m.initializer);
    let sq = 0;
    const eta = new Float64Array(theta.length);
    for (let j = 0; j < eta.length; j++) {
      eta[j] = dpoValues[j] - theta[j];
      sq += eta[j] * eta[j];
    }
    if (!site) {
      droppedSq += sq;
      droppedTensors++;
      continue;
    }
    keptSq += sq;
    // ΔW in torch layout [out, in]: MatMul initializers hold it transposed.
    const outF = site.outFeatures, inF = site.inFeatures;
    const w = site.layout === 'out-in' ? eta : transpose(eta, inF, outF);
    const svd = truncatedSvd(w, outF, inF, rank);
    entries.set(site.modulePath, {
      down: svd.down, up: svd.up, rank: svd.rank, scale: 1, inFeatures: inF, outFeatures: outF, ...(site.opType === 'Conv' ? { conv1x1: true } : {}),
    });
    layers.push({ module: site.modulePath, relError: svd.relError });
    log(`η rank ${rank}: ${site.modulePath} [${outF}×${inF}] relative Frobenius error ${svd.relError.toExponential(3)}`);
  }
  const normShare = keptSq + droppedSq > 0 ? Math.sqrt(droppedSq / (keptSq + droppedSq)) : 0;
  log(`η rank ${rank}: ${entries.size} Linear/1×1 Conv layers as LoRA; dropped ${droppedTensors} tensors a LoRA cannot express (k×k convs, norms, biases): ${(100 * normShare).toFixed(2)}% of ‖η‖_F`);
  const bytes = serializeLora({ entries }, 'diffusers', { metadata: { content: `rank-${rank} SVD of theta_dpo - theta (prepare-model)` } });
  writeFileSync(path, bytes);
  return { report: { layers, dropped: { tensors: droppedTensors, normShare } }, tensors: entries.size * 2, bytes: bytes.length };
}

function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(a.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

/**
 * Copies η's or δ's LoRA files: one at scale 1 as `<role>.safetensors` (as before stacks existed); one with a scale
 * keeps it in the entry; several become a stack `<role>-lora-<i>.safetensors`, applied as Σ scaleᵢ·ΔWᵢ.
 */
function copyLoras(loras: readonly LoraArg[], sets: LoraSet[], out: string, role: 'eta' | 'delta', summary: ComponentSummary[]): PreparedOffset {
  const parts = loras.map(({ path, scale }, i): LoraOffset => {
    const set = sets[i];
    const file = loras.length === 1 ? `${role}.safetensors` : `${role}-lora-${i}.safetensors`;
    copyFileSync(path, join(out, file));
    summary.push({ component: `${role} (LoRA${loras.length > 1 ? ` ${i + 1}` : ''})`, tensors: set.entries.size * 2, bytes: statSync(path).size, shards: 1 });
    const skipped = set.skipped.length ? `; ${set.skipped.length} keys skipped (${set.skipped[0].reason})` : '';
    return { kind: 'lora', file, rank: maxRank(set), description: `${set.format} LoRA on ${set.entries.size} layers from ${path}${skipped}`, ...(scale !== 1 ? { scale } : {}) };
  });
  if (parts.length === 1) return parts[0];
  return { kind: 'stack', parts, description: `${parts.length} LoRAs stacked: ${loras.map((l) => `${l.scale} × ${l.path}`).join(' + ')}` };
}

/**
 * Copies the tokenizer files, and writes what the pipelines load offline: the fast `tokenizer.json` and a normalised
 * `tokenizer_config.json` (src/text buildTokenizerFiles), converted from the slow files SD repositories ship. An
 * export that already has a tokenizer.json keeps it.
 */
function copyTokenizer(exportDir: string, out: string, notes: string[], dir = 'tokenizer'): string {
  const src = join(exportDir, dir);
  const present = TOKENIZER_FILES.filter((f) => existsSync(join(src, f)));
  const slow = present.includes('vocab.json') && present.includes('merges.txt');
  if (!slow && !present.includes('tokenizer.json')) {
    throw new Error(`the export's ${dir} folder ${src} lacks vocab.json + merges.txt (or tokenizer.json)`);
  }
  mkdirSync(join(out, dir), { recursive: true });
  for (const f of present) copyFileSync(join(src, f), join(out, dir, f));
  if (!present.includes('tokenizer.json')) {
    const read = (f: string) => (present.includes(f) ? readFileSync(join(src, f), 'utf8') : undefined);
    const { tokenizerJson, tokenizerConfig } = buildTokenizerFiles({ vocab: read('vocab.json')!, merges: read('merges.txt')!, tokenizerConfig: read('tokenizer_config.json'), specialTokensMap: read('special_tokens_map.json') });
    writeFileSync(join(out, dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
    writeFileSync(join(out, dir, 'tokenizer_config.json'), `${JSON.stringify(tokenizerConfig, null, 2)}\n`);
    notes.push(`${dir}: tokenizer.json written from vocab.json + merges.txt (${Object.keys(tokenizerJson.model.vocab).length} tokens)`);
  }
  return dir;
}

/**
 * diffusers writes every init argument when it re-saves a scheduler config (save_pretrained drops
 * `_use_default_values`), so an export of SD1.5 names PNDM's default `timestep_spacing: "leading"`, which SD1.5's own
 * scheduler_config.json does not have. The official NPO sampler, `DPMSolverMultistepScheduler.from_pretrained(SD1.5)`,
 * then uses its own default "linspace"; keeping the re-saved key would give DPM++ and Euler "leading" and other
 * images. A PNDM config's "leading" is therefore dropped (PNDM and DDIM default to "leading" anyway).
 */
function withoutResavedSpacing(config: Record<string, unknown>, notes: string[]): Record<string, unknown> {
  if (config._class_name !== 'PNDMScheduler' || config.timestep_spacing !== 'leading') return config;
  notes.push('scheduler: timestep_spacing "leading" (PNDM\'s default, re-saved by diffusers) left out, so DPM++ and Euler use theirs ("linspace") as with SD1.5\'s own config');
  const { timestep_spacing: _resaved, ...rest } = config;
  return rest;
}

/**
 * Re-reads a written graph and checks each external tensor: its location is one of the component's shards, its
 * offset is 64-byte aligned, and offset + length lies inside the shard.
 */
export function verifyComponent(out: string, c: OnnxComponent, label: string): void {
  const dir = dirname(c.file);
  const shards = new Map(c.externalData.map((p) => [relative(dir, p).split(sep).join('/'), statSync(join(out, p)).size]));
  const model = readModel(readFileSync(join(out, c.file)));
  for (const t of model.graph?.initializer ?? []) {
    if (!isExternal(t)) continue;
    const e = new Map((t.externalData ?? []).map((x) => [x.key ?? '', x.value ?? '']));
    const location = e.get('location') ?? '';
    const offset = Number(e.get('offset') ?? 0), length = Number(e.get('length') ?? -1);
    const size = shards.get(location);
    if (size === undefined) throw new Error(`verify ${label}: tensor ${t.name} points to ${location}, not one of its shards`);
    if (offset % ALIGN !== 0) throw new Error(`verify ${label}: tensor ${t.name} at offset ${offset} is not ${ALIGN}-byte aligned`);
    if (length !== tensorByteSize(t) || offset + length > size) throw new Error(`verify ${label}: tensor ${t.name} bytes ${offset}..${offset + length} do not fit ${location} (${size} bytes)`);
  }
}

/** Every file of the prepared folder (but the manifest) with its size and SHA-256, read back from disk. */
function listFiles(out: string): PreparedManifest['files'] {
  const files: PreparedManifest['files'] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (path !== join(out, 'manifest.json')) {
        const { bytes, sha256 } = hashFile(path);
        files.push({ path: relative(out, path).split(sep).join('/'), bytes, sha256 });
      }
    }
  };
  walk(out);
  return files;
}
