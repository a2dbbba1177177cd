// Mapping a diffusers UNet's parameters (e.g. DPO-SD1.5's `diffusion_pytorch_model.safetensors`) onto the
// initializers of an ONNX export of the same architecture, so a dense η = θ_dpo − θ can be written per initializer.
// Torch's exporter (DESIGN §4) keeps the diffusers names of convs, biases and LayerNorms, but makes anonymous ones:
//   - Linear weight [out, in]  → `onnx::MatMul_N` [in, out] (transposed), found through the MatMul node's name
//     (`/…/attn1/to_q/MatMul`), as src/onnx/lora-sites.ts finds LoRA sites (Gemm with transB keeps [out, in]);
//   - GroupNorm weight / bias [C] → `onnx::Mul_N` / `onnx::Add_N` [C, 1, 1], the Mul / Add nodes under the norm's
//     module path (`/…/resnets.0/norm1/Mul`), after the InstanceNormalization the exporter lowers GroupNorm to.
// A parameter that maps nowhere, a shape that differs, or two parameters on one initializer is an error naming both.
import { findLoraSites, modulePathOfNode } from '../onnx/lora-sites.ts';
import { OnnxError, int, type ModelProto, type TensorProto } from '../onnx/proto.ts';

export type MapRule = 'name' | 'linear' | 'norm';

export interface DenseMapping {
  /** The diffusers parameter name (`down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight`). */
  key: string;
  keyShape: number[];
  initializer: string;
  dims: number[];
  dataType: number;
  rule: MapRule;
  /** 'transpose': the initializer holds the parameter transposed ([in, out] for [out, in]). */
  layout: 'same' | 'transpose';
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
/** [C] against [C, 1, 1]: the same values, broadcast-shaped. */
const sameUpToTrailingOnes = (param: readonly number[], init: readonly number[]) =>
  init.length >= param.length && param.every((d, i) => d === init[i]) && init.slice(param.length).every((d) => d === 1);

function splitParam(key: string): { module: string; param: string } {
  const dot = key.lastIndexOf('.');
  return dot < 0 ? { module: '', param: key } : { module: key.slice(0, dot), param: key.slice(dot + 1) };
}

/** For each module path, the initializer inputs of its Mul and Add nodes (GroupNorm's affine, torch export). */
function normInitializers(model: ModelProto, inits: Map<string, TensorProto>): Map<string, { Mul: string[]; Add: string[] }> {
  const out = new Map<string, { Mul: string[]; Add: string[] }>();
  for (const node of model.graph?.node ?? []) {
    if (node.opType !== 'Mul' && node.opType !== 'Add') continue;
    const module = modulePathOfNode(node.name ?? '');
    if (!module) continue;
    for (const input of node.input ?? []) {
      if (!inits.has(input)) continue;
      const entry = out.get(module) ?? { Mul: [], Add: [] };
      entry[node.opType].push(input);
      out.set(module, entry);
    }
  }
  return out;
}

/**
 * Maps every `params` entry (name → shape, torch layout) onto `model`'s initializers. Throws OnnxError listing up to
 * five problems (each naming the parameter and the initializer it met) when any parameter does not map.
 */
export function mapDenseEta(model: ModelProto, params: ReadonlyMap<string, readonly number[]>): DenseMapping[] {
  const inits = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const dimsOf = (name: string) => (inits.get(name)?.dims ?? []).map(int);
  const sites = new Map(findLoraSites(model, 'all').map((s) => [s.modulePath, s]));
  const norms = normInitializers(model, inits);
  const problems: string[] = [];
  const mappings: DenseMapping[] = [];
  const make = (key: string, keyShape: readonly number[], initializer: string, rule: MapRule, layout: 'same' | 'transpose'): DenseMapping => ({
    key, keyShape: [...keyShape], initializer, dims: dimsOf(initializer), dataType: inits.get(initializer)!.dataType ?? 0, rule, layout,
  });

  for (const [key, shape] of params) {
    if (inits.has(key)) {
      if (sameShape(shape, dimsOf(key))) mappings.push(make(key, shape, key, 'name', 'same'));
      else problems.push(`${key} ${shapeText(shape)} has the export's initializer ${key} of shape ${shapeText(dimsOf(key))}`);
      continue;
    }
    const { module, param } = splitParam(key);
    const site = sites.get(module);
    if (param === 'weight' && site) {
      const torchShape = site.opType === 'Conv' ? [site.outFeatures, site.inFeatures, 1, 1] : [site.outFeatures, site.inFeatures];
      if (!sameShape(shape, torchShape)) {
        problems.push(`${key} ${shapeText(shape)} meets ${site.weightName} ${shapeText(site.dims)} (node ${site.nodeName}, a [${site.outFeatures} out, ${site.inFeatures} in] weight)`);
      } else {
        mappings.push(make(key, shape, site.weightName, 'linear', site.layout === 'in-out' ? 'transpose' : 'same'));
      }
      continue;
    }
    const candidates = norms.get(module)?.[param === 'weight' ? 'Mul' : param === 'bias' ? 'Add' : 'Mul'] ?? [];
    const fits = (param === 'weight' || param === 'bias') ? candidates.filter((c) => sameUpToTrailingOnes(shape, dimsOf(c))) : [];
    if (fits.length === 1) {
      mappings.push(make(key, shape, fits[0], 'norm', 'same'));
    } else if (fits.length > 1) {
      problems.push(`${key} ${shapeText(shape)} fits ${fits.length} initializers under /${module.replaceAll('.', '/')}/ (${fits.join(', ')}); cannot tell which`);
    } else if (candidates.length > 0) {
      problems.push(`${key} ${shapeText(shape)} meets ${candidates.map((c) => `${c} ${shapeText(dimsOf(c))}`).join(', ')} (nodes under /${module.replaceAll('.', '/')}/)`);
    } else {
      problems.push(`${key} ${shapeText(shape)} maps to no initializer of the export (no initializer of that name, no MatMul/Gemm/1×1 Conv or norm Mul/Add node under /${module.replaceAll('.', '/')}/)`);
    }
  }

  const owner = new Map<string, string>();
  for (const m of mappings) {
    const other = owner.get(m.initializer);
    if (other) problems.push(`${other} and ${m.key} both map onto initializer ${m.initializer}`);
    owner.set(m.initializer, m.key);
  }
  if (problems.length > 0) {
    const more = problems.length > 5 ? `\n  … and ${problems.length - 5} more` : '';
    throw new OnnxError(`${problems.length} of ${params.size} UNet parameters do not map onto the export:\n  ${problems.slice(0, 5).join('\n  ')}${more}`);
  }
  return mappings;
}

/** How many parameters each rule mapped (for the report). */
export function countRules(mappings: readonly DenseMapping[]): Record<MapRule, number> {
  const counts: Record<MapRule, number> = { name: 0, linear: 0, norm: 0 };
  for (const m of mappings) counts[m.rule]++;
  return counts;
}

/** A torch-layout parameter's values in the initializer's layout (a transposed copy for MatMul weights). */
export function toInitializerLayout(m: DenseMapping, values: Float32Array): Float32Array {
  if (m.layout === 'same') return values;
  const [out, inF] = m.keyShape;
  const t = new Float32Array(values.length);
  for (let o = 0; o < out; o++) for (let i = 0; i < inF; i++) t[i * out + o] = values[o * inF + i];
  return t;
}
