// prepare-model's pipeline: an SD1.x / SDXL ONNX export (+ optional η as a DPO UNet or LoRA, δ as a LoRA) → a prepared
// model directory (PreparedManifest, src/model/manifest.ts). One implementation for the CLI (src/cli/prepare-model.ts,
// folders on disk: node-io.ts) and the page's prepare worker (chosen files or the Hugging Face Hub into the browser's
// origin-private file system): it reads and writes only through io.ts. Everything that can be refused is checked
// before the first weight is copied (components, UNet inputs, external-data bounds, η mapping, LoRA keys), then
// weights stream one tensor at a time into shards, and finally every file is read back, hashed and bounds-checked
// before the manifest is written and the output committed. Network inputs are read front to back (the DPO UNet in
// the order its tensors lie in its file; θ for a dense η comes back from the prepared UNet), so a download streams
// once and is hash-checked as it passes (hub-folder.ts).
import { floatToHalf, decodeHalfArray } from '../lora/float16.ts';
import { parseLora } from '../lora/formats.ts';
import { serializeLora } from '../lora/serialize.ts';
import type { LoraEntry, LoraSet } from '../lora/types.ts';
import type { LoraOffset, OnnxComponent, PreparedManifest, PreparedOffset, WeightDtype } from '../model/manifest.ts';
import { findLoraSites } from '../onnx/lora-sites.ts';
import { isExternal, readModel } from '../onnx/model-io.ts';
import { DataType, OnnxError, int, type ModelProto, type TensorProto } from '../onnx/proto.ts';
import { dataTypeName } from '../onnx/tensor.ts';
import { float16Transform, planFloat16 } from './float16-graph.ts';
import { countRules, mapDenseEta, toInitializerLayout, type DenseMapping } from './map-dense-eta.ts';
import {
  checkUnetInputs, COMPONENTS, exportVaeConfig, findComponents, findVaeDecoder, jsonSafeScheduler, readExportFacts, SCHEDULER_OF_CLASS, TOKENIZER_FILES,
  type ComponentKey, type GraphFile,
} from './manifest.ts';
import { ALIGN, DEFAULT_SHARD_BYTES, hashOutput, openAppender, writeWhole, type WrittenFile } from './shard-writer.ts';
import { createTensorReader, graphInputs, inlineBytes, movingBytes, readGraph, rewriteComponent, tensorByteSize } from './stream-onnx.ts';
import { openSafetensorsFolder, planSafetensors, type PlannedTensor, type TensorSet } from './stream-safetensors.ts';
import { truncatedSvd } from './svd.ts';
import { buildTokenizerFiles } from '../text/index.ts';
import { exportKind, readSdxlFacts, type SdxlFacts } from './sdxl.ts';
import { npoFootprint } from './npo-footprint.ts';
import { exists, joinPath, parentPath, readWhole, walkOrder, type InputFolder, type LoraInput, type OutputFolder, type OutputTarget } from './io.ts';
import { formatBytes } from '../util/format-bytes.ts';

export const PREPARE_VERSION = 1;

/** A LoRA path and the scale its ΔW is applied with (prepare-model's `--eta-lora path[:scale]`, repeatable). */
export interface LoraArg { path: string; scale: number }

export interface PrepareOptions {
  onnx: InputFolder;
  out: OutputTarget;
  etaUnet?: InputFolder;
  /** η / δ as LoRAs: several stack on that branch, each ΔW times its scale (Σ scaleᵢ·ΔWᵢ). */
  etaLora?: readonly LoraInput[];
  deltaLora?: readonly LoraInput[];
  /** With etaUnet: extract a rank-r LoRA per Linear / 1×1 Conv instead of the dense η. */
  etaRank?: number;
  dtype?: WeightDtype;
  /**
   * Another VAE decoder export to use instead of the export's own (e.g. madebyollin/sdxl-vae-fp16-fix, whose config
   * says force_upcast false, so --dtype float16 may convert it). Its config.json gives scaling_factor and force_upcast.
   */
  vae?: InputFolder;
  maxShardBytes?: number;
  name?: string;
  /** Progress and report lines (stderr in the CLI). */
  log?: (line: string) => void;
  /** Bytes done of the whole preparation (copy, η, read-back), for a progress bar and the time left. */
  onProgress?: (progress: PrepareProgress) => void;
  /** A cancel stops between tensors; the output is dropped (an earlier model stays as it was). */
  signal?: AbortSignal;
  /**
   * Called before anything is written with the bytes the prepared model's files will take (a dense η counted whole,
   * a rank-r η as nothing): the page checks its storage quota here, so a preparation that cannot fit is refused at
   * once instead of failing at 90 %.
   */
  beforeWriting?: (bytes: number) => Promise<void>;
}

