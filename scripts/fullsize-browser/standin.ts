// Stand-in text encoders for the full-size browser benchmark only: the full-size exports have a full-size UNet but the
// tiny fixtures' text encoders (8 to 32 wide), while a full-size UNet wants encoder_hidden_states [B,77,context.dim].
// A stand-in is one Gather from a seeded random [vocab, dim] table (input_ids int32 [batch, sequence] → hidden states
// float32 [batch, sequence, dim]; the pooled output the mean over the sequence), its table in external data.
//   SD1.5 (768): made after prepare-model, into a copy of the prepared directory (makeStandInModel: every file but the
//     text encoder and the manifest symlinked; the manifest lists the new files' sizes and SHA-256, what the loader
//     checks).
//   SDXL (768 + 1280, text_embeds 1280): made before prepare-model, into an export in optimum's layout
//     (makeSdxlStandInExport), because prepare-model refuses an SDXL export whose encoders' widths do not add up to
//     the UNet's context width; the prepared directory then needs no copy (makeStandInModel returns it as it is).
// Not model files of the project: they are made into /work/tmp on demand and never committed.
//   npx tsx --import ./scripts/raw-imports.mjs scripts/fullsize-browser/standin.ts --sdxl-export /work/tmp/sdxl-fullsize --out /work/tmp/sdxl-fullsize-pipeline
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createGraphBuilder } from '../../src/onnx/builder.ts';
import { externalizeWeights, readModel, writeModel } from '../../src/onnx/model-io.ts';
import { DataType } from '../../src/onnx/proto.ts';
import { createRandom } from '../../src/train/random.ts';
import { assembleSdxlExport } from '../fixtures/sdxl-export.ts';

const VOCAB = 49408; // CLIP's
const STANDIN_VERSION = 2; // 2: the table drawn with src/train/random.ts
// SDXL's encoders: CLIP ViT-L (768) and OpenCLIP ViT-bigG (1280, whose projection gives text_embeds [B, 1280]).
const SDXL_WIDTHS = [768, 1280] as const;

