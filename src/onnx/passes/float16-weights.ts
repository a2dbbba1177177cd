// Frozen weights stored as float16 in a float32 graph (issue 14: "fp16 weights with fp32 LoRA and optimizer state"):
// every large float32 initializer becomes a float16 one, and every node that reads it reads its own
// Cast(to = float32) of it instead, so the graph computes in float32 on weights rounded to float16 (round to nearest
// even, clamped to ±65504 as prepare-model's float16 conversion does) while storing them in half the bytes.
// Three things keep the saving real (measured: scripts/bench-fp16-weights.ts):
//   - one Cast per reading node, never one per weight: in a training graph the backward pass reads the weights the
//     forward pass read (MatMul's dX = dY·Wᵀ, Conv's ConvTranspose(dY, W)); a shared float32 copy would stay alive from
//     the forward read to the last backward one, a float32 copy of nearly every weight at the peak;
//   - the Casts are listed first in the graph: onnxruntime's default order is a depth-first walk from the leaves that
//     visits a node's producers highest index first (src/onnx/execution-memory.ts), so a Cast with the lowest index is
//     run last among its reader's producers, just before the reader, and its float32 output is freed right after;
//   - onnxruntime's ConstantFolding (level basic and up) folds each Cast of an initializer back into a float32
//     initializer at session creation (measured: the optimised model holds only float32 weights and 3 of 800 Casts),
//     and CommonSubexpressionElimination would merge the Casts of one weight into a single long-lived one: sessions of
//     such graphs disable both (FLOAT16_WEIGHTS_SESSION_EXTRA: ORT's session config key
//     optimization.disable_specified_optimizers, a list separated by ';' — a ',' list is silently ignored by ORT
//     1.30 — passed by onnxruntime-web and -node as `extra`), and ReshapeFusion, which in ORT 1.30 fails on the DPO
//     graph without ConstantFolding ("Attempting to get index by a name which does not exist: …/Shape_output_0").
// Kept in float32: scalars and short vectors (fewer than MIN_FLOAT16_ELEMENTS values: epsilons, Resize scales, loss
// constants), and what nodes of a float32 island read: the UNet's sinusoidal /time_proj/ (as in prepare-model's
// float16 graphs: in float16, 981·freq would be off by up to 0.5 rad) and SDXL's /add_time_proj/ of the time ids
// (sizes up to 1024), which diffusers' Timesteps also computes in float32.
// The converted weights move to one external data file (64-byte aligned, like externalizeWeights), whose bytes
// `file(files)` writes from the original initializers, inline or external.
// Browser code (the worker trains with it): nothing from src/prepare, whose streaming reader needs node:fs.
import { floatToHalf } from '../../lora/float16.ts';
import { readStoredWeight, type ExternalFiles } from '../model-io.ts';
import { DataType, OnnxError, int, onnx, type ModelProto, type NodeProto, type TensorProto } from '../proto.ts';

export const MIN_FLOAT16_ELEMENTS = 16;
/** Node name parts of float32 islands (src/prepare/float16-graph.ts's FLOAT32_ISLANDS, and SDXL's add_time_proj). */
const ISLANDS = ['/time_proj/', '/add_time_proj/'];
const HALF_MAX = 65504;
export const FLOAT16_WEIGHTS_FILE = 'weights-fp16.bin';
/** Session options `extra` for graphs with float16 weights (see the header): merge into the session's own `extra`. */
export const FLOAT16_WEIGHTS_SESSION_EXTRA = { optimization: { disable_specified_optimizers: 'ConstantFolding;CommonSubexpressionElimination;ReshapeFusion' } };

export interface Float16Weights {
  model: ModelProto;
  /** The initializers now stored as float16. */
  converted: string[];
  /** The external data file's name and size in bytes. */
  location: string;
  bytes: number;
  /** The file's bytes: every converted weight in float16, read from `files` (the original model's external data). */
  file(files?: ExternalFiles): Uint8Array;
}

const elements = (t: TensorProto) => (t.dims ?? []).map(int).reduce((a, b) => a * b, 1);

export function storeWeightsAsFloat16(model: ModelProto, location = FLOAT16_WEIGHTS_FILE): Float16Weights {
  const graph = model.graph!;
  const nodes = graph.node ?? [];
  if (nodes.some((n) => (n.attribute ?? []).some((a) => a.g || a.graphs?.length))) throw new OnnxError('float16 weights: graphs with subgraphs are not supported');
  const pinned = new Set([...(graph.input ?? []), ...(graph.output ?? [])].map((v) => v.name));
  for (const n of nodes) if (ISLANDS.some((island) => n.name?.includes(island))) (n.input ?? []).forEach((x) => pinned.add(x));
  const originals = new Map<string, TensorProto>();
  let size = 0;
  const initializer = (graph.initializer ?? []).map((t) => {
    const name = t.name ?? '';
    if (t.dataType !== DataType.FLOAT || elements(t) < MIN_FLOAT16_ELEMENTS || pinned.has(name) || originals.has(name)) return t;
    originals.set(name, t);
    const offset = Math.ceil(size / 64) * 64;
    size = offset + 2 * elements(t);
    return {
      name, dims: t.dims, dataType: DataType.FLOAT16, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [{ key: 'location', value: location }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(2 * elements(t)) }],
    } satisfies TensorProto;
  });

  const casts: NodeProto[] = [];
  const rewritten = nodes.map((node) => {
    const own = new Map<string, string>();
    const input = (node.input ?? []).map((x) => {
      if (!originals.has(x)) return x;
      if (!own.has(x)) {
        const out = `${x}::f32#${casts.length}`;
        own.set(x, out);
        casts.push({ name: `${node.name ?? ''}/float16_weight_cast_${own.size}`, opType: 'Cast', input: [x], output: [out], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: DataType.FLOAT }] });
      }
      return own.get(x)!;
    });
    return own.size ? { ...node, input } : node;
  });

  const converted = [...originals.keys()];
  return {
    model: { ...model, graph: { ...graph, node: [...casts, ...rewritten], initializer } },
    converted, location, bytes: size,
    file(files = new Map()) {
      const out = new Uint8Array(size);
      initializer.forEach((t) => {
        const original = originals.get(t.name ?? '');
        if (!original || t.dataType !== DataType.FLOAT16) return;
        const { data } = readStoredWeight(original, files);
        const offset = Number(t.externalData!.find((e) => e.key === 'offset')!.value);
        out.set(new Uint8Array(toHalf(data as Float32Array).buffer), offset);
      });
      return out;
    },
  };
}

/** float32 → float16 bits, rounded to nearest even and clamped to ±65504 (as prepare-model's floatBytesToHalf). */
function toHalf(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = floatToHalf(Number.isNaN(v) ? v : Math.max(-HALF_MAX, Math.min(HALF_MAX, v)));
  }
  return out;
}
