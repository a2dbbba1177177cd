// The checks `npm run train` and the worker's training run on preference pairs (src/train/pairs.ts: every field of
// every pair, each image's size and bytes, the prompt against the embedded model's tokenizer), run on the page when a
// pair source is chosen, so that a file that parses but cannot be trained on is refused then, naming the pair and the
// field, instead of at Train. What only the training run can know (a prepared model's memory plan, its VAE's size
// factor) is still checked at Train.
import { tokenize } from '../embedded/tokenizer.ts';
import { decodePairs, parsePairs, parsePairsAtOwnSize, type PairsFile, type ParsePairsOptions } from '../train/pairs.ts';
import type { ModelInfo } from '../worker/protocol.ts';

/** Pairs as the panel holds them: a pairs.json's text, or a source prepared into a pairs file. */
export type CheckedPairs = { json: string } | { file: PairsFile };

/**
 * Decodes every pair as training would on `model` and returns how many there are; throws the trainer's PairsError.
 * `resolution`: a prepared model's chosen training side (else it trains at the pairs file's own size).
 */
export function checkPairs(pairs: CheckedPairs, model: ModelInfo, resolution?: number): number {
  if (model.kind === 'sd15' || model.kind === 'sdxl') {
    // As src/worker/training.ts: the chosen resolution, else the file's own size; SD prompts are truncated, never refused.
    const sizeFor = (width: number, height: number) => (resolution ? { width: resolution, height: resolution } : { width, height });
    if ('json' in pairs) return parsePairsAtOwnSize(pairs.json, sizeFor).length;
    return decodePairs(pairs.file, sizeFor(pairs.file.width, pairs.file.height)).length;
  }
  // From the model's 'ready', not asked of the worker: a worker that crashes mid-question would leave it unanswered.
  const length = model.contextLength;
  if (!length) throw new Error(`the model ${model.name} does not say its text encoder's context length`);
  const options: ParsePairsOptions = { width: model.width, height: model.height, checkPrompt: (prompt) => void tokenize(prompt, length) };
  return ('json' in pairs ? parsePairs(pairs.json, options) : decodePairs(pairs.file, options)).length;
}
