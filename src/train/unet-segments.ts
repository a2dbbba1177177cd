// Where the DPO graph's policy UNet is cut for activation checkpointing (src/onnx/autodiff/checkpoint.ts), from the
// module paths torch's exporter keeps in node names (`/down_blocks.1/attentions.0/...`, DESIGN §4):
//   blocks  one segment per UNet block: down_blocks.N, mid_block, up_blocks.N (coarse: fewest values kept, the
//           largest recomputation alive at once);
//   layers  one segment per resnet, transformer (attentions.M), down- or upsampler inside those blocks (finer: more
//           boundaries kept, less recomputed at a time).
// Only the policy copy is cut: the reference copy has no backward pass, its values are freed as it runs.
export const CHECKPOINT_MODES = ['off', 'blocks', 'layers'] as const;
export type CheckpointMode = (typeof CHECKPOINT_MODES)[number];
/** What a person asks for: a mode, or 'auto' (none when the memory plan fits, else the coarsest that fits). */
export type CheckpointChoice = 'auto' | CheckpointMode;
export const CHECKPOINT_CHOICES: readonly CheckpointChoice[] = ['auto', ...CHECKPOINT_MODES];

const BLOCK = /^policy\/(down_blocks\.\d+|mid_block|up_blocks\.\d+)\//;
const LAYER = /^policy\/((?:down_blocks\.\d+|mid_block|up_blocks\.\d+)\/(?:resnets|attentions|downsamplers|upsamplers)\.\d+)\//;

/** The segment of a node of the DPO training graph, by its name, or null (not checkpointed); null for 'off'. */
export function unetSegmentOf(mode: CheckpointMode): ((nodeName: string) => string | null) | undefined {
  if (mode === 'off') return undefined;
  const pattern = mode === 'blocks' ? BLOCK : LAYER;
  return (name) => pattern.exec(name)?.[1] ?? null;
}
