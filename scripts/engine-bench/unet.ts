// Node-only: the UNet `npm run bench:webgpu` measures, with its model's η and δ as the engine reads them.
//   tiny-sdxl  the same for the tiny real-exporter SDXL fixture (fixtures/sdxl, optimum's export; its added
//         conditions text_embeds and time_ids fed as further inputs).
//   tiny  the tiny real-exporter SD1.5 fixture (fixtures/sd15) prepared by `npm run prepare-model` with the dense DPO
//         UNet as η and the NPO-style δ LoRA: what the tests use, at its 64² (latents 8×8).
//   full  an SD1.5-sized UNet built by our graph builder (src/embedded/unet.ts) at runwayml/stable-diffusion-v1-5's
//         widths (320, 640, 1280, 1280; 2 resnets per level; attention at the first three; 768-wide text), seeded
//         random weights; a dense random η on every tensor and a rank-8 δ on the attention projections (the released
//         NPO LoRA's sites); 512² (latents 64×64). Its parameter count is printed against SD1.5's own 859,520,964
//         (src/model/unet-params.ts): the builder writes proj_in/out as Linear (SD2's layout), the same sizes.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type * as OrtCommon from 'onnxruntime-common';
import { readOffset, type Offset } from '../../src/engine/offsets.ts';
import { offsetFiles } from '../../src/engine/unet-files.ts';
import type { AnyManifest, PreparedOffset } from '../../src/model/manifest.ts';
import { memorySource } from '../../src/model/source/memory.ts';
import type { ModelSource } from '../../src/model/source/source.ts';
import { paramSource } from '../../src/embedded/layers.ts';
import { randomLora } from '../../src/embedded/random-lora.ts';
import { buildUnet, type UnetConfig } from '../../src/embedded/unet.ts';
import { createWeightBuffer } from '../../src/gpu/buffers.ts';
import { writeSafetensors, type TensorToWrite } from '../../src/lora/safetensors.ts';
import type { PreparedManifest } from '../../src/model/manifest.ts';
import { SD15_UNET_PARAMETERS } from '../../src/model/unet-params.ts';
import { ATTENTION_TARGETS, findLoraSites, type LoraSite } from '../../src/onnx/lora-sites.ts';
import { externalizeWeights, readModel, readWeight, writeModel } from '../../src/onnx/model-io.ts';
import type { ModelProto } from '../../src/onnx/proto.ts';
import { prepareFixture } from '../../src/pipelines/reference-metrics.ts';
import { assembleSdxlExport } from '../fixtures/sdxl-export.ts';

type Ort = Pick<typeof OrtCommon, 'Tensor'>;

export interface BenchUnet {
  title: string;
  /** The model's files (checked as they are read, as the page's are). */
  source: ModelSource;
  graphPath: string;
  model: ModelProto;
  sites: LoraSite[];
  /** η and δ as the engine reads them on the GPU (dense: headers only) or the CPU (dense files whole). */
  offsets(gpu: boolean): Promise<{ eta: Offset; delta: Offset }>;
  /** Latent shape [C, H, W]. */
  shape: [number, number, number];
  weightBytes: number;
  /** sample, timestep and text context of `n` samples; in GPU buffers when a device is given (as the engine feeds them). */
  inputs(ort: Ort, n: number, device?: GPUDevice): Record<string, OrtCommon.Tensor>;
}

export type BenchSize = 'tiny' | 'tiny-sdxl' | 'full';

export async function benchUnet(size: BenchSize, root: string): Promise<BenchUnet> {
  return size === 'full' ? fullSizeUnet() : tinyFixture(root, size === 'tiny-sdxl' ? 'sdxl' : 'sd15');
}

async function tinyFixture(root: string, family: 'sd15' | 'sdxl'): Promise<BenchUnet> {
  const fixture = join(root, `fixtures/${family}`);
  const exported = family === 'sdxl' ? assembleSdxlExport() : join(fixture, 'export-diffusers');
  const { manifest: any, files } = prepareFixture(exported, ['--eta-unet', join(fixture, 'dpo-unet'), '--delta-lora', join(fixture, 'delta-diffusers.safetensors')]);
  const manifest = any as PreparedManifest;
  const source = memorySource(manifest, files);
  const model = readModel(files.get(manifest.unet.file)!);
  const sites = findLoraSites(model, 'all');
  return {
    title: family === 'sdxl' ? 'tiny SDXL fixture (optimum\'s export), dense DPO η + δ LoRA' : 'tiny SD1.5 fixture (diffusers\' own export), dense DPO η + δ LoRA',
    source, graphPath: manifest.unet.file, model, sites,
    offsets: (gpu) => offsetsOf(source, sites, manifest.offsets, gpu),
    // 64² as the fixture's references (its manifest's default, 512², makes attention's score tensors the subject).
    shape: [manifest.latent.channels, 8, 8],
    weightBytes: manifest.unet.externalData.reduce((s, path) => s + files.get(path)!.byteLength, 0),
    inputs: inputsFor([manifest.latent.channels, 8, 8], [manifest.context.length, manifest.context.dim], addedConditions(model), manifest.unet.inputs.timestep === 'int64' ? 'int64' : 'float32'),
  };
}

