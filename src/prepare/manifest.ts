// What a prepared model's manifest says, read off the export: its components, configs and graphs. The export's JSON
// files are user input (checked, with the file named in every error); values missing from an export (diffusers'
// ONNX script writes no VAE or UNet config) fall back to SD1.5's, and the graph itself where it can tell.
import { parseSchedulerConfig } from '../diffusion/schedulers/config.ts';
import { OnnxError, int, type ModelProto } from '../onnx/proto.ts';
import { inputDims } from './stream-onnx.ts';
import { exists, readText, type InputFolder } from './io.ts';

/** diffusers' VAE scaling factor for SD1.x/2.x (AutoencoderKL config default), used when the export ships no config. */
export const SD15_SCALING_FACTOR = 0.18215;
export const SD15_SAMPLE_SIZE = 64;

export const COMPONENTS = [
  { key: 'unet', dir: 'unet', required: true },
  { key: 'textEncoder', dir: 'text_encoder', required: true },
  { key: 'textEncoder2', dir: 'text_encoder_2', required: false }, // SDXL
  { key: 'vaeDecoder', dir: 'vae_decoder', required: true },
  { key: 'vaeEncoder', dir: 'vae_encoder', required: false },
] as const;
export type ComponentKey = (typeof COMPONENTS)[number]['key'];

/** The tokenizer files we carry over (slow CLIP files as SD repos ship them, and tokenizer.json if present). */
export const TOKENIZER_FILES = ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.json', 'added_tokens.json'];

export const UNET_INPUTS = ['sample', 'timestep', 'encoder_hidden_states'];
/** SDXL's added conditions (UNet2DConditionModel with addition_embed_type "text_time"). */
export const SDXL_UNET_INPUTS = ['text_embeds', 'time_ids'];

/** A JSON file of the export, or undefined when absent; invalid JSON is an error naming the file. */
export async function readJson(folder: InputFolder, path: string): Promise<Record<string, unknown> | undefined> {
  if (!(await exists(folder, path))) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(await readText(folder, path));
  } catch (error) {
    throw new Error(`${folder.name(path)} is not valid JSON: ${(error as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${folder.name(path)} must hold a JSON object`);
  return value as Record<string, unknown>;
}

/** A graph file and the folder it is in (the export's, or a replacement VAE's). */
export interface GraphFile {
  folder: InputFolder;
  path: string;
}

/** Finds each component's graph; a missing required one is refused. */
export async function findComponents(folder: InputFolder): Promise<Partial<Record<ComponentKey, GraphFile>>> {
  const found: Partial<Record<ComponentKey, GraphFile>> = {};
  for (const c of COMPONENTS) {
    const path = `${c.dir}/model.onnx`;
    if (await exists(folder, path)) found[c.key] = { folder, path };
    else if (c.required) throw new Error(`the export lacks its ${c.dir} component: expected ${folder.name(path)}`);
  }
  return found;
}

/** The UNet must take sample, timestep and encoder_hidden_states (the inputs the latent pipeline feeds); SDXL's also text_embeds and time_ids. */
export function checkUnetInputs(unet: ModelProto, path: string, kind: 'sd15' | 'sdxl' = 'sd15'): void {
  const names = new Set((unet.graph?.input ?? []).map((i) => i.name));
  const missing = [...UNET_INPUTS, ...(kind === 'sdxl' ? SDXL_UNET_INPUTS : [])].filter((n) => !names.has(n));
  if (missing.length) {
    throw new OnnxError(`${path} is not a diffusers UNet export: it lacks the input(s) ${missing.join(', ')} (its inputs: ${[...names].join(', ')})`);
  }
}

