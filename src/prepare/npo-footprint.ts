// What η and δ will cost when the prepared model runs (PreparedManifest.npoFootprint, read by src/model/fit.ts): the
// UNet weights they touch, as src/engine/offsets.ts touchedTensors will find them — a LoRA's layers through
// the export's Linear/1×1-Conv sites, a dense η's mapped initializers — counted once however many offsets share them.
import type { LoraSet } from '../lora/types.ts';
import type { NpoFootprint } from '../model/manifest.ts';
import { findLoraSites } from '../onnx/lora-sites.ts';
import type { ModelProto } from '../onnx/proto.ts';
import type { DenseMapping } from './map-dense-eta.ts';

const count = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

export function npoFootprint(
  unet: ModelProto, offsets: { eta: LoraSet[]; delta: LoraSet[]; dense?: DenseMapping[] }, elementBytes: number,
): NpoFootprint | undefined {
  const touched = new Map<string, number>();
  const sites = new Map(findLoraSites(unet, 'all').map((s) => [s.modulePath, s]));
  for (const set of [...offsets.eta, ...offsets.delta]) {
    for (const modulePath of set.entries.keys()) {
      const site = sites.get(modulePath);
      if (site) touched.set(site.weightName, count(site.dims));
    }
  }
  for (const m of offsets.dense ?? []) touched.set(m.initializer, count(m.dims));
  if (touched.size === 0) return undefined;
  const sizes = [...touched.values()];
  return {
    touchedElements: sizes.reduce((a, b) => a + b, 0),
    largestTouchedElements: Math.max(...sizes),
    stacked: !offsets.dense?.length,
    offsetArrays: Number(offsets.eta.length > 0 || !!offsets.dense?.length) + Number(offsets.delta.length > 0),
    elementBytes,
  };
}
