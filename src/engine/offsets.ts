// η and δ as the engine holds them (paper Eq. 10: θ_pos = θ + η, θ_neg = θ + α·η + β·δ), and the UNet tensors they
// touch. An offset is either a stack of LoRAs, each with its scale (Σ sᵢ·ΔWᵢ, as diffusers' set_adapters weighs
// adapters), or dense: a full fine-tune's θ_dpo − θ per tensor (DPO-SD1.5), read from safetensors shards.
// Per touched tensor each offset becomes a TensorOffset, the LoRA terms that land on it or where the dense tensor's
// bytes are: the CPU merge makes values from it one tensor at a time (weights-cpu.ts, the file in memory), the GPU
// merge takes factors as they are and dense tensors streamed from the file into GPU buffers (weights-gpu.ts, nothing
// of a dense file held in JS). No path holds a LoRA's dense ΔW beyond the tensor being merged.
import { loraDeltaWeight, parseLora } from '../lora/formats.ts';
import { decodeTensorBytes, DTYPE_BYTES, parseSafetensorsHeader, readHeaderLength, type SafetensorsDtype } from '../lora/safetensors.ts';
import type { LoraEntry, LoraSet, LoraTarget } from '../lora/types.ts';
import type { LoraOffset, PreparedOffset } from '../model/manifest.ts';
import type { LoraSite } from '../onnx/lora-sites.ts';
import { readStoredWeight } from '../onnx/model-io.ts';
import { int, type ModelProto } from '../onnx/proto.ts';
import type { LoraRole } from '../worker/protocol.ts';

type Files = ReadonlyMap<string, Uint8Array>;

/** η or δ as loaded (undefined: none, θ + 0). */
export type Offset = { kind: 'lora'; parts: { set: LoraSet; scale: number }[] } | { kind: 'dense'; tensors: Map<string, DenseTensor> } | undefined;

/**
 * A dense offset's tensor: where its bytes are in its safetensors file (a manifest path), and on the CPU a view of
 * them (nothing decoded until merged).
 */
export interface DenseTensor { file: string; offset: number; byteLength: number; dtype: SafetensorsDtype; length: number; bytes?: Uint8Array }

/** What one offset adds to one tensor: LoRA terms (each ΔW = scale·up·down in the site's layout), or a dense tensor. */
export type TensorOffset = { kind: 'lora'; terms: { entry: LoraEntry; scale: number }[]; layout: LoraSite['layout'] } | { kind: 'dense'; tensor: DenseTensor };

/** Element type of a float weight as the graph takes it. */
export type FloatType = 'float32' | 'float16';
/** Weight values in the graph's element type: float32, or float16 as IEEE half bits. */
export type WeightValues = Float32Array | Uint16Array;

/** One UNet tensor that η or δ touches: θ as the file stores it and what each offset adds. */
export interface TouchedTensor {
  name: string;
  dims: number[];
  /** Elements of the tensor. */
  length: number;
  /** CPU: θ as the file stores it (a view of its bytes where aligned; never modified), in the element type `type`. */
  base?: WeightValues;
  type: FloatType;
  eta?: TensorOffset;
  delta?: TensorOffset;
  /** Set when the tensor is a Linear/1×1-Conv weight the stacking pass can rewrite. */
  site?: LoraSite;
}

export const roleName = (role: LoraRole) => (role === 'eta' ? 'η' : 'δ');

/** ONNX element types a weight may have here: FLOAT (1) and FLOAT16 (10). */
export function floatTypeOf(dataType: number, name: string): FloatType {
  if (dataType === 1) return 'float32';
  if (dataType === 10) return 'float16';
  throw new Error(`weight ${name} has ONNX element type ${dataType}; float32 and float16 weights are supported`);
}

/** How offsets' files are read: whole (LoRA files; dense ones on the CPU), or only their header (dense ones on the GPU). */
export interface OffsetFiles {
  read(path: string): Promise<Uint8Array>;
  /** The file's first bytes, at least its safetensors header; with it, dense files are not read whole. */
  header?(path: string): Promise<{ bytes: Uint8Array; fileBytes: number }>;
}

