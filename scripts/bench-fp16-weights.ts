// Measures what float16 frozen weights save in a DPO training session (issue 14; src/onnx/passes/float16-weights.ts):
//   npx tsx scripts/bench-fp16-weights.ts [--channels 256,512] [--side 8]
// A UNet where the weights dominate: the project's own UNet builder (src/embedded/unet.ts) with wide levels
// (default [256, 512] channels, both with cross-attention, context [8, 768], seeded random weights) on small
// latents (4×8×8), so activations are small beside the weights. Its DPO training graph (rank 8, batch 1) is written
// to a temporary directory with fp32 and with fp16 weights; each variant then runs in a fresh Node process on
// onnxruntime-node's CPU EP, arena off, graph optimisation 'basic' (the trainer's), and reports the peak RSS growth
// over the process's state just before the session (model bytes already read): after session creation, at the peak of
// a second training step (the first warms up) and after it. glibc's malloc keeps freed memory it got from brk; run with
// MALLOC_MMAP_THRESHOLD_=131072 so large buffers are mapped and unmapped and the RSS follows what is allocated. Variants:
//   fp32             the graph as today;
//   fp16 (folding)   fp16 weights, ORT's optimizers as they are: ConstantFolding may fold each Cast of a float16
//                    initializer back into a float32 initializer (the gotcha this measures);
//   fp16             fp16 weights with ConstantFolding, CommonSubexpressionElimination and ReshapeFusion disabled
//                    (FLOAT16_WEIGHTS_SESSION_EXTRA), as the trainer creates the session;
//   fp16 (level disabled)  the other way to keep the Casts: no graph optimisation at all;
//   fp32 / fp16 (arena on)  with ORT's CPU arena (its default), which keeps what a step allocated: the many
//                    weight-sized Cast outputs fragment it, so the trainer turns it off for fp16 weights.
// Besides memory: the wall time of a second step (the first warms up), one intra-op thread.
// Prints a table; asserts nothing.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { paramSource } from '../src/embedded/layers.ts';
import { buildUnet, TINY_UNET } from '../src/embedded/unet.ts';
import { FLOAT16_WEIGHTS_SESSION_EXTRA } from '../src/onnx/passes/float16-weights.ts';
import { buildDpoGraph } from '../src/train/dpo-graph.ts';
import { createRandom } from '../src/train/random.ts';

const { values } = parseArgs({ options: { channels: { type: 'string' }, side: { type: 'string' }, child: { type: 'string' } } });
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

interface Spec { dir: string; variant: string; side: number; context: [number, number]; lora: { a: string; b: string; in: number; out: number }[] }

async function child(spec: Spec) {
  const fp16 = spec.variant.startsWith('fp16');
  const model = readFileSync(join(spec.dir, fp16 ? 'fp16.onnx' : 'fp32.onnx'));
  const externalData = fp16 ? [{ path: 'weights-fp16.bin', data: readFileSync(join(spec.dir, 'weights-fp16.bin')) }] : [];
  const r = createRandom(2);
  const t = (dims: number[], fill?: number) => new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => fill ?? r.normal()), dims);
  const latent = [1, 4, spec.side, spec.side];
  const feeds: Record<string, ort.Tensor> = {
    x_w: t(latent), x_l: t(latent), noise: t(latent), alpha_bar: t([1], 0.5), timestep: t([1], 500), context: t([1, ...spec.context]),
    beta_dpo: t([], 500), lora_scale: t([], 1),
  };
  for (const l of spec.lora) Object.assign(feeds, { [l.a]: t([8, l.in], 0.01), [l.b]: t([l.out, 8], 0.01) });
  // Peak RSS (VmHWM); reset before each step (Linux: /proc/self/clear_refs "5"), so each step's own peak is read.
  const rss = () => 1024 * Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
  const current = () => process.memoryUsage().rss;
  const before = rss();
  const extra = spec.variant === 'fp16' || spec.variant === 'fp16 (arena on)' ? { extra: FLOAT16_WEIGHTS_SESSION_EXTRA } : {};
  const level = spec.variant === 'fp16 (level disabled)' ? 'disabled' : 'basic';
  const session = await ort.InferenceSession.create(model, { externalData, enableCpuMemArena: spec.variant.endsWith('(arena on)'), logSeverityLevel: 3, graphOptimizationLevel: level, intraOpNumThreads: 1, interOpNumThreads: 1, ...extra });
  const created = rss();
  const out = await session.run(feeds);
  writeFileSync('/proc/self/clear_refs', '5');
  const t0 = performance.now();
  await session.run(feeds);
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ session: created - before, step: rss() - before, after: current() - before, ms, loss: (out.loss.data as Float32Array)[0] }));
}

function parent() {
  const channels = (values.channels ?? '256,512').split(',').map(Number);
  const side = Number(values.side ?? 8);
  const config = { ...TINY_UNET, sampleSize: side, inChannels: 4, outChannels: 4, blockOutChannels: channels, crossAttention: channels.map(() => true), normGroups: 32, attentionHeadDim: 64, crossAttentionDim: 768, contextLength: 8 };
  const unet = buildUnet(config, paramSource(1));
  const weightBytes = (unet.graph!.initializer ?? []).reduce((s, i) => s + 4 * (i.dims ?? []).map(Number).reduce((a, b) => a * b, 1), 0);
  const dir = mkdtempSync(join(tmpdir(), 'bench-fp16-weights-'));
  const options = { rank: 8, imageDims: [4, side, side], contextDims: [8, 768] };
  const fp32 = buildDpoGraph(unet, options);
  writeFileSync(join(dir, 'fp32.onnx'), fp32.training);
  const fp16 = buildDpoGraph(unet, { ...options, weights: 'fp16' });
  writeFileSync(join(dir, 'fp16.onnx'), fp16.training);
  writeFileSync(join(dir, 'weights-fp16.bin'), fp16.float16!.file());
  const lora = fp32.lora.map((l) => ({ a: l.a, b: l.b, in: l.site.inFeatures, out: l.site.outFeatures }));
  console.log(`UNet: channels [${channels}], latents 4×${side}×${side}, context [8, 768]: ${mib(weightBytes)} MiB of float32 weights; `
    + `fp16 graph: ${fp16.float16!.converted.length} weights converted (${mib(fp16.float16!.bytes)} MiB file)`);
  console.log('| weights | RSS growth after session creation MiB | peak during the second step MiB | after it MiB | step ms | loss |');
  console.log('|---|---|---|---|---|---|');
  for (const variant of ['fp32', 'fp16 (folding)', 'fp16', 'fp16 (level disabled)', 'fp32 (arena on)', 'fp16 (arena on)']) {
    const spec: Spec = { dir, variant, side, context: [8, 768], lora };
    const text = execFileSync(join(import.meta.dirname, '../node_modules/.bin/tsx'), [import.meta.filename, '--child', JSON.stringify(spec)], { encoding: 'utf8' });
    const m = JSON.parse(text.trim().split('\n').pop()!);
    console.log(`| ${variant} | ${mib(m.session)} | ${mib(m.step)} | ${mib(m.after)} | ${m.ms.toFixed(0)} | ${m.loss.toPrecision(6)} |`);
  }
}

if (values.child) await child(JSON.parse(values.child));
else parent();
