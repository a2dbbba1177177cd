// Fuzz targets for the CLIP tokenizer files a model directory brings (Node only):
//   tokenizer-slow  vocab.json + merges.txt + tokenizer_config.json + special_tokens_map.json through
//                   buildTokenizerFiles (what prepare-model converts), then the result loaded and used  TokenizerFilesError
//   tokenizer-json  tokenizer.json + tokenizer_config.json through promptTokenizer (what the worker loads from a
//                   prepared directory), then prompts encoded                                          TokenizerFilesError
// The seeds are a real CLIP tokenizer cut down to its first SEED_MERGES merges: the full 49408-token vocabulary made
// every input cost a 1.5 MB JSON mutation and a 48894-merge BPE build (~0.5 s), the cut one keeps the same structure
// (byte alphabet, `</w>` tokens, merge-ranked words, special tokens, AddedToken configs) at a few ms an input.
import { readFileSync } from 'node:fs';
import type { PreparedManifest } from '../model/manifest.ts';
import { promptTokenizer } from '../pipelines/tokenizer.ts';
import { buildTokenizerFiles, createClipTokenizer, TokenizerFilesError, type ClipTokenizer } from '../text/index.ts';
import { invariant } from './invariant.ts';
import { mutateBytes, mutateJsonText, pick, type Random } from './mutate.ts';
import type { FuzzTarget, Parts } from './targets.ts';

/** Merges kept from the real merges.txt: enough for common words to merge into whole-word tokens. */
const SEED_MERGES = 400;
/** CLIP's vocabulary starts with the 256 byte symbols and the same 256 with `</w>`; merge i makes token 512 + i. */
const BYTE_TOKENS = 512;

const fixture = (path: string) => readFileSync(new URL(`../../fixtures/${path}`, import.meta.url), 'utf8');
const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Prompts every accepted tokenizer must encode: words, specials typed in the text, odd Unicode, a long one. */
const PROMPTS = ['a photo of an astronaut riding a horse', 'HELLO   world!!', '<|startoftext|>x<|endoftext|>', 'ｆｕｌｌ　ｗｉｄｔｈ ！ café', '\ud800 lone surrogate', 'the '.repeat(100)];

function memo<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

/** The SD1.5 fixture tokenizer cut to SEED_MERGES merges, its special tokens renumbered right after them. */
const smallSlowFiles = memo(() => {
  const vocab = JSON.parse(fixture('sd15/export-diffusers/tokenizer/vocab.json')) as Record<string, number>;
  const lines = fixture('sd15/export-diffusers/tokenizer/merges.txt').trim().split('\n');
  const merges = lines.slice(1, SEED_MERGES + 1);
  const small: Record<string, number> = {};
  for (const [token, id] of Object.entries(vocab)) if (id < BYTE_TOKENS + merges.length) small[token] = id;
  small['<|startoftext|>'] = BYTE_TOKENS + merges.length;
  small['<|endoftext|>'] = BYTE_TOKENS + merges.length + 1;
  return { vocab: JSON.stringify(small), merges: `${lines[0]}\n${merges.join('\n')}\n` };
});

/** An absent optional file is an empty part (buildTokenizerFiles then uses CLIPTokenizer's defaults). */
const optional = (b: Uint8Array | undefined) => (b && b.length > 0 ? text(b) : undefined);

const slowSeeds = memo((): Parts[] => {
  const { vocab, merges } = smallSlowFiles();
  const sd15 = (name: string) => fixture(`sd15/export-diffusers/tokenizer/${name}`);
  const sdxl2 = (name: string) => fixture(`sdxl/export-optimum/tokenizer_2/${name}`);
  return [
    [vocab, merges, sd15('tokenizer_config.json'), sd15('special_tokens_map.json')],
    [vocab, merges, sdxl2('tokenizer_config.json'), sdxl2('special_tokens_map.json')], // pads with "!"
    [vocab, merges, '', ''],
  ].map((files) => files.map(utf8));
});

const jsonSeeds = memo((): Parts[] =>
  slowSeeds().slice(0, 2).map(([vocab, merges, config, map]) => {
    const { tokenizerJson, tokenizerConfig } = buildTokenizerFiles({ vocab: text(vocab), merges: text(merges), tokenizerConfig: optional(config), specialTokensMap: optional(map) });
    return [utf8(JSON.stringify(tokenizerJson)), utf8(JSON.stringify(tokenizerConfig))];
  }));

