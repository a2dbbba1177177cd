// The embedded text encoder's tokenizer: a fixed word vocabulary for the embedded world's captions ("a small red
// circle above a large blue square on a yellow background"). Unknown words are an error the page shows, naming them,
// rather than silently becoming <unk>: a prompt the model cannot read should say so.
export const SPECIAL_TOKENS = ['<pad>', '<bos>', '<eos>'] as const;

export const WORDS = [
  'a', 'an', 'the', 'and', 'with', 'of', 'on', 'in', 'at',
  'tiny', 'small', 'medium', 'large', 'big', 'huge',
  'red', 'green', 'blue', 'yellow', 'orange', 'purple', 'pink', 'cyan', 'white', 'black', 'gray', 'brown',
  'circle', 'square', 'triangle', 'star', 'ring', 'cross', 'diamond', 'stripe', 'stripes',
  'above', 'below', 'left', 'right', 'top', 'bottom', 'center', 'middle', 'corner', 'next', 'to', 'beside',
  'background', 'blurry', 'dull', 'noisy', 'ugly', 'bad', 'low', 'quality', 'sharp', 'bright', 'vivid', 'detailed',
] as const;

export const VOCABULARY: readonly string[] = [...SPECIAL_TOKENS, ...WORDS];
const ids = new Map(VOCABULARY.map((word, i) => [word, i]));
const [PAD, BOS, EOS] = [0, 1, 2];

export class TokenizerError extends Error {
  constructor(public readonly unknownWords: string[], public readonly prompt: string) {
    super(`the embedded model does not know the word${unknownWords.length > 1 ? 's' : ''} ${unknownWords.map((w) => `"${w}"`).join(', ')}; `
      + `it reads: ${WORDS.join(' ')}`);
    this.name = 'TokenizerError';
  }
}

export function words(prompt: string): string[] {
  return prompt.toLowerCase().replace(/[^a-z\s-]/g, ' ').split(/[\s-]+/).filter(Boolean);
}

/** Token ids, padded to `length`: <bos> words… <eos> <pad>…; too many words is an error, not a silent cut. */
export function tokenize(prompt: string, length: number): BigInt64Array {
  const list = words(prompt);
  const unknown = [...new Set(list.filter((w) => !ids.has(w)))];
  if (unknown.length) throw new TokenizerError(unknown, prompt);
  if (list.length + 2 > length) throw new RangeError(`prompt has ${list.length} words; the embedded model reads at most ${length - 2}`);
  const out = new BigInt64Array(length).fill(BigInt(PAD));
  out[0] = BigInt(BOS);
  list.forEach((w, i) => (out[i + 1] = BigInt(ids.get(w)!)));
  out[list.length + 1] = BigInt(EOS);
  return out;
}