function seededNormal(n: number, seed: number, scale: number): Float32Array {
  const r = createRandom(seed);
  return Float32Array.from({ length: n }, () => scale * r.normal());
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/**
 * A stand-in encoder of width `dim` (its table seeded with `dim`). Outputs: last_hidden_state and the pooled one
 * (`pooled`: pooler_output for CLIPTextModel, text_embeds for SDXL's CLIPTextModelWithProjection), and with
 * `hiddenStates` optimum's hidden_states.0 and .1 (SDXL reads the penultimate one), all views of the same Gather.
 */
export function standInTextEncoder(dim: number, pooled: 'pooler_output' | 'text_embeds', hiddenStates = false): { graph: Uint8Array; data: Uint8Array } {
  const b = createGraphBuilder('standin_text_encoder');
  const ids = b.input('input_ids', DataType.INT32, ['batch', 'sequence']);
  const table = b.initializer('embeddings.token_embedding.weight', [VOCAB, dim], seededNormal(VOCAB * dim, dim, 0.02));
  const hidden = b.node('Gather', [table, ids], { axis: 0 }, { outputs: ['last_hidden_state'] })[0];
  b.node('ReduceMean', [hidden], { axes: [1], keepdims: 0 }, { outputs: [pooled] });
  b.output('last_hidden_state', DataType.FLOAT, ['batch', 'sequence', dim]);
  b.output(pooled, DataType.FLOAT, ['batch', dim]);
  for (const name of hiddenStates ? ['hidden_states.0', 'hidden_states.1'] : []) {
    b.node('Identity', [hidden], {}, { outputs: [name] });
    b.output(name, DataType.FLOAT, ['batch', 'sequence', dim]);
  }
  const { model, data } = externalizeWeights(b.build(), 'weights-00.bin');
  return { graph: writeModel(model), data };
}

/** The last dim of a prepared text encoder's last_hidden_state (undefined when not fixed). */
function textEncoderWidth(prepared: string, file: string): number | undefined {
  const model = readModel(new Uint8Array(readFileSync(join(prepared, file))));
  const out = model.graph?.output?.find((o) => o.name === 'last_hidden_state');
  const d = Number(out?.type?.tensorType?.shape?.dim?.at(-1)?.dimValue);
  return d > 0 ? d : undefined;
}

/**
 * The model the bench serves for `prepared`: the directory itself where its text encoder(s) already give the UNet's
 * context width (an SDXL directory prepared from makeSdxlStandInExport: prepare-model checked the widths), else the
 * copy with a stand-in text encoder at `out` (made once; reused while its marker matches).
 */
export function makeStandInModel(prepared: string, out: string): { dir: string; manifest: Record<string, any>; made: boolean; standIn: boolean } {
  const source = JSON.parse(readFileSync(join(prepared, 'manifest.json'), 'utf8'));
  const dim = Number(source.context?.dim);
  if (!Number.isInteger(dim) || dim <= 0) throw new Error(`${prepared}/manifest.json has no context.dim`);
  if (source.sdxl || textEncoderWidth(prepared, source.textEncoder.file) === dim) return { dir: resolve(prepared), manifest: source, made: false, standIn: false };
  const marker = join(out, '.standin.json');
  const stamp = JSON.stringify({ STANDIN_VERSION, prepared: resolve(prepared), dim, source: sha256(readFileSync(join(prepared, 'manifest.json'))) });
  if (existsSync(marker) && readFileSync(marker, 'utf8') === stamp) return { dir: out, manifest: JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')), made: false, standIn: true };

  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'text_encoder'), { recursive: true });
  for (const entry of readdirSync(prepared)) {
    if (entry === 'text_encoder' || entry === 'manifest.json' || entry.startsWith('.')) continue;
    symlinkSync(resolve(prepared, entry), join(out, entry));
  }
  const { graph, data } = standInTextEncoder(dim, 'pooler_output');
  writeFileSync(join(out, 'text_encoder/model.onnx'), graph);
  writeFileSync(join(out, 'text_encoder/weights-00.bin'), data);

  const replaced = new Map([['text_encoder/model.onnx', graph], ['text_encoder/weights-00.bin', data]]);
  const manifest = {
    ...source,
    description: `${source.description}; bench stand-in text encoder (Gather from a seeded random [${VOCAB}, ${dim}] table)`,
    textEncoder: { ...source.textEncoder, file: 'text_encoder/model.onnx', externalData: ['text_encoder/weights-00.bin'], inputs: { input_ids: 'int32' }, outputs: ['last_hidden_state', 'pooler_output'], dtype: 'float32', largestTensorBytes: VOCAB * dim * 4 },
    files: source.files
      .filter((f: { path: string }) => !f.path.startsWith('text_encoder/') || replaced.has(f.path))
      .map((f: { path: string }) => (replaced.has(f.path) ? { path: f.path, bytes: replaced.get(f.path)!.byteLength, sha256: sha256(replaced.get(f.path)!) } : f)),
  };
  for (const [path, bytes] of replaced) if (!manifest.files.some((f: { path: string }) => f.path === path)) manifest.files.push({ path, bytes: bytes.byteLength, sha256: sha256(bytes) });
  writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2));
  writeFileSync(marker, stamp);
  return { dir: out, manifest, made: true, standIn: true };
}

/**
 * An SDXL export for prepare-model at `out`: the full-size UNet of `fullsize` (make_sdxl_fullsize.py's output:
 * unet/model.onnx + model.onnx_data, unet-config.json beside) symlinked, stand-in encoders of SDXL's widths, and the
 * tiny fixture's tokenizers, VAE, scheduler and model_index.json (scripts/fixtures/sdxl-export.ts).
 */
export function makeSdxlStandInExport(fullsize: string, out: string): void {
  rmSync(out, { recursive: true, force: true });
  assembleSdxlExport(out);
  rmSync(join(out, 'unet'), { recursive: true });
  mkdirSync(join(out, 'unet'));
  for (const f of ['model.onnx', 'model.onnx_data']) symlinkSync(resolve(fullsize, 'unet', f), join(out, 'unet', f));
  symlinkSync(resolve(fullsize, 'unet-config.json'), join(out, 'unet/config.json'));
  for (const [i, dir] of ['text_encoder', 'text_encoder_2'].entries()) {
    rmSync(join(out, dir), { recursive: true });
    mkdirSync(join(out, dir));
    const { graph, data } = standInTextEncoder(SDXL_WIDTHS[i], i === 0 ? 'pooler_output' : 'text_embeds', true);
    writeFileSync(join(out, dir, 'model.onnx'), graph);
    writeFileSync(join(out, dir, 'weights-00.bin'), data);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { 'sdxl-export': { type: 'string' }, out: { type: 'string' } } });
  if (!values['sdxl-export'] || !values.out) throw new Error('usage: standin.ts --sdxl-export <make_sdxl_fullsize.py output> --out <export dir>');
  makeSdxlStandInExport(values['sdxl-export'], values.out);
  console.log(`${values.out}: SDXL export with the full-size UNet and stand-in encoders (${SDXL_WIDTHS.join(' + ')} wide)`);
}