const numeric = (d: number | string | undefined): number | undefined => (typeof d === 'number' && d > 0 ? d : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** How many times the VAE decoder upsamples: its `…/upsamplers.0/…` modules (diffusers' Upsample2D), read off node names. */
export function vaeScaleFactorOfGraph(decoder: ModelProto): number {
  const ups = new Set<string>();
  for (const node of decoder.graph?.node ?? []) {
    const m = /^\/(?:.*\/)?(up_blocks\.\d+)\/upsamplers\.0\//.exec(node.name ?? '');
    if (m) ups.add(m[1]);
  }
  return 2 ** ups.size;
}

/**
 * A dim of the weight of the first `opType` node that consumes graph input `input` (the UNet's conv_in weight
 * [out, in, 3, 3] gives the latent channels; a cross-attention to_k weight [dim, out] the context width): diffusers'
 * ONNX script exports symbolic input dims and no config.
 */
export function consumerWeightDim(model: ModelProto, input: string, opType: string, axis: number): number | undefined {
  const inits = new Map((model.graph?.initializer ?? []).map((t) => [t.name, t.dims ?? []]));
  for (const node of model.graph?.node ?? []) {
    if (node.opType !== opType || node.input?.[0] !== input) continue;
    const dims = inits.get(node.input[1]);
    if (dims && dims.length > axis) return int(dims[axis]);
  }
  return undefined;
}

/** The export's VAE config.json for a VAE component (its own folder first, then the other one's, then `vae/`). */
export async function exportVaeConfig(folder: InputFolder, component: 'vae_decoder' | 'vae_encoder'): Promise<Record<string, unknown> | undefined> {
  const other = component === 'vae_decoder' ? 'vae_encoder' : 'vae_decoder';
  return (await readJson(folder, `${component}/config.json`)) ?? (await readJson(folder, `${other}/config.json`)) ?? readJson(folder, 'vae/config.json');
}

/**
 * A replacement VAE decoder (prepare-model --vae, e.g. an export of madebyollin/sdxl-vae-fp16-fix): a folder holding
 * `model.onnx` (+ its external data) and the VAE's config.json, or an export folder with `vae_decoder/` inside.
 */
export async function findVaeDecoder(folder: InputFolder): Promise<{ model: GraphFile; config?: Record<string, unknown> }> {
  for (const dir of ['', 'vae_decoder/']) {
    if (await exists(folder, `${dir}model.onnx`)) {
      return { model: { folder, path: `${dir}model.onnx` }, config: (await readJson(folder, `${dir}config.json`)) ?? (await readJson(folder, 'vae/config.json')) };
    }
  }
  throw new Error(`--vae ${folder.label} holds no VAE decoder export: expected ${folder.name('model.onnx')} or ${folder.name('vae_decoder/model.onnx')}`);
}

export interface ExportFacts {
  latent: { channels: number; vaeScaleFactor: number; scalingFactor: number };
  context: { length: number; dim: number };
  sampleSize: number;
  modelMaxLength: number;
  scheduler: Record<string, unknown>;
  schedulerText: string;
  modelIndex?: Record<string, unknown>;
  /** Where each fact came from, for the report. */
  notes: string[];
}

/** Reads latent, context, scheduler and tokenizer facts from the export's configs and graphs. */
export async function readExportFacts(folder: InputFolder, unet: ModelProto, decoder: ModelProto, textEncoderOutDim?: number, decoderConfig?: Record<string, unknown>): Promise<ExportFacts> {
  const notes: string[] = [];
  const schedulerPath = 'scheduler/scheduler_config.json';
  if (!(await exists(folder, schedulerPath))) throw new Error(`the export lacks ${folder.name(schedulerPath)} (the scheduler's config)`);
  const schedulerText = await readText(folder, schedulerPath);
  let scheduler: Record<string, unknown>;
  try {
    scheduler = parseSchedulerConfig(schedulerText) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`${folder.name(schedulerPath)}: ${(error as Error).message}`);
  }
  const unetConfig = await readJson(folder, 'unet/config.json');
  const vaeConfig = decoderConfig ?? await exportVaeConfig(folder, 'vae_decoder');
  const tokenizerConfig = await readJson(folder, 'tokenizer/tokenizer_config.json');

  const sample = inputDims(unet, 'sample') ?? [];
  const context = inputDims(unet, 'encoder_hidden_states') ?? [];
  const channels = numeric(sample[1]) ?? num(unetConfig?.in_channels) ?? consumerWeightDim(unet, 'sample', 'Conv', 1);
  if (!channels) throw new OnnxError(`cannot tell the latent channels: the UNet's sample input has dims [${sample}] and no unet/config.json gives in_channels`);

  let scalingFactor = num(vaeConfig?.scaling_factor);
  if (scalingFactor === undefined) {
    scalingFactor = SD15_SCALING_FACTOR;
    notes.push(`VAE scaling factor ${SD15_SCALING_FACTOR} (SD1.5 default: the export has no VAE config with scaling_factor)`);
  }
  const blocks = vaeConfig?.block_out_channels;
  const vaeScaleFactor = Array.isArray(blocks) && blocks.length > 0 ? 2 ** (blocks.length - 1) : vaeScaleFactorOfGraph(decoder);
  if (!(Array.isArray(blocks) && blocks.length > 0)) notes.push(`VAE scale factor ${vaeScaleFactor} (counted from the decoder's upsamplers)`);

  const dim = numeric(context[2]) ?? num(unetConfig?.cross_attention_dim) ?? consumerWeightDim(unet, 'encoder_hidden_states', 'MatMul', 0) ?? textEncoderOutDim;
  if (!dim) throw new OnnxError(`cannot tell the text context width: encoder_hidden_states has dims [${context}] and no config gives cross_attention_dim`);
  const maxLength = num(tokenizerConfig?.model_max_length);
  const length = numeric(context[1]) ?? (maxLength && maxLength <= 4096 ? maxLength : 77);
  const modelMaxLength = maxLength && maxLength <= 4096 ? maxLength : length;

  let sampleSize = numeric(sample[2]) ?? num(unetConfig?.sample_size);
  if (sampleSize === undefined) {
    sampleSize = SD15_SAMPLE_SIZE;
    const side = SD15_SAMPLE_SIZE * vaeScaleFactor;
    notes.push(`default image size ${side}×${side} (SD1.5's sample_size ${SD15_SAMPLE_SIZE} × the VAE's ${vaeScaleFactor}: the export has no unet/config.json)`);
  }
  return {
    latent: { channels, vaeScaleFactor, scalingFactor },
    context: { length, dim },
    sampleSize,
    modelMaxLength,
    scheduler,
    schedulerText,
    modelIndex: await readJson(folder, 'model_index.json'),
    notes,
  };
}

/**
 * The manifest's scheduler: the export's config without values JSON cannot hold (Python writes -Infinity for
 * DPMSolver's lambda_min_clipped, which is also diffusers' default, so leaving it out changes nothing). The file
 * itself travels verbatim as scheduler/scheduler_config.json (parseSchedulerConfig reads it). Returns the dropped keys.
 */
export function jsonSafeScheduler(config: Record<string, unknown>): { config: Record<string, unknown>; dropped: string[] } {
  const dropped = Object.entries(config).filter(([, v]) => typeof v === 'number' && !Number.isFinite(v)).map(([k, v]) => `${k}: ${v}`);
  const kept = Object.fromEntries(Object.entries(config).filter(([, v]) => !(typeof v === 'number' && !Number.isFinite(v))));
  return { config: JSON.parse(JSON.stringify(kept)), dropped };
}

/** Our scheduler name for a diffusers scheduler class (the default is the official NPO sampler, DPM++ 2M). */
export const SCHEDULER_OF_CLASS: Record<string, string> = {
  DDIMScheduler: 'ddim', PNDMScheduler: 'pndm', EulerDiscreteScheduler: 'euler', EulerAncestralDiscreteScheduler: 'euler-ancestral',
  HeunDiscreteScheduler: 'heun', DPMSolverMultistepScheduler: 'dpm++2m', LCMScheduler: 'lcm', UniPCMultistepScheduler: 'unipc',
};
