// How the engine reads a UNet export's weights through the model source (src/model/source/), by residency
// (DESIGN decision 7: a weight's road):
//   CPU   the external data files whole, handed to ORT as external data (the WASM heap or onnxruntime-node holds them);
//   GPU   every external initializer streamed into a GPU buffer of its own in bounded chunks (src/gpu/upload.ts): the
//         graph takes them as inputs fed with Tensor.fromGpuBuffer, so neither JS nor ORT's WASM heap holds a shard and
//         a UNet over ORT-web's 4 GB wall loads. Dense offsets (a DPO UNet's θ_dpo − θ) are streamed the same way;
//         only their safetensors headers are read into JS.
//         Except: a Conv weight fed as an input costs ORT's WebGPU EP a re-layout kernel per Conv on every call (an
//         initializer is re-laid out once, at session creation), so the largest Conv weights no offset touches, up
//         to KEPT_CONV_BUDGET, stay initializers: copied out of the same streaming pass and handed to ORT as
//         external data at session creation (README "The engine on WebGPU" has the kernel counts).
import { uploadWeights, type WeightPlacement } from '../gpu/upload.ts';
import type { BufferTracker } from '../gpu/tracker.ts';
import type * as OrtCommon from 'onnxruntime-common';
import { KEEP_FILES_SHARE, KEPT_CONV_BUDGET } from '../model/fit.ts';
import { readHeaderLength } from '../lora/safetensors.ts';
import { listedFile, type ModelSource } from '../model/source/source.ts';
import { externalInitializers, externalLocations, readStoredWeight, type ExternalInitializer } from '../onnx/model-io.ts';
import type { ModelProto, TensorProto } from '../onnx/proto.ts';
import type { DenseTensor, OffsetFiles, TouchedTensor } from './offsets.ts';
import { unetGraphFor, type UnetAttention, type WeightMode } from './unet-graph.ts';
import type { Feeds } from './family.ts';
import { denseKey, type GpuTensors } from './weights-gpu.ts';

export type LoadProgress = (message: string, loaded: number, total: number) => void;

/** The graph's external data files whole, by the location strings the graph names them with (ORT's externalData). */
export async function readExternals(source: ModelSource, model: ModelProto, graphPath: string, onProgress?: LoadProgress): Promise<Map<string, Uint8Array>> {
  const folder = graphPath.slice(0, graphPath.lastIndexOf('/') + 1);
  const locations = externalLocations(model);
  const paths = locations.map((location) => folder + location.split('/').filter((segment) => segment !== '.').join('/'));
  const total = paths.reduce((sum, path) => sum + listedFile(source.manifest, path).bytes, 0);
  const externals = new Map<string, Uint8Array>();
  let done = 0;
  for (const [i, path] of paths.entries()) {
    const before = done;
    externals.set(locations[i], await source.read(path, { onBytes: (received) => onProgress?.(`reading ${path}`, before + received, total) }));
    done += listedFile(source.manifest, path).bytes;
  }
  return externals;
}

/**
 * The graph a CPU session is created from for these touched tensors, the UNet's files as its external data, and the
 * touched tensors with θ: copied out of the files (so that they can go once ORT has them) where they are at most
 * KEEP_FILES_SHARE of the files, else views into them (a dense η: a copy would raise the peak and save nothing).
 */
export async function cpuGraph(source: ModelSource, model: ModelProto, graphPath: string, touched: readonly TouchedTensor[], attention?: UnetAttention, onProgress?: LoadProgress) {
  const files = await readExternals(source, model, graphPath, onProgress);
  const initializers = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const views = touched.map((t) => readStoredWeight(initializers.get(t.name)!, files).data);
  const touchedBytes = views.reduce((sum, v) => sum + v.byteLength, 0);
  const copy = touchedBytes <= KEEP_FILES_SHARE * [...files.values()].reduce((sum, f) => sum + f.byteLength, 0);
  const withBase = touched.map((t, i) => ({ ...t, base: copy ? views[i].slice() : views[i] }));
  const externalData: ExternalData = [...files].map(([path, data]) => ({ path, data }));
  return { ...unetGraphFor(model, withBase, [], attention), externalData, touched: withBase };
}

