// The base model's training graph (issue 5, item 2): text encoder → UNet → MSE to the v target, as one ONNX graph whose
// weights are all graph inputs (the loss is the MSE to `target`: v for the v-prediction base model, see base-data.ts), plus the gradient of the loss w.r.t. every weight from our autodiff
// (src/onnx/autodiff). Inputs: input_ids [B, L] int64, sample (= x_t) [B, 3, S, S], timestep [B], target (= v)
// [B, 3, S, S], loss_weight [B] (a per-sample weight, Min-SNR: base-data.ts), and one input per weight, named as in the
// inference models; outputs: loss and `<weight>_grad`.
import { paramSource } from '../embedded/layers.ts';
import { buildTextEncoder, TINY_TEXT_ENCODER, type TextEncoderConfig } from '../embedded/text-encoder.ts';
import { buildUnet, TINY_UNET, type UnetConfig } from '../embedded/unet.ts';
import { buildGradientModel } from '../onnx/autodiff/index.ts';
import { valueInfo } from '../onnx/builder.ts';
import { readWeight, writeModel } from '../onnx/model-io.ts';
import { initializersToInputs } from '../onnx/passes/initializers-to-inputs.ts';
import { DataType, type GraphProto, type ModelProto, type NodeProto } from '../onnx/proto.ts';
import { makeTensor } from '../onnx/tensor.ts';

export const UNET_SEED = 1234;
export const TEXT_ENCODER_SEED = 99;

export interface BaseModels { unet: ModelProto; textEncoder: ModelProto; unetWeights: string[]; textEncoderWeights: string[] }

/** The inference models, with trained weights by name where given (seeded initial values elsewhere). */
export function buildBaseModels(trained: ReadonlyMap<string, Float32Array> = new Map(), unetConfig: UnetConfig = TINY_UNET, teConfig: TextEncoderConfig = TINY_TEXT_ENCODER): BaseModels {
  const unetParams = paramSource(UNET_SEED, trained);
  const teParams = paramSource(TEXT_ENCODER_SEED, trained);
  const unet = buildUnet(unetConfig, unetParams);
  const textEncoder = buildTextEncoder(teConfig, teParams);
  return { unet, textEncoder, unetWeights: unetParams.names, textEncoderWeights: teParams.names };
}

/**
 * Splices the text encoder in front of the UNet: its `last_hidden_state` becomes the UNet's `encoder_hidden_states`.
 * Text-encoder value and node names that are not weights get a `te` prefix, so the two graphs cannot collide.
 */
function splice(unet: GraphProto, te: GraphProto, weights: Set<string>): GraphProto {
  const rename = (name: string) => (name === 'input_ids' || weights.has(name) || name === '' ? name : name === 'last_hidden_state' ? 'encoder_hidden_states' : `te${name}`);
  const teNodes: NodeProto[] = (te.node ?? []).map((n) => ({ ...n, name: `te${n.name}`, input: (n.input ?? []).map(rename), output: (n.output ?? []).map(rename) }));
  const teInit = (te.initializer ?? []).map((t) => ({ ...t, name: rename(t.name ?? '') }));
  return {
    ...unet,
    name: 'text_encoder_unet',
    node: [...teNodes, ...(unet.node ?? [])],
    input: [...(te.input ?? []), ...(unet.input ?? []).filter((i) => i.name !== 'encoder_hidden_states')],
    initializer: [...teInit, ...(unet.initializer ?? [])],
  };
}

/** loss = mean(loss_weight[b]·(out_sample − target)²) over every element (DDPM's simple loss, v target, weighted). */
function appendLoss(graph: GraphProto, sampleShape: number[]): GraphProto {
  const node = (opType: string, input: string[], output: string, attribute: NodeProto['attribute'] = []): NodeProto => ({ name: output, opType, input, output: [output], attribute, domain: '' });
  return {
    ...graph,
    node: [
      ...(graph.node ?? []),
      node('Sub', ['out_sample', 'target'], '/loss/diff'),
      node('Mul', ['/loss/diff', '/loss/diff'], '/loss/sq'),
      node('Reshape', ['loss_weight', '/loss/weight_shape'], '/loss/weight'),
      node('Mul', ['/loss/sq', '/loss/weight'], '/loss/weighted'),
      node('ReduceMean', ['/loss/weighted'], 'loss', [{ name: 'keepdims', type: 2, i: 0 }]),
    ],
    initializer: [...(graph.initializer ?? []), makeTensor('/loss/weight_shape', [4], new BigInt64Array([-1n, 1n, 1n, 1n]))],
    input: [...(graph.input ?? []), valueInfo('target', DataType.FLOAT, ['batch', ...sampleShape]), valueInfo('loss_weight', DataType.FLOAT, ['batch'])],
    output: [valueInfo('loss', DataType.FLOAT, [])],
  };
}

export interface TrainingGraph {
  /** ONNX bytes of the forward + gradient graph. */
  bytes: Uint8Array;
  /** Every trainable weight, name → initial value (from `trained` where given). */
  weights: Map<string, Float32Array>;
  weightDims: Map<string, number[]>;
}

export function buildTrainingGraph(trained: ReadonlyMap<string, Float32Array> = new Map(), unetConfig: UnetConfig = TINY_UNET): TrainingGraph {
  const models = buildBaseModels(trained, unetConfig);
  const names = [...models.textEncoderWeights, ...models.unetWeights];
  const weightSet = new Set(names);
  const graph = appendLoss(splice(models.unet.graph!, models.textEncoder.graph!, weightSet), [unetConfig.inChannels, unetConfig.sampleSize, unetConfig.sampleSize]);
  const { model, promoted } = initializersToInputs({ ...models.unet, graph }, names);
  const weights = new Map(promoted.map((p) => [p.name, readWeight(p.tensor).data.slice()]));
  const weightDims = new Map(promoted.map((p) => [p.name, p.dims]));
  const bytes = buildGradientModel(writeModel(model), { loss: 'loss', wrt: names });
  return { bytes, weights, weightDims };
}

export { makeTensor };
