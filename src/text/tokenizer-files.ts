// The CLIP tokenizer as files: turns the slow-tokenizer files Stable Diffusion repositories ship in `tokenizer/`
// (`vocab.json`, `merges.txt`, `tokenizer_config.json`, `special_tokens_map.json`) into the fast `tokenizer.json`
// that @huggingface/tokenizers loads, with the structure transformers' own CLIPConverter writes
// (transformers/convert_slow_tokenizer.py): NFC + `\s+`→" " + lowercase normalizer, CLIP's split regex then ByteLevel
// pre-tokenizer, BPE with the `</w>` end-of-word suffix, BOS/EOS post-processing, ByteLevel decoder.
// prepare-model calls `buildTokenizerFiles` and writes both objects beside the model. The files are user input: every
// field is checked and a bad one is named in the error.

import { jsonLimitProblem } from '../util/json-limits.ts';

/** A special token as configs store it: a plain string, or a serialised `AddedToken` (`{ content, … }`). */
export type TokenValue = string | { content: string; [key: string]: unknown };

/** What the tokenizer reads from `tokenizer_config.json` (after special_tokens_map.json is applied). */
export interface ClipTokenizerConfig {
  tokenizer_class: string;
  model_max_length: number;
  bos_token: string;
  eos_token: string;
  unk_token: string;
  pad_token: string;
  /** Decoding only (@huggingface/tokenizers' `decode`); CLIP's slow tokenizer cleans up spaces. */
  clean_up_tokenization_spaces: boolean;
}

/** The contents of the slow-tokenizer files: JSON files as text or already parsed, merges.txt as text. */
export interface ClipTokenizerSourceFiles {
  vocab: string | Record<string, unknown>;
  merges: string;
  tokenizerConfig?: string | Record<string, unknown>;
  specialTokensMap?: string | Record<string, unknown>;
}

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The fast-tokenizer file (`tokenizer.json`, format 1.0) for CLIP; only the fields this module writes are typed. */
export interface TokenizerJson {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: Record<string, unknown>;
  pre_tokenizer: Record<string, unknown>;
  post_processor: Record<string, unknown>;
  decoder: Record<string, unknown>;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: string;
    continuing_subword_prefix: string;
    end_of_word_suffix: string;
    fuse_unk: boolean;
    byte_fallback: boolean;
    vocab: Record<string, number>;
    merges: string[];
  };
}

export class TokenizerFilesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerFilesError';
  }
}

/**
 * CLIP's split pattern without the special-token alternatives (those are added tokens in the fast tokenizer), as
 * CLIPConverter writes it; the slow tokenizer (tokenization_clip.py) uses the same classes.
 */
export const CLIP_SPLIT_PATTERN = String.raw`'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`;

/**
 * The slow CLIPTokenizer reads at most 49152 − 256 − 2 merges (tokenization_clip.py: `[1 : 49152 - 256 - 2 + 1]`
 * after the `#version` line); the fast file holds exactly the merges the slow tokenizer ranks.
 */
export const CLIP_MAX_MERGES = 49152 - 256 - 2;

/** CLIPTokenizer's defaults (tokenization_clip.py `__init__`), used where neither file names a token. */
const CLIP_DEFAULT_TOKENS = {
  bos_token: '<|startoftext|>',
  eos_token: '<|endoftext|>',
  unk_token: '<|endoftext|>',
  pad_token: '<|endoftext|>',
} as const;

type TokenKey = keyof typeof CLIP_DEFAULT_TOKENS;
const TOKEN_KEYS = Object.keys(CLIP_DEFAULT_TOKENS) as TokenKey[];

/** SD's vocab.json is 1 MB and merges.txt 0.5 MB; a bound far above any CLIP tokenizer's files. */
export const MAX_TOKENIZER_FILE_CHARS = 64 << 20;