/** Offsets' files read through the source: whole for LoRAs, header only for dense files on the GPU. */
export function offsetFiles(source: ModelSource, gpu: boolean): OffsetFiles {
  return { read: (path) => source.read(path), header: gpu ? (path) => safetensorsHead(source, path) : undefined };
}

/** A safetensors file's first bytes, up to the end of its JSON header, without reading the tensors. */
async function safetensorsHead(source: ModelSource, path: string): Promise<{ bytes: Uint8Array; fileBytes: number }> {
  const fileBytes = listedFile(source.manifest, path).bytes;
  const parts: Uint8Array[] = [];
  let have = 0;
  let need = 8;
  for await (const { bytes } of source.stream(path, { chunkBytes: 1 << 20 })) {
    parts.push(bytes);
    have += bytes.byteLength;
    if (need === 8 && have >= 8) need = 8 + readHeaderLength(concat(parts, have), fileBytes);
    if (have >= need) break; // the rest (the tensors) is streamed to the GPU when merged
  }
  return { bytes: concat(parts, have), fileBytes };
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) (out.set(part, at), (at += part.byteLength));
  return out;
}

/** External initializers as ORT's session creation takes them: a file name per tensor and its bytes. */
export type ExternalData = { path: string; data: Uint8Array }[];

/**
 * The UNet's weights on the GPU: every external initializer in a buffer of its own ("frozen" θ, fed as a graph
 * input) but the kept Conv weights, from which the weight sets take over the tensors η and δ touch (θ_pos is merged
 * over θ in place) and to which a tensor returns, streamed again, once no offset touches it any more.
 */
export interface GpuUnetFiles extends GpuTensors {
  /**
   * The graph a session is created from for these touched tensors, and the external data it needs: the kept Conv
   * weights no touched tensor is among (one that an offset touches later becomes an input for good).
   */
  graph(touched: readonly TouchedTensor[], attention?: UnetAttention): Promise<{ model: ModelProto; mode: WeightMode; externalData: ExternalData }>;
  /** θ of every untouched external initializer fed as an input, as feeds (streamed again where a weight set had taken it). */
  frozenFeeds(ort: Pick<typeof OrtCommon, 'Tensor'>, touched: readonly TouchedTensor[]): Promise<Feeds>;
  /** Names of the Conv weights kept as initializers, and their bytes. */
  kept(): { names: string[]; bytes: number };
}

/**
 * `touched`: what the offsets at load touch; the Conv weights they leave alone are the candidates to keep.
 * `keepBudget`: bytes of Conv weights kept as initializers (0: every weight an input, what the bench compares with).
 */