/** A manifest's η or δ (prepared models: LoRA, stack or dense; the embedded model: one LoRA file). */
export async function readOffset(entry: PreparedOffset | { file: string } | undefined, files: OffsetFiles, targets: readonly LoraTarget[]): Promise<Offset> {
  if (!entry) return undefined;
  const part = async (lora: Pick<LoraOffset, 'file' | 'scale'>) => ({ set: parseLora(await files.read(lora.file), targets), scale: lora.scale ?? 1 });
  if (!('kind' in entry) || entry.kind === 'lora') return { kind: 'lora', parts: [await part(entry)] };
  if (entry.kind === 'stack') return { kind: 'lora', parts: await Promise.all(entry.parts.map(part)) };
  const tensors = new Map<string, DenseTensor>();
  for (const path of entry.files) {
    const { bytes, fileBytes } = files.header ? await files.header(path) : await files.read(path).then((b) => ({ bytes: b, fileBytes: b.byteLength }));
    const dataStart = 8 + readHeaderLength(bytes, fileBytes);
    if (dataStart > bytes.byteLength) throw new Error(`${path}: its safetensors header (${dataStart} bytes) was not read whole`);
    for (const e of parseSafetensorsHeader(bytes.subarray(8, dataStart), fileBytes - dataStart).entries) {
      const [offset, byteLength] = [dataStart + e.begin, e.end - e.begin];
      const whole = !files.header;
      tensors.set(e.name, { file: path, offset, byteLength, dtype: e.dtype, length: byteLength / DTYPE_BYTES[e.dtype], bytes: whole ? bytes.subarray(offset, offset + byteLength) : undefined });
    }
  }
  return { kind: 'dense', tensors };
}

/**
 * Every UNet tensor η or δ changes; with `externals` (the CPU), θ as the file stores it. A LoRA lands on the site of
 * its module path; a dense tensor on the initializer of its name. Lengths are checked against the weight so a
 * mismatched file fails here.
 */
export function touchedTensors(model: ModelProto, sites: readonly LoraSite[], offsets: { eta: Offset; delta: Offset }, externals?: Files): TouchedTensor[] {
  const siteByWeight = new Map(sites.map((s) => [s.weightName, s]));
  const siteByModule = new Map(sites.map((s) => [s.modulePath, s]));
  const initializers = new Map((model.graph!.initializer ?? []).map((t) => [t.name ?? '', t]));
  const byName = new Map<string, TouchedTensor>();
  const tensor = (name: string, role: LoraRole) => {
    let t = byName.get(name);
    if (!t) {
      const initializer = initializers.get(name);
      if (!initializer) throw new Error(`${roleName(role)} names tensor ${name}, which the UNet graph does not have`);
      const dims = (initializer.dims ?? []).map(int);
      const type = floatTypeOf(initializer.dataType ?? 0, name);
      const base = externals ? readStoredWeight(initializer, externals).data : undefined;
      byName.set(name, (t = { name, dims, length: dims.reduce((a, b) => a * b, 1), base, site: siteByWeight.get(name), type }));
    }
    return t;
  };
  const checked = (t: TouchedTensor, role: LoraRole, length: number) => {
    if (length !== t.length) throw new Error(`${roleName(role)} for ${t.name} has ${length} values, the weight [${t.dims.join(', ')}] has ${t.length}`);
  };
  for (const role of ['eta', 'delta'] as const) {
    const offset = offsets[role];
    if (offset?.kind === 'dense') {
      for (const [name, dense] of offset.tensors) {
        const t = tensor(name, role);
        checked(t, role, dense.length);
        t[role] = { kind: 'dense', tensor: dense };
      }
    }
    if (offset?.kind === 'lora') {
      const terms = new Map<TouchedTensor, { entry: LoraEntry; scale: number }[]>();
      for (const { set, scale } of offset.parts) {
        for (const [modulePath, entry] of set.entries) {
          const site = siteByModule.get(modulePath)!;
          const t = tensor(site.weightName, role);
          checked(t, role, entry.inFeatures * entry.outFeatures);
          terms.set(t, [...(terms.get(t) ?? []), { entry, scale }]);
        }
      }
      for (const [t, list] of terms) t[role] = { kind: 'lora', terms: list, layout: t.site!.layout };
    }
  }
  return [...byName.values()];
}

/** An offset's values for one tensor in the weight's layout: Σ sᵢ·ΔWᵢ of its LoRA terms, or the dense tensor decoded. */
export function offsetValues(offset: TensorOffset): Float32Array {
  if (offset.kind === 'dense') {
    if (!offset.tensor.bytes) throw new Error(`dense offset ${offset.tensor.file}@${offset.tensor.offset}: its bytes were not read (GPU residency)`);
    return decodeTensorBytes(offset.tensor.bytes, offset.tensor.dtype);
  }
  const [first, ...rest] = offset.terms;
  const sum = loraDeltaWeight({ ...first.entry, scale: first.entry.scale * first.scale }, offset.layout);
  for (const { entry, scale } of rest) {
    const values = loraDeltaWeight({ ...entry, scale: entry.scale * scale }, offset.layout);
    for (let i = 0; i < sum.length; i++) sum[i] += values[i];
  }
  return sum;
}

/** "dense" or the LoRAs with their scales, for the page: "1× diffusers LoRA (136 layers) + 0.8× diffusers LoRA (40 layers)". */
export function describeOffset(offset: Offset): string | undefined {
  if (!offset) return undefined;
  if (offset.kind === 'dense') return `dense (${offset.tensors.size} tensors)`;
  return offset.parts.map(({ set, scale }) => `${scale}× ${set.format} LoRA (${set.entries.size} layers)`).join(' + ');
}
