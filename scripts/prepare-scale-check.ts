// Scale check for prepare-model: writes an SD1.5-sized synthetic export (a 3.4 GB fp32 UNet `weights.pb` of
// 131 anonymous MatMul weights [5120, 1280], as diffusers' script lays them out, plus the mini export's other
// components) and a matching 3.4 GB "DPO" UNet safetensors, without ever holding them in memory; then runs
// `npm run prepare-model` on it (dense η) and prints time and peak RSS (the CLI's last stderr lines).
//   tsx scripts/prepare-scale-check.ts --dir /tmp/sd15-scale [--layers 131] [--keep]
// Needs about 4 × 3.4 GB of free disk. Not a test: it is slow and disk-heavy by design.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createGraphBuilder } from '../src/onnx/builder.ts';
import { writeModel } from '../src/onnx/model-io.ts';
import { DataType, onnx } from '../src/onnx/proto.ts';
import { writeMiniExport } from '../src/prepare/mini-export.ts';
import { planSafetensors } from '../src/prepare/stream-safetensors.ts';

const { values } = parseArgs({ options: { dir: { type: 'string', default: '/tmp/sd15-scale' }, layers: { type: 'string', default: '131' }, keep: { type: 'boolean', default: false } } });
const dir = values.dir!;
const layers = Number(values.layers);
const [IN, OUT] = [5120, 1280];
const bytesPer = IN * OUT * 4;

rmSync(dir, { recursive: true, force: true });
writeMiniExport(join(dir, 'export'), 'diffusers');

// The UNet graph: external MatMul weights, named like torch's exporter names them.
const g = createGraphBuilder('unet');
g.input('sample', DataType.FLOAT, ['batch', 4, 'h', 'w']);
g.input('timestep', DataType.FLOAT, ['batch']);
const ehs = g.input('encoder_hidden_states', DataType.FLOAT, ['batch', 77, IN]);
const outs: string[] = [];
for (let i = 0; i < layers; i++) {
  outs.push(g.scope(`down_blocks.${i}`, () => g.scope('attentions.0', () => g.scope('transformer_blocks.0', () => g.scope('ff', () => g.scope('net.2', () => g.op('MatMul', [ehs, `onnx::MatMul_${1000 + i}`])))))));
}
g.node('Sum', outs, {}, { outputs: ['out_sample'] });
g.output('out_sample', DataType.FLOAT, ['batch', 77, OUT]);
const model = g.build();
model.graph!.initializer = Array.from({ length: layers }, (_, i) => ({
  name: `onnx::MatMul_${1000 + i}`, dims: [IN, OUT], dataType: DataType.FLOAT, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
  externalData: [{ key: 'location', value: 'weights.pb' }, { key: 'offset', value: String(i * bytesPer) }, { key: 'length', value: String(bytesPer) }],
}));
rmSync(join(dir, 'export', 'unet'), { recursive: true });
mkdirSync(join(dir, 'export', 'unet'), { recursive: true });
writeFileSync(join(dir, 'export', 'unet', 'model.onnx'), writeModel(model));

// Weight bytes: one 1 MiB block of seeded floats, repeated (cheap to write; the content does not matter here).
const block = new Float32Array(256 * 1024);
let s = 1;
for (let i = 0; i < block.length; i++) block[i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.1;
const blockBytes = new Uint8Array(block.buffer);
const fill = (append: (b: Uint8Array) => void, n: number) => {
  for (let done = 0; done < n; done += blockBytes.length) append(done + blockBytes.length <= n ? blockBytes : blockBytes.subarray(0, n - done));
};
/** A file on disk written front to back (these inputs are made here, not prepared). */
const openAppender = (folder: string, name: string) => {
  const fd = openSync(join(folder, name), 'w');
  return { append: (bytes: Uint8Array) => void writeSync(fd, bytes), finish: () => closeSync(fd) };
};
const weights = openAppender(join(dir, 'export', 'unet'), 'weights.pb');
fill((b) => weights.append(b), layers * bytesPer);
weights.finish();

mkdirSync(join(dir, 'dpo'), { recursive: true });
const dpo = openAppender(join(dir, 'dpo'), 'diffusion_pytorch_model.safetensors');
const plan = Array.from({ length: layers }, (_, i) => ({ name: `down_blocks.${i}.attentions.0.transformer_blocks.0.ff.net.2.weight`, dtype: 'F32' as const, shape: [OUT, IN] }));
dpo.append(planSafetensors(plan).header);
const shifted = Float32Array.from(block, (x) => x * 1.01);
const shiftedBytes = new Uint8Array(shifted.buffer);
for (let done = 0; done < layers * bytesPer; done += shiftedBytes.length) dpo.append(shiftedBytes.subarray(0, Math.min(shiftedBytes.length, layers * bytesPer - done)));
dpo.finish();
console.log(`wrote ${dir}: UNet weights ${(layers * bytesPer / 1e9).toFixed(2)} GB in one weights.pb, DPO UNet of the same size`);

const started = Date.now();
const run = spawnSync('npx', ['tsx', '--import', './scripts/raw-imports.mjs', 'src/cli/prepare-model.ts', '--onnx', join(dir, 'export'), '--eta-unet', join(dir, 'dpo'), '--out', join(dir, 'out')], { encoding: 'utf8' });
const lines = run.stderr.trim().split('\n');
console.log(lines.filter((l) => !l.includes('%)')).join('\n'));
console.log(`prepare-model exit ${run.status} after ${((Date.now() - started) / 1000).toFixed(0)} s`);
if (!values.keep) rmSync(dir, { recursive: true, force: true });
