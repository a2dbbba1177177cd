// How the engine reads a UNet export's weights through the model source (src/model/source/), by residency
// (DESIGN decision 7: a weight's road):
//   CPU   the external data files whole, handed to ORT as external data (the WASM heap or onnxruntime-node holds them);
//   GPU   every external initializer streamed into a GPU buffer of its own in bounded chunks (src/gpu/upload.ts): the
//         graph takes them as inputs fed with Tensor.fromGpuBuffer, so neither JS nor ORT's WASM heap holds a shard and
//         a UNet over ORT-web's 4 GB wall loads. Dense offsets (a DPO UNet's θ_dpo − θ) are streamed the same way;
//         only their safetensors headers are read into JS.
import { uploadWeights, type WeightPlacement } from '../gpu/upload.ts';
import type { BufferTracker } from '../gpu/tracker.ts';
import { readHeaderLength } from '../lora/safetensors.ts';
import { listedFile, type ModelSource } from '../model/source/source.ts';
import { externalInitializers, externalLocations, readStoredWeight } from '../onnx/model-io.ts';
import type { ModelProto } from '../onnx/proto.ts';
import type { DenseTensor, OffsetFiles, TouchedTensor } from './offsets.ts';
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

/**
 * The UNet's weights on the GPU: every external initializer in a buffer of its own ("frozen" θ, fed as a graph
 * input), from which the weight sets take over the tensors η and δ touch (θ_pos is merged over θ in place) and to
 * which a tensor returns, streamed again, once no offset touches it any more.
 */
export interface GpuUnetFiles extends GpuTensors {
  /** External initializers' names: the graph takes all of them as inputs. */
  names: string[];
  /** θ of every untouched external initializer, by name (streamed again where a weight set had taken it). */
  frozen(touched: readonly TouchedTensor[]): Promise<Map<string, GPUBuffer>>;
}

export async function streamUnetToGpu(device: GPUDevice, tracker: BufferTracker, source: ModelSource, model: ModelProto, graphPath: string, onProgress?: LoadProgress): Promise<GpuUnetFiles> {
  const initializers = externalInitializers(model, graphPath);
  const byName = new Map(initializers.map((i) => [i.name, i]));
  const inline = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const stream = async (placements: WeightPlacement[], owner: string, what: string) => {
    if (placements.length === 0) return new Map<string, GPUBuffer>();
    const { buffers } = await uploadWeights(device, source, placements, { tracker, owner, onBytes: (streamed, total) => onProgress?.(`streaming ${what} to the GPU`, streamed, total) });
    return buffers;
  };
  const held = await stream(initializers, 'unet θ', 'the UNet weights');
  return {
    names: initializers.map((i) => i.name),
    async frozen(touched) {
      const taken = new Set(touched.map((t) => t.name));
      const missing = initializers.filter((i) => !taken.has(i.name) && !held.has(i.name));
      for (const [name, buffer] of await stream(missing, 'unet θ', 'weights back')) held.set(name, buffer);
      return new Map([...held].filter(([name]) => !taken.has(name)));
    },
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
      for (const [name, buffer] of await stream(again, 'weights', 'θ again')) out.set(name, buffer);
      return out;
    },
    async dense(tensors: readonly DenseTensor[]) {
      return stream(tensors.map((d) => ({ name: denseKey(d), file: d.file, offset: d.offset, bytes: d.byteLength })), 'weights', 'η');
    },
  };
}
