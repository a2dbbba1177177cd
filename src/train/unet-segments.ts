// Where the DPO graph's policy UNet is cut for activation checkpointing (src/onnx/autodiff/checkpoint.ts), from the
// module paths torch's exporter keeps in node names (`/down_blocks.1/attentions.0/...`, DESIGN §4):
//   blocks  one segment per UNet block: down_blocks.N, mid_block, up_blocks.N (coarse: fewest values kept, the
//           largest recomputation alive at once);
//   layers  one segment per resnet, transformer (attentions.M), down- or upsampler inside those blocks (finer: more
//           boundaries kept, less recomputed at a time).
// Only the policy copy is cut: the reference copy has no backward pass, its values are freed as it runs.
// Attention computed in query chunks (src/onnx/passes/chunk-attention.ts) is cut at every chunk, whatever the mode:
// each chunk's scores and softmax are recomputed just before its own backward nodes, as xformers' and PyTorch's
// memory-efficient attention recompute them, so no chunk's scores outlive its forward or its backward.
export const CHECKPOINT_MODES = ['off', 'blocks', 'layers'] as const;
export type CheckpointMode = (typeof CHECKPOINT_MODES)[number];
/** What a person asks for: a mode, or 'auto' (none when the memory plan fits, else the coarsest that fits). */
export type CheckpointChoice = 'auto' | CheckpointMode;
export const CHECKPOINT_CHOICES: readonly CheckpointChoice[] = ['auto', ...CHECKPOINT_MODES];

const BLOCK = /^policy\/(down_blocks\.\d+|mid_block|up_blocks\.\d+)\//;
const LAYER = /^policy\/((?:down_blocks\.\d+|mid_block|up_blocks\.\d+)\/(?:resnets|attentions|downsamplers|upsamplers)\.\d+)\//;

const CHUNK = /^(policy\/.*_chunked\/\d+)\//;

/**
 * The segment of a node of the DPO training graph, by its name, or null (not checkpointed): its attention chunk where
 * `chunkedAttention`, else its block or layer; undefined when nothing is cut ('off' without chunks).
 */
export function unetSegmentOf(mode: CheckpointMode, chunkedAttention = false): ((nodeName: string) => string | null) | undefined {
  const pattern = mode === 'off' ? undefined : mode === 'blocks' ? BLOCK : LAYER;
  if (!pattern && !chunkedAttention) return undefined;
  return (name) => (chunkedAttention ? CHUNK.exec(name)?.[1] : undefined) ?? pattern?.exec(name)?.[1] ?? null;
}