export interface PrepareProgress {
  /** What is being done: `unet`, `eta`, `verify`, … */
  stage: string;
  /** Bytes processed and the total expected (the read-back's share is exact once it starts). */
  done: number;
  total: number;
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

/** Overall byte progress: each stage adds what it did; the total grows to the read-back's exact size when it starts. */
function overallProgress(onProgress: PrepareOptions['onProgress'], total: number) {
  let done = 0;
  return {
    add(stage: string, bytes: number) {
      done += bytes;
      onProgress?.({ stage, done, total: Math.max(total, done) });
    },
    /** From now on the work left is exactly `bytes`. */
    expect(stage: string, bytes: number) {
      total = done + bytes;
      onProgress?.({ stage, done, total });
    },
  };
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

function encodeAs(values: Float32Array, dataType: number, name: string): Uint8Array {
  if (dataType === DataType.FLOAT) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const half = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    half[i] = floatToHalf(values[i]);
    if ((half[i] & 0x7c00) === 0x7c00 && Number.isFinite(values[i])) throw new Error(`${name}: value ${values[i]} overflows float16`);
  }
  return new Uint8Array(half.buffer);
}

/** Provenance: the file as before for one LoRA at scale 1, else every file with its scale. */
const sourceOf = (loras: readonly LoraInput[]) => (loras.length === 1 && loras[0].scale === 1 ? loraName(loras[0]) : loras.map((l) => ({ path: loraName(l), scale: l.scale })));
const loraName = (l: LoraInput) => l.folder.name(l.path);

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
async function validateLora(lora: LoraInput, unet: ModelProto, role: string): Promise<{ set: LoraSet; bytes: Uint8Array }> {
  const name = loraName(lora);
  if (!Number.isFinite(lora.scale)) throw new Error(`--${role}-lora ${name}: scale ${lora.scale} is not a finite number`);
  if (!(await exists(lora.folder, lora.path))) throw new Error(`--${role}-lora ${name} does not exist`);
  const bytes = await readWhole(lora.folder, lora.path);
  try {
    return { set: parseLora(bytes, findLoraSites(unet, 'all')), bytes };
  } catch (error) {
    (error as Error).message = `--${role}-lora ${name}: ${(error as Error).message}`;
    throw error;
  }
}

const maxRank = (set: LoraSet) => Math.max(0, ...[...set.entries.values()].map((e) => e.rank));

export async function prepareModel(options: PrepareOptions): Promise<PrepareResult> {
  const log = options.log ?? (() => {});
  const { signal } = options;
  const notes: string[] = [];
  const maxShard = options.maxShardBytes ?? DEFAULT_SHARD_BYTES;
  const etaLoras = options.etaLora ?? [], deltaLoras = options.deltaLora ?? [];
  if (options.etaUnet && etaLoras.length) throw new Error('give η once: --eta-unet or --eta-lora, not both');
  if (options.etaRank !== undefined && !options.etaUnet) throw new Error('--eta-rank needs --eta-unet (it approximates the dense η of a fine-tuned UNet)');
  if (options.etaRank !== undefined && !(Number.isInteger(options.etaRank) && options.etaRank > 0)) throw new Error(`--eta-rank ${options.etaRank} must be a positive integer`);

  // 1. Everything that can be refused, before any weight is copied.
  const paths = await findComponents(options.onnx);
  const replacementVae = options.vae ? await findVaeDecoder(options.vae) : undefined;
  if (replacementVae) paths.vaeDecoder = replacementVae.model;
  const graphs = new Map<ComponentKey, ModelProto>();
  for (const [key, file] of Object.entries(paths) as [ComponentKey, GraphFile][]) {
    signal?.throwIfAborted();
    const model = await readGraph(file.folder, file.path);
    const reader = createTensorReader(file.folder, parentPath(file.path));
    for (const t of model.graph?.initializer ?? []) if (isExternal(t)) await reader.span(t);
    graphs.set(key, model);
  }
  const unet = graphs.get('unet')!;
  const kind = exportKind(graphs.has('textEncoder2'), unet);
  checkUnetInputs(unet, paths.unet!.folder.name(paths.unet!.path), kind);
  const exportDtype = graphDtype(unet);
  if (options.dtype === 'float32' && exportDtype === 'float16') {
    throw new Error('--dtype float32: the export is float16; converting float16 weights up to float32 is not supported (prepare without --dtype)');
  }
  /** --dtype float16 on a float32 export: graphs converted (float16-graph.ts), weights cast while streaming. */
  const toHalf = options.dtype === 'float16' && exportDtype === 'float32';
  const textOut = (graphs.get('textEncoder')!.graph?.output ?? [])[0];
  const textDim = int(textOut?.type?.tensorType?.shape?.dim?.at(-1)?.dimValue);
  const facts = await readExportFacts(options.onnx, unet, graphs.get('vaeDecoder')!, textDim || undefined, replacementVae?.config);
  notes.push(...facts.notes);
  // Only diffusers' SDXL pipelines honour force_upcast (StableDiffusionPipeline never reads it, and AutoencoderKL
  // defaults it to true, so SD1.5 configs re-saved by diffusers say true too).
  const keepFloat32 = kind !== 'sdxl' ? new Set<ComponentKey>()
    : upcastVae(graphs, replacementVae ? replacementVae.config : await exportVaeConfig(options.onnx, 'vae_decoder'), await exportVaeConfig(options.onnx, 'vae_encoder'), toHalf, notes);
  const { notes: sdxlNotes = [], ...sdxl } = kind === 'sdxl' ? readSdxlFacts(unet, graphs.get('textEncoder')!, graphs.get('textEncoder2'), facts.context.dim, facts.modelIndex) : {};
  notes.push(...sdxlNotes);

  const etaFiles = [], deltaFiles = [];
  for (const l of etaLoras) etaFiles.push(await validateLora(l, unet, 'eta'));
  for (const l of deltaLoras) deltaFiles.push(await validateLora(l, unet, 'delta'));
  const etaSets = etaFiles.map((f) => f.set), deltaSets = deltaFiles.map((f) => f.set);
  const dpo = options.etaUnet ? await openSafetensorsFolder(options.etaUnet) : undefined;
  let mappings: DenseMapping[] | undefined;
  if (dpo) {
    mappings = inFileOrder(mapDenseEta(unet, new Map([...dpo.entries].map(([k, e]) => [k, e.shape]))), dpo);
    const rules = countRules(mappings);
    log(`η: ${mappings.length} UNet parameters mapped (${rules.name} by name, ${rules.linear} Linear/1×1 Conv through node names, ${rules.norm} norm scale/bias through node names)`);
  }
  const plans = new Map([...graphs].map(([key, graph]) => [key, toHalf && !keepFloat32.has(key) ? planFloat16(graph) : undefined]));
  const copyBytes = [...graphs.values()].reduce((sum, g) => sum + movingBytes(g), 0);
  const etaBytes = (mappings ?? []).reduce((sum, m) => sum + dpo!.entries.get(m.key)!.end - dpo!.entries.get(m.key)!.begin, 0);
  const overall = overallProgress(options.onProgress, copyBytes + etaBytes + (copyBytes + etaBytes) * (toHalf ? 0.5 : 1));
  signal?.throwIfAborted();
  await options.beforeWriting?.((copyBytes + (options.etaRank ? 0 : etaBytes)) * (toHalf ? 0.5 : 1));

  const out = await options.out.begin();
  try {
    // 2. Components: weights streamed into shards.
    const summary: ComponentSummary[] = [];
    /** SHA-256 of each file as computed while writing; checked against a fresh read at the end. */
    const written = new Map<string, string>();
    const components: Partial<Record<ComponentKey, OnnxComponent>> = {};
    let preparedUnet: ModelProto | undefined;
    for (const [key, file] of Object.entries(paths) as [ComponentKey, GraphFile][]) {
      const dir = KEY_DIR[key];
      const plan = plans.get(key);
      const logLine = progress(dir, log);
      let last = 0;
      const onProgress = (done: number, total: number) => {
        logLine(done, total);
        overall.add(dir, done - last);
        last = done;
      };
      const done = await rewriteComponent(file.folder, file.path, out, dir, { maxShardBytes: maxShard, onProgress, signal, transform: plan && float16Transform(plan.convert) }, 'model.onnx', plan?.model ?? graphs.get(key));
      if (key === 'unet') preparedUnet = done.model;
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

    // 3. η and δ. θ is read back from the prepared UNet: the values the prepared model holds (float16 after
    // --dtype float16), and a network export is not downloaded twice.
    const offsets: PreparedManifest['offsets'] = {};
    let etaRules: PrepareResult['etaRules'];
    let etaRank: PrepareResult['etaRank'];
    let rankEtaBytes: Uint8Array | undefined;
    if (dpo && mappings) {
      const theta = preparedTensors(out, preparedUnet!, 'unet');
      // η is written in the prepared initializer's dtype (float16 after --dtype float16).
      mappings = mappings.map((m) => ({ ...m, dataType: theta.dataType(m.initializer) ?? m.dataType }));
      const onEta = (bytes: number) => overall.add('eta', bytes);
      if (options.etaRank !== undefined) {
        const r = await extractRankEta(mappings, dpo, theta.values, unet, options.etaRank, out, log, onEta, signal);
        written.set('eta.safetensors', r.file.sha256);
        [etaRank, rankEtaBytes] = [r.report, r.bytes];
        offsets.eta = { kind: 'lora', file: 'eta.safetensors', rank: options.etaRank, description: `rank-${options.etaRank} SVD of θ_dpo − θ from ${options.etaUnet!.label}` };
        summary.push({ component: 'eta (rank)', tensors: r.tensors, bytes: r.file.bytes, shards: 1 });
      } else {
        const files = await writeDenseEta(mappings, dpo, theta.values, out, maxShard, progress('eta', log), onEta, signal);
        for (const f of files) written.set(f.file, f.sha256);
        offsets.eta = { kind: 'dense', files: files.map((f) => f.file), tensors: mappings.length, description: `θ_dpo − θ from ${options.etaUnet!.label}` };
        summary.push({ component: 'eta (dense)', tensors: mappings.length, bytes: files.reduce((a, f) => a + f.bytes, 0), shards: files.length });
      }
      etaRules = countRules(mappings);
    }
    if (etaLoras.length) offsets.eta = await copyLoras(etaLoras, etaFiles, out, 'eta', summary, written);
    if (deltaLoras.length) offsets.delta = await copyLoras(deltaLoras, deltaFiles, out, 'delta', summary, written);

    // What the offsets will cost when running (checked against the adapter's limits before loading: src/model/fit.ts).
    const rankEta = rankEtaBytes ? [parseLora(rankEtaBytes, findLoraSites(unet, 'all'))] : [];
    const footprint = npoFootprint(unet, { eta: [...etaSets, ...rankEta], delta: deltaSets, dense: etaRank ? undefined : mappings }, components.unet!.dtype === 'float16' ? 2 : 4);

    // 4. Tokenizer and scheduler, copied as shipped.
    const tokenizerDir = await copyTokenizer(options.onnx, out, notes, written);
    const tokenizer2Dir = kind === 'sdxl' ? await copyTokenizer(options.onnx, out, notes, written, 'tokenizer_2') : undefined;
    const schedulerFile = await writeWhole(out, 'scheduler/scheduler_config.json', new TextEncoder().encode(facts.schedulerText));
    written.set(schedulerFile.file, schedulerFile.sha256);

    // 5. Verify and describe.
    const files = await verifyOutput(out, components, written, overall, signal);
    const className = String(facts.scheduler._class_name ?? '');
    const scheduler = jsonSafeScheduler(withoutResavedSpacing(facts.scheduler, notes));
    if (scheduler.dropped.length) notes.push(`scheduler: left out of manifest.scheduler (not JSON; diffusers' defaults): ${scheduler.dropped.join(', ')}`);
    const manifest: PreparedManifest = {
      format: 2,
      kind,
      name: options.name ?? String(facts.modelIndex?._name_or_path ?? (kind === 'sdxl' ? 'stable-diffusion-xl' : 'stable-diffusion-1.5')),
      description: `Stable Diffusion ${kind === 'sdxl' ? 'XL' : '(SD1.x)'} prepared from ${options.onnx.label}`,
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
        onnx: options.onnx.label,
        ...(options.etaUnet ? { etaUnet: options.etaUnet.label } : {}),
        ...(options.etaRank ? { etaRank: options.etaRank } : {}),
        ...(etaLoras.length ? { etaLora: sourceOf(etaLoras) } : {}),
        ...(deltaLoras.length ? { deltaLora: sourceOf(deltaLoras) } : {}),
        ...(options.vae ? { vae: options.vae.label } : {}),
        exportScheduler: className ? (SCHEDULER_OF_CLASS[className] ?? className) : undefined,
        exportDtype,
        layout: exportLayout(unet),
      },
      files,
      ...(kind === 'sdxl' ? {
        sdxl: { ...(sdxl as SdxlFacts), textEncoder2: components.textEncoder2!, tokenizer2: { dir: tokenizer2Dir!, modelMaxLength: facts.modelMaxLength } },
      } : {}),
    };
    // The manifest last: a folder without one is an unfinished preparation (src/model/source/opfs.ts).
    await writeWhole(out, 'manifest.json', new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));
    await out.commit();
    return { manifest, summary, etaRules, etaRank, notes };
  } catch (error) {
    await out.abort();
    throw error;
  }
}

