// Latents of training images through a prepared model's VAE encoder, sampled with OUR seeded generator.
// diffusers' training scripts take `vae.encode(x).latent_dist.sample() * scaling_factor`. The exported vae_encoder
// graph (diffusers' convert script exports `latent_dist.sample()`) draws that sample itself with RandomNormalLike,
// whose stream no caller controls. So we cut the graph before the draw: the sample is `Add(mean, Mul(std, ε))` with
// ε = RandomNormalLike(...) (through Casts); posteriorGraph makes `mean` and `std` the outputs and drops the draw, and
// the caller samples mean + std·ε with the torch-compatible generator (src/diffusion/noise), which gives exactly
// diffusers' `latent_dist.sample(generator=torch.Generator().manual_seed(seed))` (fixture test). Each image is encoded
// once and cached (by identity), so epochs reuse the same latent, as the issue asks.
import type * as OrtCommon from 'onnxruntime-common';
import type { NoiseGenerator } from '../diffusion/noise/index.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import { readModel, writeModel } from '../onnx/model-io.ts';
import { OnnxError, type ModelProto, type NodeProto } from '../onnx/proto.ts';
import { componentFiles, type Ort } from '../pipelines/onnx-component.ts';
import type { PreferencePair } from './pairs.ts';

export const POSTERIOR_OUTPUTS = { mean: 'latent_mean', std: 'latent_std' } as const;

/** The encoder graph with outputs latent_mean and latent_std instead of its own random sample. */
export function posteriorGraph(model: ModelProto): ModelProto {
  const nodes = model.graph!.node ?? [];
  const draws = nodes.filter((n) => n.opType === 'RandomNormalLike' || n.opType === 'RandomNormal');
  if (draws.length !== 1) throw new OnnxError(`VAE encoder: expected one RandomNormal(Like) node (the posterior sample), found ${draws.length}`);
  const consumer = (value: string) => nodes.filter((n) => (n.input ?? []).includes(value));
  let eps = draws[0].output![0];
  for (let c = consumer(eps); c.length === 1 && c[0].opType === 'Cast'; c = consumer(eps)) eps = c[0].output![0];
  const mul = single(consumer(eps), 'Mul', 'multiplies the draw by the standard deviation');
  const std = other(mul, eps);
  const add = single(consumer(mul.output![0]), 'Add', 'adds the mean');
  const mean = other(add, mul.output![0]);
  const graph = model.graph!;
  const kept = neededNodes(nodes, [mean, std]);
  const floatOut = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimParam: 'channels' }, { dimParam: 'height' }, { dimParam: 'width' }] } } } });
  const rename: NodeProto[] = [
    { opType: 'Identity', name: 'posterior/mean', input: [mean], output: [POSTERIOR_OUTPUTS.mean] },
    { opType: 'Identity', name: 'posterior/std', input: [std], output: [POSTERIOR_OUTPUTS.std] },
  ];
  return { ...model, graph: { ...graph, node: [...kept, ...rename], output: [floatOut(POSTERIOR_OUTPUTS.mean), floatOut(POSTERIOR_OUTPUTS.std)] } };
}

function single(found: NodeProto[], op: string, what: string): NodeProto {
  if (found.length !== 1 || found[0].opType !== op) {
    throw new OnnxError(`VAE encoder: the posterior sample is not mean + std·ε as diffusers exports it (expected one ${op} that ${what}, found ${found.map((n) => n.opType).join(', ') || 'none'})`);
  }
  return found[0];
}

function other(node: NodeProto, value: string): string {
  const rest = (node.input ?? []).filter((i) => i !== value);
  if (rest.length !== 1) throw new OnnxError(`VAE encoder: ${node.name} does not combine the draw with one other value`);
  return rest[0];
}

function neededNodes(nodes: NodeProto[], outputs: string[]): NodeProto[] {
  const needed = new Set(outputs);
  const keep = new Set<NodeProto>();
  for (const n of [...nodes].reverse()) {
    if (!(n.output ?? []).some((o) => needed.has(o))) continue;
    keep.add(n);
    for (const i of n.input ?? []) if (i) needed.add(i);
  }
  return nodes.filter((n) => keep.has(n));
}

export interface LatentEncoder {
  /** latent = (mean + std·ε)·scaling_factor for one planar [3, H, W] image in [-1, 1]; cached by array identity. */
  encode(image: Float32Array): Promise<Float32Array>;
  /** The pairs with winner and loser replaced by their latents. */
  encodePairs(pairs: readonly PreferencePair[]): Promise<PreferencePair[]>;
  /** [C, h, w] of one latent (known after the first encode). */
  latentDims(): number[] | undefined;
  release(): Promise<void>;
}

export async function createLatentEncoder(ort: Ort, manifest: PreparedManifest, files: ReadonlyMap<string, Uint8Array>, noise: NoiseGenerator,
  resolution: { width: number; height: number }, options?: OrtCommon.InferenceSession.SessionOptions): Promise<LatentEncoder> {
  const component = manifest.vaeEncoder;
  if (!component) throw new Error(`model ${manifest.name} has no vae_encoder; training from images needs it (prepare-model copies it when the export has one)`);
  const bytes = files.get(component.file);
  if (!bytes) throw new Error(`model file ${component.file} is listed in the manifest but was not loaded`);
  const externalData = [...componentFiles(component, files)].map(([path, data]) => ({ path, data }));
  const session = await ort.InferenceSession.create(writeModel(posteriorGraph(readModel(bytes))), { ...options, externalData });
  const { width, height } = resolution;
  const cache = new Map<Float32Array, Float32Array>();
  let dims: number[] | undefined;
  const encode = async (image: Float32Array) => {
    const hit = cache.get(image);
    if (hit) return hit;
    if (image.length !== 3 * width * height) throw new Error(`an image has ${image.length} values; the model trains on 3×${height}×${width}`);
    const out = await session.run({ sample: new ort.Tensor('float32', image, [1, 3, height, width]) });
    const mean = out[POSTERIOR_OUTPUTS.mean];
    const std = out[POSTERIOR_OUTPUTS.std].data as Float32Array;
    dims = mean.dims.slice(1).map(Number);
    const m = mean.data as Float32Array;
    const eps = noise.randn(m.length);
    const latent = Float32Array.from(m, (v, i) => (v + std[i] * eps[i]) * manifest.latent.scalingFactor);
    cache.set(image, latent);
    return latent;
  };
  return {
    encode,
    async encodePairs(pairs) {
      const out: PreferencePair[] = [];
      for (const p of pairs) out.push({ ...p, winner: await encode(p.winner), loser: await encode(p.loser) });
      return out;
    },
    latentDims: () => dims,
    release: () => session.release(),
  };
}
