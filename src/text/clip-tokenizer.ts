// The CLIP tokenizer at run time, the same code in Node and in the browser worker: @huggingface/tokenizers (pure JS,
// the tokenizer transformers.js itself uses, without its ONNX runtime) loaded from the objects given, never from the
// network. `encode` gives what diffusers' pipelines feed the text encoder:
// `tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True)`:
// BOS, at most max_length − 2 prompt tokens, EOS, then the config's pad token up to max_length.
// diffusers' CLIPTokenizer is the slow one, which first runs ftfy.fix_text over the prompt (fix-text.ts does the part
// that matters for prompts); `{ fixText: false }` gives the fast tokenizer's ids (CLIPTokenizerFast, transformers.js).
import { Tokenizer } from '@huggingface/tokenizers';
import { checkTokenizerJson } from './check-tokenizer-json.ts';
import { fixTextLikeFtfy } from './fix-text.ts';
import { checkMaxLength, TokenizerFilesError, tokenContent, type ClipTokenizerConfig, type TokenizerJson } from './tokenizer-files.ts';

export interface ClipEncoding {
  /** BOS, prompt tokens, EOS, padding: exactly maxLength ids. */
  ids: Int32Array;
  /** Prompt tokens without BOS/EOS, before truncation (the page's "12/75" counter). */
  tokenCount: number;
  /** The prompt had more than maxLength − 2 tokens; the tail was dropped. */
  truncated: boolean;
}

export interface ClipTokenizer {
  /** model_max_length of the config (77 for SD1.5 and SDXL). */
  readonly maxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  encode(prompt: string): ClipEncoding;
}

/** The markers CLIP's split regex itself knows (tokenization_clip.py `self.pat`). */
const CLIP_MARKERS = new Set(['<|startoftext|>', '<|endoftext|>']);

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function parseAddedTokens(value: unknown): { id: number; content: string }[] {
  if (!Array.isArray(value)) throw new TokenizerFilesError('tokenizer.json "added_tokens" must be an array');
  return value.map((t, i) => {
    const { id, content } = (t ?? {}) as { id?: unknown; content?: unknown };
    if (typeof content !== 'string' || content === '' || typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw new TokenizerFilesError(`tokenizer.json "added_tokens"[${i}] needs a non-empty string "content" and a non-negative integer "id"`);
    }
    return { id, content };
  });
}

function requireObject(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TokenizerFilesError(`${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** The library's own refusals (an unknown component type, a missing field) as TokenizerFilesError. */
function loadTokenizer(json: Record<string, unknown>, config: Record<string, unknown>): Tokenizer {
  try {
    return new Tokenizer(json, config);
  } catch (e) {
    throw new TokenizerFilesError(`tokenizer.json cannot be loaded: ${e instanceof Error ? e.message : 'unknown error'}`);
  }
}

/**
 * A CLIP tokenizer from a fast `tokenizer.json` object and its `tokenizer_config.json` object (the one
 * `buildTokenizerConfig` writes, or an SD repository's own, whose special tokens may be serialised AddedTokens).
 * BOS, EOS and padding come from the config, so SDXL's second tokenizer pads with its own "!" (id 0).
 */
export function createClipTokenizer(
  tokenizerJson: TokenizerJson | Record<string, unknown>,
  tokenizerConfig: ClipTokenizerConfig | Record<string, unknown>,
  options: { fixText?: boolean } = {},
): ClipTokenizer {
  const fixText = options.fixText ?? true;
  const json = requireObject(tokenizerJson, 'tokenizer.json');
  const config = requireObject(tokenizerConfig, 'tokenizer_config.json');
  checkTokenizerJson(json);

  const maxLength = checkMaxLength(config.model_max_length);
  const added = parseAddedTokens(json.added_tokens);
  // fixText (diffusers' slow tokenizer, tokenization_utils.py `tokenize`): split the raw prompt on the special tokens
  // exactly as typed, then ftfy-fix and tokenize each piece between them. Inside a piece only CLIP's two markers are
  // special (they are in its split regex, matched after lowercasing); another special token such as SDXL's "!" pad is
  // ordinary text there, so a full-width "！" becomes "!" and then "!</w>", as in Python.
  const tokenizer = loadTokenizer(fixText ? { ...json, added_tokens: added.filter((t) => CLIP_MARKERS.has(t.content)) } : json, config);
  const addedIds = new Map(added.map((t) => [t.content, t.id]));
  const splitter = new RegExp(`(${added.map((t) => escapeRegExp(t.content)).sort((a, b) => b.length - a.length).join('|')})`);
  const idOf = (key: 'bos_token' | 'eos_token' | 'pad_token'): number => {
    const content = tokenContent(config[key], `tokenizer_config.json "${key}"`);
    if (content === undefined) throw new TokenizerFilesError(`tokenizer_config.json has no "${key}"`);
    const id = tokenizer.token_to_id(content);
    if (id === undefined) throw new TokenizerFilesError(`the ${key} ${JSON.stringify(content)} is not in the tokenizer's vocabulary`);
    return id;
  };
  const bosId = idOf('bos_token');
  const eosId = idOf('eos_token');
  const padId = idOf('pad_token');
  const room = maxLength - 2;

  function slowOrderIds(prompt: string): number[] {
    const pieces = added.length > 0 ? prompt.split(splitter) : [prompt];
    return pieces.flatMap((piece, i) => {
      if (i % 2 === 1) return [addedIds.get(piece)!]; // split() puts the captured special tokens at odd indices
      return piece === '' ? [] : tokenizer.encode(fixTextLikeFtfy(piece), { add_special_tokens: false }).ids;
    });
  }

  function encode(prompt: string): ClipEncoding {
    if (typeof prompt !== 'string') throw new TypeError(`a prompt must be a string, got ${typeof prompt}`);
    const body = fixText ? slowOrderIds(prompt) : tokenizer.encode(prompt, { add_special_tokens: false }).ids;
    const kept = Math.min(body.length, room);
    const ids = new Int32Array(maxLength).fill(padId);
    ids[0] = bosId;
    for (let i = 0; i < kept; i++) ids[1 + i] = body[i];
    ids[1 + kept] = eosId;
    return { ids, tokenCount: body.length, truncated: body.length > room };
  }

  return { maxLength, bosId, eosId, padId, encode };
}