/**
 * The mappings in the order their DPO tensors lie in their files (file by file), so the DPO UNet is read front to
 * back once: a download streams and is hash-checked as it passes (hub-folder.ts).
 */
function inFileOrder(mappings: DenseMapping[], dpo: TensorSet): DenseMapping[] {
  const at = (m: DenseMapping) => dpo.entries.get(m.key)!;
  return [...mappings].sort((a, b) => (at(a).file === at(b).file ? at(a).start - at(b).start : at(a).file < at(b).file ? -1 : 1));
}

/** A prepared graph's initializers read back from the output: θ as the prepared model holds it. */
function preparedTensors(out: OutputFolder, model: ModelProto, dir: string) {
  const inits = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const tensor = (name: string) => {
    const t = inits.get(name);
    if (!t) throw new OnnxError(`the prepared UNet has no initializer ${name}`);
    return t;
  };
  return {
    dataType: (name: string) => inits.get(name)?.dataType ?? undefined,
    async values(name: string): Promise<Float32Array> {
      const t = tensor(name);
      if (!isExternal(t)) return floatValues(t, inlineBytes(t)!);
      const e = new Map((t.externalData ?? []).map((x) => [x.key ?? '', x.value ?? '']));
      const offset = Number(e.get('offset') ?? 0);
      return floatValues(t, await out.read(joinPath(dir, e.get('location') ?? ''), offset, offset + Number(e.get('length'))));
    },
  };
}

