// What a pipeline needs from a tokenizer: the ids the text encoder takes (padded/truncated to the model's length, as
// diffusers calls `tokenizer(prompt, padding="max_length", max_length=…, truncation=True)`), and the prompt's token
// count before truncation without BOS/EOS, for the page's "12/75" counter. src/text/ implements it for CLIP.
// promptTokenizer lives here, apart from the pipelines, so that Node-side training code (src/train) reaches it
// without importing the engines (whose WGSL imports need Vite or scripts/raw-imports.mjs).
import type { PreparedManifest } from '../model/manifest.ts';
import type { ModelSource } from '../model/source/source.ts';
import { createClipTokenizer, TokenizerFilesError, type ClipTokenizer } from '../text/index.ts';
import { jsonLimitProblem } from '../util/json-limits.ts';

/** SD's tokenizer.json is 2.2 MB (49408 tokens, 48894 merges); a bound well above any CLIP vocabulary's file. */
export const MAX_TOKENIZER_JSON_CHARS = 64 << 20;

export interface PromptTokenizer {
  encode(prompt: string): { ids: Int32Array; tokenCount: number; truncated: boolean };
}

/** A CLIP tokenizer of a prepared model (`dir`: SDXL's second one), from tokenizer.json and tokenizer_config.json (no network). */
export function promptTokenizer(manifest: PreparedManifest, files: ReadonlyMap<string, Uint8Array>, dir = manifest.tokenizer.dir): ClipTokenizer {
  const json = (name: string): unknown => {
    const path = `${dir}/${name}`;
    const bytes = files.get(path);
    if (!bytes) throw new TokenizerFilesError(`model file ${path} is missing (prepare-model writes it from the export's ${dir}/)`);
    const text = new TextDecoder().decode(bytes);
    const tooBig = jsonLimitProblem(text, { maxChars: MAX_TOKENIZER_JSON_CHARS });
    if (tooBig) throw new TokenizerFilesError(`${path} is refused: ${tooBig}`);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new TokenizerFilesError(`${path} is not valid JSON: ${(e as Error).message}`);
    }
  };
  return createClipTokenizer(json('tokenizer.json') as Record<string, unknown>, json('tokenizer_config.json') as Record<string, unknown>);
}

/** The files promptTokenizer reads from `dir`, through the model source. */
export async function readTokenizer(source: ModelSource, dir: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (const name of ['tokenizer.json', 'tokenizer_config.json']) files.set(`${dir}/${name}`, await source.read(`${dir}/${name}`));
  return files;
}