export async function streamUnetToGpu(device: GPUDevice, tracker: BufferTracker, source: ModelSource, model: ModelProto, graphPath: string, touched: readonly TouchedTensor[], options: { onProgress?: LoadProgress; keepBudget?: number } = {}): Promise<GpuUnetFiles> {
  const { onProgress, keepBudget = KEPT_CONV_BUDGET } = options;
  const initializers = externalInitializers(model, graphPath);
  const byName = new Map(initializers.map((i) => [i.name, i]));
  const inline = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const kept = keptConvWeights(model, initializers, touched, keepBudget);
  const stream = async (placements: WeightPlacement[], owner: string, what: string, copies: WeightPlacement[] = []) => {
    if (placements.length === 0 && copies.length === 0) return { buffers: new Map<string, GPUBuffer>(), copies: new Map<string, Uint8Array>() };
    return uploadWeights(device, source, placements, { tracker, owner, copies, onBytes: (streamed, total) => onProgress?.(`streaming ${what} to the GPU`, streamed, total) });
  };
  const loaded = await stream(initializers.filter((i) => !kept.has(i.name)), 'unet θ', 'the UNet weights', initializers.filter((i) => kept.has(i.name)));
  const held = loaded.buffers;
  /** The kept weights' bytes from the load's pass, handed to the first session and then let go. */
  let keptBytes: Map<string, Uint8Array> | undefined = loaded.copies;
  return {
    async graph(touchedNow, attention) {
      for (const t of touchedNow) kept.delete(t.name);
      const inputs = initializers.filter((i) => !kept.has(i.name)).map((i) => i.name);
      const { model: graph, mode } = unetGraphFor(model, touchedNow, inputs, attention);
      // A later session (other tensors touched) reads the kept weights again: they are not held between sessions.
      const bytes = keptBytes ?? (await stream([], 'unet θ', 'kept weights', [...kept].map((name) => byName.get(name)!))).copies;
      keptBytes = undefined;
      const externalData: ExternalData = [];
      const relocated = new Map<string, TensorProto>();
      for (const [i, name] of [...kept].entries()) {
        const path = `kept-${i}.bin`;
        externalData.push({ path, data: bytes.get(name)! });
        relocated.set(name, externalAt(inline.get(name)!, path, byName.get(name)!.bytes));
      }
      const initializer = (graph.graph?.initializer ?? []).map((t) => relocated.get(t.name ?? '') ?? t);
      return { model: { ...graph, graph: { ...graph.graph, initializer } }, mode, externalData };
    },
    async frozenFeeds(ort, touchedNow) {
      const taken = new Set(touchedNow.map((t) => t.name));
      const missing = initializers.filter((i) => !taken.has(i.name) && !held.has(i.name) && !kept.has(i.name));
      for (const [name, buffer] of (await stream(missing, 'unet θ', 'weights back')).buffers) held.set(name, buffer);
      return Object.fromEntries([...held].filter(([name]) => !taken.has(name)).map(([name, buffer]) => {
        const { dims, dataType } = byName.get(name)!;
        return [name, ort.Tensor.fromGpuBuffer(buffer, { dataType: dataType === 10 ? 'float16' : 'float32', dims })];
      }));
    },
    kept: () => ({ names: [...kept], bytes: [...kept].reduce((sum, name) => sum + byName.get(name)!.bytes, 0) }),
    async theta(tensors) {
      const out = new Map<string, GPUBuffer>();
      const again: WeightPlacement[] = [];
      for (const t of tensors) {
        const buffer = held.get(t.name);
        if (buffer) (out.set(t.name, buffer), held.delete(t.name));
        else if (byName.has(t.name)) again.push(byName.get(t.name)!);
        else {
          // A small weight kept inline in the graph (under the exporter's external-data threshold).
          const { data } = readStoredWeight(inline.get(t.name)!);
          out.set(t.name, tracker.create('weights', data.byteLength, { data, label: `θ ${t.name}` }));
        }
      }
      for (const [name, buffer] of (await stream(again, 'weights', 'θ again')).buffers) out.set(name, buffer);
      return out;
    },
    async dense(tensors: readonly DenseTensor[]) {
      return (await stream(tensors.map((d) => ({ name: denseKey(d), file: d.file, offset: d.offset, bytes: d.byteLength })), 'weights', 'η')).buffers;
    },
  };
}

/**
 * The Conv weights (a Conv node's second input) among the external initializers that no touched tensor is, largest
 * first while their bytes stay within `budget`: ORT's re-layout per call is a pass over the weight, so the largest
 * save the most.
 */
export function keptConvWeights(model: ModelProto, initializers: readonly ExternalInitializer[], touched: readonly TouchedTensor[], budget: number): Set<string> {
  const taken = new Set(touched.map((t) => t.name));
  const convWeights = new Set((model.graph?.node ?? []).filter((n) => n.opType === 'Conv' && n.input?.[1]).map((n) => n.input![1]));
  const candidates = initializers.filter((i) => convWeights.has(i.name) && !taken.has(i.name)).sort((a, b) => b.bytes - a.bytes);
  const kept = new Set<string>();
  let bytes = 0;
  for (const c of candidates) {
    if (bytes + c.bytes > budget) continue;
    kept.add(c.name);
    bytes += c.bytes;
  }
  return kept;
}

/** The initializer with its bytes at the start of external file `path`. */
function externalAt(tensor: TensorProto, path: string, bytes: number): TensorProto {
  return { ...tensor, externalData: [{ key: 'location', value: path }, { key: 'offset', value: '0' }, { key: 'length', value: String(bytes) }] };
}