/**
 * Every written file read back: each graph's external references lie inside its own shards, 64-byte aligned, and
 * every file's SHA-256 equals what was written. Returns manifest.files in prepare-model's order.
 */
async function verifyOutput(
  out: OutputFolder, components: Partial<Record<ComponentKey, OnnxComponent>>, written: Map<string, string>,
  overall: ReturnType<typeof overallProgress>, signal?: AbortSignal,
): Promise<PreparedManifest['files']> {
  const listed = (await out.list()).filter((f) => f.path !== 'manifest.json').sort((a, b) => walkOrder(a.path, b.path));
  const sizes = new Map(listed.map((f) => [f.path, f.bytes]));
  for (const [key, c] of Object.entries(components) as [ComponentKey, OnnxComponent][]) await verifyComponent(out, sizes, c, key);
  overall.expect('verify', listed.reduce((sum, f) => sum + f.bytes, 0));
  const files: PreparedManifest['files'] = [];
  for (const f of listed) {
    signal?.throwIfAborted();
    const sha256 = await hashOutput(out, f.path, f.bytes, (n) => overall.add('verify', n));
    const sha = written.get(f.path);
    if (sha !== undefined && sha !== sha256) throw new Error(`verify: ${f.path} reads back with SHA-256 ${sha256}, but ${sha} was written`);
    files.push({ path: f.path, bytes: f.bytes, sha256 });
  }
  const unverified = [...written.keys()].filter((p) => !sizes.has(p));
  if (unverified.length) throw new Error(`verify: written files missing from ${out.label}: ${unverified.join(', ')}`);
  return files;
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
async function writeDenseEta(
  mappings: DenseMapping[], dpo: TensorSet, theta: (initializer: string) => Promise<Float32Array>, out: OutputFolder, maxShard: number,
  logProgress: (done: number, total: number) => void, onBytes: (dpoBytes: number) => void, signal?: AbortSignal,
): Promise<WrittenFile[]> {
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
  for (const [i, group] of groups.entries()) {
    const name = groups.length === 1 ? 'eta.safetensors' : `eta-${String(i).padStart(2, '0')}.safetensors`;
    const file = await openAppender(out, '', name);
    await file.append(planSafetensors(group.map((p) => p.t), { format: 'pt', content: 'dense eta = theta_dpo - theta, per ONNX initializer' }).header);
    for (const { m } of group) {
      signal?.throwIfAborted();
      const base = await theta(m.initializer);
      const dpoValues = toInitializerLayout(m, await dpo.read(m.key));
      const eta = new Float32Array(base.length);
      for (let j = 0; j < eta.length; j++) eta[j] = dpoValues[j] - base[j];
      const bytes = encodeAs(eta, m.dataType, m.initializer);
      await file.append(bytes);
      done += bytes.length;
      logProgress(done, total);
      onBytes(dpo.entries.get(m.key)!.end - dpo.entries.get(m.key)!.begin);
    }
    files.push(await file.finish());
  }
  return files;
}

/** Rank-r η: truncated SVD per Linear / 1×1 Conv weight; everything else is dropped and its norm share reported. */
async function extractRankEta(
  mappings: DenseMapping[], dpo: TensorSet, theta: (initializer: string) => Promise<Float32Array>, unet: ModelProto, rank: number,
  out: OutputFolder, log: (line: string) => void, onBytes: (dpoBytes: number) => void, signal?: AbortSignal,
) {
  const sites = new Map(findLoraSites(unet, 'all').map((s) => [s.weightName, s]));
  const entries = new Map<string, LoraEntry>();
  const layers: { module: string; relError: number }[] = [];
  let keptSq = 0, droppedSq = 0, droppedTensors = 0;
  for (const m of mappings) {
    signal?.throwIfAborted();
    const base = await theta(m.initializer);
    const dpoValues = toInitializerLayout(m, await dpo.read(m.key));
    onBytes(dpo.entries.get(m.key)!.end - dpo.entries.get(m.key)!.begin);
    const site = sites.get(m.initializer);
    let sq = 0;
    const eta = new Float64Array(base.length);
    for (let j = 0; j < eta.length; j++) {
      eta[j] = dpoValues[j] - base[j];
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
  const file = await writeWhole(out, 'eta.safetensors', bytes);
  return { report: { layers, dropped: { tensors: droppedTensors, normShare } }, tensors: entries.size * 2, file, bytes };
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
async function copyLoras(
  loras: readonly LoraInput[], read: { set: LoraSet; bytes: Uint8Array }[], out: OutputFolder, role: 'eta' | 'delta', summary: ComponentSummary[], written: Map<string, string>,
): Promise<PreparedOffset> {
  const parts: LoraOffset[] = [];
  for (const [i, lora] of loras.entries()) {
    const { set, bytes } = read[i];
    const file = loras.length === 1 ? `${role}.safetensors` : `${role}-lora-${i}.safetensors`;
    written.set(file, (await writeWhole(out, file, bytes)).sha256);
    summary.push({ component: `${role} (LoRA${loras.length > 1 ? ` ${i + 1}` : ''})`, tensors: set.entries.size * 2, bytes: bytes.length, shards: 1 });
    const skipped = set.skipped.length ? `; ${set.skipped.length} keys skipped (${set.skipped[0].reason})` : '';
    parts.push({ kind: 'lora', file, rank: maxRank(set), description: `${set.format} LoRA on ${set.entries.size} layers from ${loraName(lora)}${skipped}`, ...(lora.scale !== 1 ? { scale: lora.scale } : {}) });
  }
  if (parts.length === 1) return parts[0];
  return { kind: 'stack', parts, description: `${parts.length} LoRAs stacked: ${loras.map((l) => `${l.scale} × ${loraName(l)}`).join(' + ')}` };
}

/**
 * Copies the tokenizer files, and writes what the pipelines load offline: the fast `tokenizer.json` and a normalised
 * `tokenizer_config.json` (src/text buildTokenizerFiles), converted from the slow files SD repositories ship. An
 * export that already has a tokenizer.json keeps it.
 */
async function copyTokenizer(exportDir: InputFolder, out: OutputFolder, notes: string[], written: Map<string, string>, dir = 'tokenizer'): Promise<string> {
  const present: string[] = [];
  for (const f of TOKENIZER_FILES) if (await exists(exportDir, `${dir}/${f}`)) present.push(f);
  const slow = present.includes('vocab.json') && present.includes('merges.txt');
  if (!slow && !present.includes('tokenizer.json')) {
    throw new Error(`the export's ${dir} folder ${exportDir.name(dir)} lacks vocab.json + merges.txt (or tokenizer.json)`);
  }
  const text = new Map<string, string>();
  const write = async (f: string, bytes: Uint8Array) => void written.set(`${dir}/${f}`, (await writeWhole(out, `${dir}/${f}`, bytes)).sha256);
  for (const f of present) {
    const bytes = await readWhole(exportDir, `${dir}/${f}`);
    text.set(f, new TextDecoder().decode(bytes));
    if (present.includes('tokenizer.json') || f !== 'tokenizer_config.json') await write(f, bytes);
  }
  if (!present.includes('tokenizer.json')) {
    const { tokenizerJson, tokenizerConfig } = buildTokenizerFiles({ vocab: text.get('vocab.json')!, merges: text.get('merges.txt')!, tokenizerConfig: text.get('tokenizer_config.json'), specialTokensMap: text.get('special_tokens_map.json') });
    await write('tokenizer.json', new TextEncoder().encode(JSON.stringify(tokenizerJson)));
    await write('tokenizer_config.json', new TextEncoder().encode(`${JSON.stringify(tokenizerConfig, null, 2)}\n`));
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
 * offset is 64-byte aligned, and offset + length lies inside the shard. `sizes`: the written files' sizes by path.
 */
export async function verifyComponent(out: OutputFolder, sizes: ReadonlyMap<string, number>, c: OnnxComponent, label: string): Promise<void> {
  const dir = parentPath(c.file);
  const shards = new Map(c.externalData.map((p) => [p.slice(dir.length + 1), sizes.get(p)]));
  const model = readModel(await out.read(c.file, 0, sizes.get(c.file) ?? 0));
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