/** SDXL's added conditions (text_embeds, time_ids): each a float input [batch, width], the width read from the graph. */
function addedConditions(model: ModelProto): [string, number][] {
  const widthOf = (name: string) => Number(model.graph!.input!.find((i) => i.name === name)?.type?.tensorType?.shape?.dim?.[1]?.dimValue ?? 0);
  return ['text_embeds', 'time_ids'].filter((name) => widthOf(name) > 0).map((name) => [name, widthOf(name)]);
}

const SD15_SIZED: UnetConfig = {
  sampleSize: 64, inChannels: 4, outChannels: 4, blockOutChannels: [320, 640, 1280, 1280], crossAttention: [true, true, true, false],
  layersPerBlock: 2, normGroups: 32, attentionHeadDim: 40, crossAttentionDim: 768, contextLength: 77,
};

async function offsetsOf(source: ModelSource, sites: LoraSite[], entries: { eta?: PreparedOffset; delta?: PreparedOffset }, gpu: boolean) {
  const targets = sites.map(({ modulePath, inFeatures, outFeatures }) => ({ modulePath, inFeatures, outFeatures }));
  const files = offsetFiles(source, gpu);
  return { eta: await readOffset(entries.eta, files, targets), delta: await readOffset(entries.delta, files, targets) };
}

async function fullSizeUnet(): Promise<BenchUnet> {
  const started = performance.now();
  const built = buildUnet(SD15_SIZED, paramSource(1));
  const { model, data } = externalizeWeights(built, 'weights.bin');
  const parameters = data.byteLength / 4;
  const externals = new Map([['weights.bin', data]]);
  const sites = findLoraSites(model, 'all');
  const attention = findLoraSites(model, ATTENTION_TARGETS);
  const deltaFile = randomLora(attention, { rank: 8, seed: 2, std: 0.01, note: 'bench: seeded random δ' });
  // A dense η on every float tensor of the UNet, as a full DPO fine-tune's θ_dpo − θ: small seeded values.
  const noise = paramSource(3);
  const etaTensors: Record<string, TensorToWrite> = {};
  for (const t of model.graph!.initializer ?? []) {
    if (t.dataType !== 1) continue;
    const { dims } = readWeight(t, externals);
    etaTensors[t.name!] = { shape: dims, data: noise.get(`η ${t.name}`, dims, { kind: 'normal', std: 1e-3 }) };
  }
  const etaFile = writeSafetensors(etaTensors, { note: 'bench: seeded random dense η' });
  console.log(`built an SD1.5-sized UNet in ${((performance.now() - started) / 1000).toFixed(0)} s: ${parameters.toLocaleString('en')} parameters in external data (SD1.5: ${SD15_UNET_PARAMETERS.toLocaleString('en')})`);
  // A model directory in memory, listed and hashed as prepare-model would: the engine's reads are checked against it.
  const files = new Map([['unet/model.onnx', writeModel(model)], ['unet/weights.bin', data], ['eta.safetensors', etaFile], ['delta.safetensors', deltaFile]]);
  const manifest = { files: [...files].map(([path, bytes]) => ({ path, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') })) } as unknown as AnyManifest;
  const source = memorySource(manifest, files);
  const entries: { eta: PreparedOffset; delta: PreparedOffset } = {
    eta: { kind: 'dense', files: ['eta.safetensors'], tensors: Object.keys(etaTensors).length, description: 'bench η' },
    delta: { kind: 'lora', file: 'delta.safetensors', rank: 8, description: 'bench δ' },
  };
  return {
    title: 'SD1.5-sized UNet (our builder, random weights), dense η + rank-8 δ on the attention projections',
    source, graphPath: 'unet/model.onnx', model, sites,
    offsets: (gpu) => offsetsOf(source, sites, entries, gpu),
    shape: [4, 64, 64],
    weightBytes: data.byteLength,
    inputs: inputsFor([4, 64, 64], [77, 768]),
  };
}

function inputsFor(shape: [number, number, number], context: [number, number], added: [string, number][] = [], timestep: 'float32' | 'int64' = 'float32') {
  return (ort: Ort, n: number, device?: GPUDevice): Record<string, OrtCommon.Tensor> => {
    const sampleSize = shape[0] * shape[1] * shape[2];
    const values: Record<string, { data: Float32Array; dims: number[] }> = {
      sample: { data: Float32Array.from({ length: n * sampleSize }, (_, i) => Math.sin(i)), dims: [n, ...shape] },
      encoder_hidden_states: { data: Float32Array.from({ length: n * context[0] * context[1] }, (_, i) => 0.1 * Math.cos(i)), dims: [n, ...context] },
    };
    for (const [name, width] of added) values[name] = { data: Float32Array.from({ length: n * width }, (_, i) => 0.5 + 0.1 * Math.sin(i)), dims: [n, width] };
    const feeds: Record<string, OrtCommon.Tensor> = { timestep: timestep === 'int64' ? new ort.Tensor('int64', new BigInt64Array(n).fill(500n), [n]) : new ort.Tensor('float32', new Float32Array(n).fill(500), [n]) };
    for (const [name, { data, dims }] of Object.entries(values)) {
      feeds[name] = device ? ort.Tensor.fromGpuBuffer(createWeightBuffer(device, data.byteLength, { data, label: name }), { dataType: 'float32', dims }) : new ort.Tensor('float32', data, dims);
    }
    return feeds;
  };
}
