// What a pipeline needs from a tokenizer: the ids the text encoder takes (padded/truncated to the model's length, as
// diffusers calls `tokenizer(prompt, padding="max_length", max_length=…, truncation=True)`), and the prompt's token
// count before truncation without BOS/EOS, for the page's "12/75" counter. src/text/ implements it for CLIP.
// promptTokenizer lives here, apart from the pipelines, so that Node-side training code (src/train) reaches it
// without importing the engines (whose WGSL imports need Vite or scripts/raw-imports.mjs).
import type { PreparedManifest } from '../model/manifest.ts';
import { createClipTokenizer } from '../text/index.ts';
export interface PromptTokenizer {
  encode(prompt: string): { ids: Int32Array; tokenCount: number; truncated: boolean };
}

/** A CLIP tokenizer of a prepared model (`dir`: SDXL's second one), from tokenizer.json and tokenizer_config.json (no network). */
export function promptTokenizer(manifest: PreparedManifest, files: ReadonlyMap<string, Uint8Array>, dir = manifest.tokenizer.dir): PromptTokenizer {
  const json = (name: string) => {
    const path = `${dir}/${name}`;
    const bytes = files.get(path);
    if (!bytes) throw new Error(`model file ${path} is missing (prepare-model writes it from the export's ${dir}/)`);
    return JSON.parse(new TextDecoder().decode(bytes));
  };
  return createClipTokenizer(json('tokenizer.json'), json('tokenizer_config.json'));
}
