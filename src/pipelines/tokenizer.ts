// What a pipeline needs from a tokenizer: the ids the text encoder takes (padded/truncated to the model's length, as
// diffusers calls `tokenizer(prompt, padding="max_length", max_length=…, truncation=True)`), and the prompt's token
// count before truncation without BOS/EOS, for the page's "12/75" counter. src/text/ implements it for CLIP.
export interface PromptTokenizer {
  encode(prompt: string): { ids: Int32Array; tokenCount: number; truncated: boolean };
}