function parseJsonObject(value: string | Record<string, unknown> | undefined, file: string): Record<string, unknown> {
  if (value === undefined) return {};
  let parsed: unknown = value;
  if (typeof value === 'string') {
    const tooBig = jsonLimitProblem(value, { maxChars: MAX_TOKENIZER_FILE_CHARS });
    if (tooBig) throw new TokenizerFilesError(`${file} is refused: ${tooBig}`);
    try {
      parsed = JSON.parse(value);
    } catch (e) {
      throw new TokenizerFilesError(`${file} is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new TokenizerFilesError(`${file} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** A special token's text from a string or a serialised AddedToken; undefined when absent or null. */
export function tokenContent(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  throw new TokenizerFilesError(`${where} must be a string or an object with a string "content"`);
}

function parseVocab(value: ClipTokenizerSourceFiles['vocab']): Record<string, number> {
  const raw = parseJsonObject(value, 'vocab.json');
  const vocab: Record<string, number> = Object.create(null);
  const seen = new Map<number, string>();
  for (const [token, id] of Object.entries(raw)) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw new TokenizerFilesError(`vocab.json: the id of ${JSON.stringify(token)} must be a non-negative integer, got ${JSON.stringify(id)}`);
    }
    const other = seen.get(id);
    if (other !== undefined) {
      throw new TokenizerFilesError(`vocab.json: id ${id} is given to both ${JSON.stringify(other)} and ${JSON.stringify(token)}`);
    }
    seen.set(id, token);
    vocab[token] = id;
  }
  if (seen.size === 0) throw new TokenizerFilesError('vocab.json is empty');
  return vocab;
}

/**
 * merges.txt as the slow tokenizer reads it: strip, split on "\n", drop the first (`#version`) line, keep at most
 * CLIP_MAX_MERGES lines, split each on whitespace into a pair. Both halves and their concatenation must be in the
 * vocabulary (the fast tokenizer refuses merges outside it).
 */
function parseMerges(text: string, vocab: Record<string, number>): string[] {
  if (typeof text !== 'string') throw new TokenizerFilesError('merges.txt must be text');
  if (text.length > MAX_TOKENIZER_FILE_CHARS) throw new TokenizerFilesError(`merges.txt is ${text.length} characters long, more than the limit of ${MAX_TOKENIZER_FILE_CHARS}`);
  const lines = text.trim().split('\n');
  if (!lines[0]?.startsWith('#version')) {
    throw new TokenizerFilesError(`merges.txt: the first line must be the "#version" header, got ${JSON.stringify(lines[0]?.slice(0, 40))}`);
  }
  const body = lines.slice(1, CLIP_MAX_MERGES + 1);
  return body.map((line, i) => {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 2 || parts[0] === '') {
      throw new TokenizerFilesError(`merges.txt line ${i + 2}: expected two tokens separated by a space, got ${JSON.stringify(line.slice(0, 80))}`);
    }
    for (const token of [parts[0], parts[1], parts[0] + parts[1]]) {
      if (!(token in vocab)) {
        throw new TokenizerFilesError(`merges.txt line ${i + 2}: ${JSON.stringify(token)} is not in vocab.json`);
      }
    }
    return `${parts[0]} ${parts[1]}`;
  });
}

/**
 * The tokenizer config the fast tokenizer runs with: tokenizer_config.json, overridden by special_tokens_map.json
 * (as transformers' `from_pretrained` applies them), then CLIPTokenizer's defaults; special tokens as plain strings.
 */
export function buildTokenizerConfig(files: Pick<ClipTokenizerSourceFiles, 'tokenizerConfig' | 'specialTokensMap'>): ClipTokenizerConfig {
  const config = parseJsonObject(files.tokenizerConfig, 'tokenizer_config.json');
  const map = parseJsonObject(files.specialTokensMap, 'special_tokens_map.json');
  const tokens = {} as Record<TokenKey, string>;
  for (const key of TOKEN_KEYS) {
    const fromMap = tokenContent(map[key], `special_tokens_map.json "${key}"`);
    const fromConfig = tokenContent(config[key], `tokenizer_config.json "${key}"`);
    tokens[key] = fromMap ?? fromConfig ?? CLIP_DEFAULT_TOKENS[key];
  }
  const maxLength = checkMaxLength(config.model_max_length ?? 77);
  const cls = config.tokenizer_class ?? 'CLIPTokenizer';
  if (typeof cls !== 'string' || !/^CLIPTokenizer(Fast)?$/.test(cls)) {
    throw new TokenizerFilesError(`tokenizer_config.json "tokenizer_class" is ${JSON.stringify(cls)}; only CLIPTokenizer is supported`);
  }
  return { tokenizer_class: 'CLIPTokenizer', model_max_length: maxLength, ...tokens, clean_up_tokenization_spaces: true };
}

/** model_max_length: BOS + EOS at least; a bound that keeps a hostile config from allocating without limit. */
export function checkMaxLength(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 2 || value > 4096) {
    throw new TokenizerFilesError(`tokenizer_config.json "model_max_length" must be an integer in [2, 4096], got ${JSON.stringify(value)}`);
  }
  return value;
}

function addedToken(id: number, content: string): AddedTokenJson {
  // normalized: true, as in the published CLIP tokenizer.json: the slow tokenizer lowercases the text and still finds
  // "<|endoftext|>" (its split regex is case-insensitive), so the fast one must match after lowercasing too.
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true };
}

/** The fast `tokenizer.json` object for a CLIP tokenizer given as slow-tokenizer files. */
export function buildTokenizerJson(files: ClipTokenizerSourceFiles): TokenizerJson {
  const vocab = parseVocab(files.vocab);
  const merges = parseMerges(files.merges, vocab);
  const config = buildTokenizerConfig(files);
  const idOf = (key: TokenKey): number => {
    const id = vocab[config[key]];
    if (id === undefined) throw new TokenizerFilesError(`the ${key} ${JSON.stringify(config[key])} is not in vocab.json`);
    return id;
  };
  const [bos, eos] = [idOf('bos_token'), idOf('eos_token')];
  idOf('unk_token');
  idOf('pad_token');
  // The slow tokenizer splits every special token of its config out of the text before BPE (the added-tokens trie),
  // the pad token too: SDXL's second tokenizer pads with "!", so a typed "!" there is id 0, not "!</w>" (256).
  const specials = new Map<string, number>();
  for (const key of TOKEN_KEYS) specials.set(config[key], vocab[config[key]]);
  const added = [...specials].sort((a, b) => a[1] - b[1]).map(([content, id]) => addedToken(id, content));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: String.raw`\s+` }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT_PATTERN }, behavior: 'Removed', invert: true },
        // use_regex as the converter writes it; on pieces CLIP's split already made, GPT-2's regex splits nothing more.
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    // CLIPConverter writes RobertaProcessing (its "hack to have a ByteLevel and TemplateProcessor"): <bos> A <eos>.
    post_processor: {
      type: 'RobertaProcessing',
      sep: [config.eos_token, eos],
      cls: [config.bos_token, bos],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: config.unk_token,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab: { ...vocab },
      merges,
    },
  };
}

/** Both files prepare-model writes: `tokenizer.json` and `tokenizer_config.json`. */
export function buildTokenizerFiles(files: ClipTokenizerSourceFiles): { tokenizerJson: TokenizerJson; tokenizerConfig: ClipTokenizerConfig } {
  return { tokenizerJson: buildTokenizerJson(files), tokenizerConfig: buildTokenizerConfig(files) };
}
