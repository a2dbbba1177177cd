// An ONNX graph of a prepared model (manifest OnnxComponent) as an ORT session, with its weight shards handed over as
// ORT external data. The graph names each shard relative to its own folder (ORT resolves `location` that way), while
// the manifest lists paths relative to the model directory: `unet/weights-00.bin` is `weights-00.bin` to the graph.
import type * as OrtCommon from 'onnxruntime-common';
import type { OnnxComponent } from '../model/manifest.ts';
import type { ModelSource } from '../model/source/source.ts';

export type Ort = Pick<typeof OrtCommon, 'InferenceSession' | 'Tensor'>;

/** The component's external data files, keyed by the location strings its graph uses. */
export function componentFiles(component: OnnxComponent, files: ReadonlyMap<string, Uint8Array>): Map<string, Uint8Array> {
  const folder = component.file.includes('/') ? component.file.slice(0, component.file.lastIndexOf('/') + 1) : '';
  return new Map(component.externalData.map((path) => {
    const data = files.get(path);
    if (!data) throw new Error(`model file ${path} (external data of ${component.file}) is listed in the manifest but was not loaded`);
    return [path.startsWith(folder) ? path.slice(folder.length) : path, data];
  }));
}

export async function createComponentSession(ort: Ort, component: OnnxComponent, files: ReadonlyMap<string, Uint8Array>, options?: OrtCommon.InferenceSession.SessionOptions) {
  const graph = files.get(component.file);
  if (!graph) throw new Error(`model file ${component.file} is listed in the manifest but was not loaded`);
  const externalData = [...componentFiles(component, files)].map(([path, data]) => ({ path, data }));
  return ort.InferenceSession.create(graph, { ...options, externalData });
}

/** A component's graph and external data through the model source, whole (ORT takes them as its external data). */
export async function readComponent(source: ModelSource, component: OnnxComponent): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (const path of [component.file, ...component.externalData]) files.set(path, await source.read(path));
  return files;
}