/** Line-level damage to merges.txt: the slow tokenizer's own format (header, one "a b" pair a line, ranked). */
function mutateMerges(r: Random, merges: string): string {
  const lines = merges.split('\n');
  const at = 1 + r.int(Math.max(1, lines.length - 1));
  const line = lines[at] ?? 'a b';
  const choices: (() => void)[] = [
    () => lines.splice(at, 1),
    () => lines.splice(0, 1), // no #version header
    () => lines.splice(at, 0, line, line), // duplicate merge
    () => lines.reverse(),
    () => (lines[at] = pick(r, ['', ' ', 'a', 'a b c', '\tb', 'zz qq', '\u0000 \u0000', 'a\u00a0b', `${'x'.repeat(100_000)} y`, `${line}\r`, line.replace(' ', '  '), line.split(' ').reverse().join(' ')])),
    () => lines.push(...Array.from({ length: pick(r, [1000, 60_000]) }, () => line)), // more than CLIP_MAX_MERGES
    () => (lines[0] = pick(r, ['#version: 9', '#', 'version: 0.2', '\ufeff#version: 0.2'])),
  ];
  pick(r, choices)();
  return lines.join(pick(r, ['\n', '\n', '\n', '\r\n']));
}

function mutateParts(r: Random, parts: Parts, mergesAt: number): Parts {
  const out = parts.slice();
  const i = r.int(out.length);
  if (r.int(10) === 0) out[i] = mutateBytes(r, out[i]);
  else if (i === mergesAt) out[i] = utf8(mutateMerges(r, text(out[i])));
  else if (out[i].length === 0) out[i] = utf8(pick(r, ['{}', '[]', 'null', '{"model_max_length": 100000}', '{"pad_token": "nope"}']));
  else out[i] = utf8(mutateJsonText(r, text(out[i])));
  if (r.int(12) === 0) out[r.int(out.length)] = new Uint8Array(0); // a file missing
  return out;
}

/** What an accepted tokenizer must give: maxLength ids of its own vocabulary, framed by BOS … EOS, then padding. */
function checkEncodings(tokenizer: ClipTokenizer, vocabIds: ReadonlySet<number>): void {
  invariant([tokenizer.bosId, tokenizer.eosId, tokenizer.padId].every((id) => vocabIds.has(id)), 'special token ids outside the vocabulary');
  for (const prompt of PROMPTS) {
    const { ids, tokenCount, truncated } = tokenizer.encode(prompt);
    invariant(ids.length === tokenizer.maxLength && ids[0] === tokenizer.bosId, `${JSON.stringify(prompt.slice(0, 20))}: ${ids.length} ids, first ${ids[0]}`);
    invariant(Number.isSafeInteger(tokenCount) && tokenCount >= 0 && truncated === tokenCount > tokenizer.maxLength - 2, `token count ${tokenCount}, truncated ${truncated}`);
    invariant(ids.every((id) => vocabIds.has(id)), `${JSON.stringify(prompt.slice(0, 20))}: an id outside the vocabulary`);
  }
}

const idsOf = (json: unknown) => new Set(Object.values(((json as { model?: { vocab?: object } }).model?.vocab ?? {}) as Record<string, number>).concat(
  ((json as { added_tokens?: { id: number }[] }).added_tokens ?? []).map((t) => t.id)));

const tokenizerErrors = (e: unknown) => e instanceof TokenizerFilesError;

export const tokenizerSlowTarget: FuzzTarget = {
  name: 'tokenizer-slow',
  errorType: 'TokenizerFilesError',
  seeds: slowSeeds,
  mutate: (r, parts) => mutateParts(r, parts, 1),
  run([vocab, merges, config, map]) {
    const { tokenizerJson, tokenizerConfig } = buildTokenizerFiles({ vocab: text(vocab), merges: text(merges), tokenizerConfig: optional(config), specialTokensMap: optional(map) });
    // Through JSON, as prepare-model writes the files and the worker reads them.
    const json = JSON.parse(JSON.stringify(tokenizerJson)) as Record<string, unknown>;
    checkEncodings(createClipTokenizer(json, JSON.parse(JSON.stringify(tokenizerConfig)) as Record<string, unknown>), idsOf(json));
  },
  expected: tokenizerErrors,
};

/** promptTokenizer reads `<dir>/tokenizer.json` and `<dir>/tokenizer_config.json` of a loaded prepared directory. */
const TOKENIZER_DIR = { tokenizer: { dir: 'tokenizer', modelMaxLength: 77 } } as PreparedManifest;

export const tokenizerJsonTarget: FuzzTarget = {
  name: 'tokenizer-json',
  errorType: 'TokenizerFilesError',
  seeds: jsonSeeds,
  mutate: (r, parts) => mutateParts(r, parts, -1),
  run([json, config]) {
    const files = new Map([['tokenizer/tokenizer.json', json], ['tokenizer/tokenizer_config.json', config]]);
    const tokenizer = promptTokenizer(TOKENIZER_DIR, files);
    checkEncodings(tokenizer, idsOf(JSON.parse(text(json))));
  },
  expected: tokenizerErrors,
};
