// A stand-in text encoder for the full-size browser benchmark only: the prepared full-size directories carry the tiny
// fixture's text encoder ([B,77,32]), but a full-size UNet wants encoder_hidden_states [B,77,context.dim] (768 for
// SD1.5). This writes a copy of the prepared directory (every file but the text encoder and the manifest symlinked)
// whose text encoder is one Gather from a seeded random [vocab, dim] table (input_ids int32 [batch, sequence] →
// last_hidden_state float32 [batch, sequence, dim], pooler_output the mean over the sequence), its table in external
// data, and whose manifest lists the new files' sizes and SHA-256 (what the loader checks). Not a model file of the
// project: it is made into /work/tmp on demand and never committed.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createGraphBuilder } from '../../src/onnx/builder.ts';
import { externalizeWeights, writeModel } from '../../src/onnx/model-io.ts';
import { DataType } from '../../src/onnx/proto.ts';
import { createRandom } from '../../src/train/random.ts';

const VOCAB = 49408; // CLIP's
const STANDIN_VERSION = 2; // 2: the table drawn with src/train/random.ts

function seededNormal(n: number, seed: number, scale: number): Float32Array {
  const r = createRandom(seed);
  return Float32Array.from({ length: n }, () => scale * r.normal());
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The copy of `prepared` with the stand-in text encoder at `out` (made once; reused while its marker matches). */
export function makeStandInModel(prepared: string, out: string): { dir: string; manifest: Record<string, any>; made: boolean } {
  const source = JSON.parse(readFileSync(join(prepared, 'manifest.json'), 'utf8'));
  const dim = Number(source.context?.dim);
  if (!Number.isInteger(dim) || dim <= 0) throw new Error(`${prepared}/manifest.json has no context.dim`);
  const marker = join(out, '.standin.json');
  const stamp = JSON.stringify({ STANDIN_VERSION, prepared: resolve(prepared), dim, source: sha256(readFileSync(join(prepared, 'manifest.json'))) });
  if (existsSync(marker) && readFileSync(marker, 'utf8') === stamp) return { dir: out, manifest: JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')), made: false };

  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'text_encoder'), { recursive: true });
  for (const entry of readdirSync(prepared)) {
    if (entry === 'text_encoder' || entry === 'manifest.json' || entry.startsWith('.')) continue;
    symlinkSync(resolve(prepared, entry), join(out, entry));
  }
  const b = createGraphBuilder('standin_text_encoder');
  const ids = b.input('input_ids', DataType.INT32, ['batch', 'sequence']);
  const table = b.initializer('embeddings.token_embedding.weight', [VOCAB, dim], seededNormal(VOCAB * dim, 768, 0.02));
  const hidden = b.node('Gather', [table, ids], { axis: 0 }, { outputs: ['last_hidden_state'] })[0];
  b.node('ReduceMean', [hidden], { axes: [1], keepdims: 0 }, { outputs: ['pooler_output'] });
  b.output('last_hidden_state', DataType.FLOAT, ['batch', 'sequence', dim]);
  b.output('pooler_output', DataType.FLOAT, ['batch', dim]);
  const { model, data } = externalizeWeights(b.build(), 'weights-00.bin');
  const graph = writeModel(model);
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
  return { dir: out, manifest, made: true };
}
