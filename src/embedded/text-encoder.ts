// The embedded text encoder: CLIP's text transformer in miniature (token + position embeddings, pre-norm transformer
// layers, final LayerNorm), same input/output names as a CLIP text-encoder export: `input_ids` → `last_hidden_state`.
import { createGraphBuilder } from '../onnx/builder.ts';
import { DataType, type ModelProto } from '../onnx/proto.ts';
import { attention, gelu, layerNorm, linear, type Layers, type ParamSource } from './layers.ts';
import { VOCABULARY } from './tokenizer.ts';

export interface TextEncoderConfig { vocabSize: number; contextLength: number; hiddenSize: number; layers: number; heads: number }

export const TINY_TEXT_ENCODER: TextEncoderConfig = { vocabSize: VOCABULARY.length, contextLength: 16, hiddenSize: 64, layers: 1, heads: 2 };

export function buildTextEncoder(config: TextEncoderConfig, params: ParamSource): ModelProto {
  const g = createGraphBuilder('text_encoder');
  const l: Layers = { g, params };
  const { vocabSize, contextLength, hiddenSize: d } = config;
  const ids = g.input('input_ids', DataType.INT64, ['batch', contextLength]);
  let h = g.scope('text_model', () => g.scope('embeddings', () => {
    const table = g.scope('token_embedding', () => g.initializer('text_model.embeddings.token_embedding.weight', [vocabSize, d], params.get('text_model.embeddings.token_embedding.weight', [vocabSize, d], { kind: 'normal', std: 0.5 })));
    const positions = g.initializer('text_model.embeddings.position_embedding.weight', [1, contextLength, d], params.get('text_model.embeddings.position_embedding.weight', [1, contextLength, d], { kind: 'normal', std: 0.1 }));
    return g.op('Add', [g.op('Gather', [table, ids], { axis: 0 }), positions]);
  }));
  g.scope('text_model', () => g.scope('encoder', () => {
    for (let i = 0; i < config.layers; i++) {
      h = g.scope(`layers.${i}`, () => {
        const attended = g.op('Add', [attention(l, 'self_attn', layerNorm(l, 'layer_norm1', h, d), undefined, d, d, config.heads), h]);
        const normed = layerNorm(l, 'layer_norm2', attended, d);
        const mlp = g.scope('mlp', () => linear(l, 'fc2', gelu(l, linear(l, 'fc1', normed, d, 4 * d)), 4 * d, d));
        return g.op('Add', [mlp, attended]);
      });
    }
  }));
  const out = g.scope('text_model', () => layerNorm(l, 'final_layer_norm', h, d));
  g.node('Identity', [out], {}, { outputs: ['last_hidden_state'] });
  g.output('last_hidden_state', DataType.FLOAT, ['batch', contextLength, d]);
  return g.build();
}
