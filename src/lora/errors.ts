// Error type for everything in src/lora: safetensors parsing, LoRA key mapping and serialization.
// `code` lets callers (worker, UI) branch without matching message text; the message is for people.

export type LoraErrorCode =
  | 'safetensors' // the container itself is malformed (truncated, bad header, bad offsets, bad dtype ...)
  | 'format' // no LoRA keys, mixed key formats, unsupported LoRA variant (LoHa, LoKr, DoRA, k×k conv ...)
  | 'unmatched' // keys that match no target weight of the graph
  | 'shape' // down/up shape does not fit the target, or rank mismatch between down and up
  | 'missing' // a down without its up (or the reverse)
  | 'value' // NaN / Inf in a tensor, bad alpha
  | 'argument'; // bad input from our own code (targets, LoraSet to serialize)

export class LoraError extends Error {
  readonly code: LoraErrorCode;
  constructor(message: string, code: LoraErrorCode) {
    super(message);
    this.name = 'LoraError';
    this.code = code;
  }
}
