// Checks a fast `tokenizer.json` before @huggingface/tokenizers builds from it. The file is user input (a prepared
// model directory, or an export's own tokenizer.json that prepare-model keeps), and the library trusts it: merges that
// are not strings throw TypeError deep inside, unknown component types throw plain Error, and every regular expression
// in it runs on every prompt, so a hostile pattern such as `(a+)+$` would stall the worker (ReDoS). Here the BPE
// model's data is checked field by field, and only the regular expressions CLIP tokenizers use are accepted.
import { CLIP_SPLIT_PATTERN, TokenizerFilesError } from './tokenizer-files.ts';

/** Far above CLIP's 49408 tokens and 48894 merges; bounds what a hostile file makes the library allocate. */
export const MAX_VOCAB = 1 << 20;

/**
 * The patterns CLIP tokenizers carry: ours (tokenizer-files.ts), the one in the published openai/clip-vit-* and
 * SDXL tokenizer.json files (the same classes with the two markers first), and the normalizer's whitespace run.
 */
export const CLIP_REGEXES = new Set([
  CLIP_SPLIT_PATTERN,
  String.raw`<\|startoftext\|>|<\|endoftext\|>|` + CLIP_SPLIT_PATTERN,
  String.raw`\s+`,
]);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v.slice(0, 60)) : typeof v === 'number' ? String(v) : Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v);

/** Every `{ "Regex": … }` pattern in the file's components (depth is bounded by the JSON limits before parsing). */
function regexes(value: unknown, out: unknown[] = []): unknown[] {
  if (Array.isArray(value)) for (const v of value) regexes(v, out);
  else if (isRecord(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'Regex') out.push(v);
      else regexes(v, out);
    }
  }
  return out;
}

function checkVocab(vocab: unknown): void {
  if (!isRecord(vocab)) throw new TokenizerFilesError(`tokenizer.json "model.vocab" is ${show(vocab)}, expected an object of token ids`);
  const entries = Object.entries(vocab);
  if (entries.length === 0 || entries.length > MAX_VOCAB) throw new TokenizerFilesError(`tokenizer.json "model.vocab" has ${entries.length} tokens; expected 1 to ${MAX_VOCAB}`);
  const seen = new Set<number>();
  for (const [token, id] of entries) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0 || id >= MAX_VOCAB) {
      throw new TokenizerFilesError(`tokenizer.json "model.vocab": the id of ${show(token)} is ${show(id)}, expected an integer in [0, ${MAX_VOCAB})`);
    }
    if (seen.has(id)) throw new TokenizerFilesError(`tokenizer.json "model.vocab": id ${id} is given to two tokens (one is ${show(token)})`);
    seen.add(id);
  }
}

/** Merges as the library reads them: all "a b" strings, or all [a, b] pairs (it decides by the first one). */
function checkMerges(merges: unknown): void {
  if (!Array.isArray(merges) || merges.length > MAX_VOCAB) throw new TokenizerFilesError(`tokenizer.json "model.merges" is ${show(merges)}, expected at most ${MAX_VOCAB} merges`);
  const pairs = Array.isArray(merges[0]);
  merges.forEach((m, i) => {
    const ok = pairs ? Array.isArray(m) && m.length === 2 && m.every((s) => typeof s === 'string' && s !== '') : typeof m === 'string' && /^[^ ]+ [^ ]+$/.test(m);
    if (!ok) throw new TokenizerFilesError(`tokenizer.json "model.merges"[${i}] is ${show(m)}, expected ${pairs ? 'two tokens' : 'two tokens separated by one space'} like the merges before it`);
  });
}

/** Throws TokenizerFilesError naming the first field of `json` a CLIP BPE tokenizer cannot be built from. */
export function checkTokenizerJson(json: Record<string, unknown>): void {
  const model = json.model;
  if (!isRecord(model)) throw new TokenizerFilesError(`tokenizer.json "model" is ${show(model)}, expected the BPE model`);
  if (model.type !== 'BPE') throw new TokenizerFilesError(`tokenizer.json: a CLIP tokenizer is BPE, this one is ${show(model.type)}`);
  checkVocab(model.vocab);
  checkMerges(model.merges);
  for (const key of ['unk_token', 'end_of_word_suffix', 'continuing_subword_prefix', 'continuing_subword_suffix'] as const) {
    const v = model[key];
    if (v !== undefined && v !== null && typeof v !== 'string') throw new TokenizerFilesError(`tokenizer.json "model.${key}" is ${show(v)}, expected a string`);
  }
  for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder'] as const) {
    const v = json[key];
    if (v !== null && !isRecord(v)) throw new TokenizerFilesError(`tokenizer.json "${key}" is ${show(v)}, expected an object or null`);
  }
  for (const pattern of regexes([json.normalizer, json.pre_tokenizer, json.post_processor, json.decoder])) {
    if (typeof pattern !== 'string' || !CLIP_REGEXES.has(pattern)) {
      throw new TokenizerFilesError(`tokenizer.json has the regular expression ${show(pattern)}, not one of CLIP's (its patterns run on every prompt, so only CLIP's own are accepted)`);
    }
  }
}
