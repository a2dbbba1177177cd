// The CLIP tokenizer (src/text) against transformers' slow CLIPTokenizer, the class diffusers' SD pipelines call, on
// the real 49408-token vocabulary: fixtures/clip/token-references.json (scripts/fixtures/make_clip_token_references.py)
// and the token ids in fixtures/sd15/references.json (make_sd15_fixture.py). The tokenizer files are the SD1.5-style
// fixture export's tokenizer/ folder. Exact equality: token ids are integers.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fixTextLikeFtfy } from './fix-text.ts';
import { buildTokenizerFiles, buildTokenizerJson, CLIP_SPLIT_PATTERN, createClipTokenizer, TokenizerFilesError, type ClipTokenizerSourceFiles } from './index.ts';

const TOKENIZER_DIR = new URL('../../fixtures/sd15/export-diffusers/tokenizer/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, TOKENIZER_DIR), 'utf8');
const SOURCE: ClipTokenizerSourceFiles = {
  vocab: read('vocab.json'),
  merges: read('merges.txt'),
  tokenizerConfig: read('tokenizer_config.json'),
  specialTokensMap: read('special_tokens_map.json'),
};

interface Row { prompt: string; ids: number[]; tokenCount: number; ftfyText?: string }
const REFS = JSON.parse(readFileSync(new URL('../../fixtures/clip/token-references.json', import.meta.url), 'utf8')) as {
  ftfy: boolean; sd15: Row[]; sdxlPad: { pad_token: string; rows: Row[] };
};
const SD15_REFS_URL = new URL('../../fixtures/sd15/references.json', import.meta.url);
type Sd15Refs = { tokenizer: { prompts: { prompt: string; input_ids: number[]; untruncated_length: number }[] } };

const { tokenizerJson, tokenizerConfig } = buildTokenizerFiles(SOURCE);
const tokenizer = createClipTokenizer(tokenizerJson, tokenizerConfig);
const show = (p: string) => JSON.stringify(p).slice(0, 60);

describe('CLIP tokenizer vs transformers CLIPTokenizer (slow, with ftfy)', () => {
  it('the references were made with ftfy, as the tokenizer here assumes', () => {
    expect(REFS.ftfy).toBe(true);
    expect(REFS.sd15.length).toBeGreaterThanOrEqual(20);
  });

  for (const row of REFS.sd15) {
    it(`same ids: ${show(row.prompt)}`, () => {
      const enc = tokenizer.encode(row.prompt);
      expect(Array.from(enc.ids)).toEqual(row.ids);
      expect(enc.tokenCount).toBe(row.tokenCount);
      expect(enc.truncated).toBe(row.tokenCount > 75);
    });
  }

  it.skipIf(!existsSync(SD15_REFS_URL))('same ids on the SD1.5 fixture\'s own references (make_sd15_fixture.py)', () => {
    const prompts = (JSON.parse(readFileSync(SD15_REFS_URL, 'utf8')) as Sd15Refs).tokenizer.prompts;
    expect(prompts.length).toBeGreaterThan(0);
    for (const p of prompts) {
      const enc = tokenizer.encode(p.prompt);
      expect(Array.from(enc.ids), show(p.prompt)).toEqual(p.input_ids);
      expect(enc.tokenCount + 2, show(p.prompt)).toBe(p.untruncated_length);
    }
  });

  it('pads with the config\'s pad token: SDXL\'s second tokenizer pads with "!" (id 0)', () => {
    const map = { ...JSON.parse(SOURCE.specialTokensMap as string), pad_token: REFS.sdxlPad.pad_token };
    const files = buildTokenizerFiles({ ...SOURCE, specialTokensMap: map });
    const sdxl = createClipTokenizer(files.tokenizerJson, files.tokenizerConfig);
    expect(sdxl.padId).toBe(0);
    for (const row of REFS.sdxlPad.rows) expect(Array.from(sdxl.encode(row.prompt).ids), show(row.prompt)).toEqual(row.ids);
  });

  it('the text fix-up equals ftfy.fix_text on every reference prompt', () => {
    for (const row of REFS.sd15) expect(fixTextLikeFtfy(row.prompt), show(row.prompt)).toBe(row.ftfyText);
  });

  it('truncates at 75 prompt tokens: BOS, 75 tokens, EOS, no padding', () => {
    const at = (n: number) => tokenizer.encode(Array(n).fill('a').join(' '));
    const [fits, over] = [at(75), at(76)];
    expect(fits.truncated).toBe(false);
    expect(over.truncated).toBe(true);
    expect(over.tokenCount).toBe(76);
    expect(Array.from(over.ids)).toEqual(Array.from(fits.ids));
    expect(over.ids[76]).toBe(tokenizer.eosId);
  });
});

describe('tokenizer.json built from the slow-tokenizer files', () => {
  it('has the CLIP structure: 49408 ids, 48894 merges, BOS/EOS as special added tokens', () => {
    expect(Object.keys(tokenizerJson.model.vocab)).toHaveLength(49408);
    expect(tokenizerJson.model.merges).toHaveLength(48894);
    expect(tokenizerJson.model.end_of_word_suffix).toBe('</w>');
    expect(tokenizerJson.added_tokens.map((t) => [t.id, t.content, t.special])).toEqual([
      [49406, '<|startoftext|>', true],
      [49407, '<|endoftext|>', true],
    ]);
    expect(tokenizerConfig).toMatchObject({ model_max_length: 77, bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>' });
    expect([tokenizer.bosId, tokenizer.eosId, tokenizer.padId, tokenizer.maxLength]).toEqual([49406, 49407, 49407, 77]);
  });

  it('the SD1.5 repositories\' own config files (AddedToken objects) give the same tokenizer', () => {
    const dir = new URL('../../fixtures/sd15/tokenizer-sd15-config/', import.meta.url);
    const files = buildTokenizerFiles({
      ...SOURCE,
      tokenizerConfig: readFileSync(new URL('tokenizer_config.json', dir), 'utf8'),
      specialTokensMap: readFileSync(new URL('special_tokens_map.json', dir), 'utf8'),
    });
    expect(files.tokenizerJson).toEqual(tokenizerJson);
    expect(files.tokenizerConfig).toEqual(tokenizerConfig);
  });

  it('survives a JSON round trip (what prepare-model writes is what the worker reads)', () => {
    const again = createClipTokenizer(JSON.parse(JSON.stringify(tokenizerJson)), JSON.parse(JSON.stringify(tokenizerConfig)));
    const p = REFS.sd15[3].prompt;
    expect(Array.from(again.encode(p).ids)).toEqual(Array.from(tokenizer.encode(p).ids));
  });

  it('accepts an SD repository\'s own tokenizer_config.json (AddedToken objects) at run time', () => {
    const raw = createClipTokenizer(tokenizerJson, JSON.parse(SOURCE.tokenizerConfig as string));
    expect(Array.from(raw.encode('a cat').ids)).toEqual(Array.from(tokenizer.encode('a cat').ids));
  });

  it('without the ftfy step it is the fast tokenizer: a curly apostrophe stays its own token', () => {
    const fast = createClipTokenizer(tokenizerJson, tokenizerConfig, { fixText: false });
    expect(fast.encode('don\u2019t').tokenCount).toBeGreaterThan(tokenizer.encode('don\u2019t').tokenCount);
    expect(Array.from(fast.encode("don't").ids)).toEqual(Array.from(tokenizer.encode("don't").ids));
  });
});

describe('bad tokenizer files are refused with a specific error', () => {
  const expectError = (files: Partial<ClipTokenizerSourceFiles>, message: RegExp) => {
    expect(() => buildTokenizerJson({ ...SOURCE, ...files })).toThrow(TokenizerFilesError);
    expect(() => buildTokenizerJson({ ...SOURCE, ...files })).toThrow(message);
  };

  it('vocab.json', () => {
    expectError({ vocab: '{"a": 1,' }, /vocab\.json is not valid JSON/);
    expectError({ vocab: '[1, 2]' }, /vocab\.json must hold a JSON object/);
    expectError({ vocab: '{"a": -1}' }, /"a" must be a non-negative integer/);
    expectError({ vocab: '{"a": 0, "b": 0}' }, /id 0 is given to both "a" and "b"/);
  });

  it('merges.txt', () => {
    expectError({ merges: 'a b\n' }, /first line must be the "#version" header/);
    expectError({ merges: '#version: 0.2\nt h\nzzzq x\n' }, /line 3: "zzzq" is not in vocab\.json/);
    expectError({ merges: '#version: 0.2\nt h e\n' }, /line 2: expected two tokens/);
  });

  it('special tokens and the config', () => {
    expectError({ specialTokensMap: { bos_token: '<s>' } }, /bos_token "<s>" is not in vocab\.json/);
    expectError({ tokenizerConfig: { model_max_length: 1e30 } }, /model_max_length/);
    expectError({ tokenizerConfig: { tokenizer_class: 'T5Tokenizer' } }, /only CLIPTokenizer/);
    expectError({ tokenizerConfig: { pad_token: 7 } }, /"pad_token" must be a string/);
    expect(() => createClipTokenizer(tokenizerJson, { ...tokenizerConfig, pad_token: '<pad>' })).toThrow(/pad_token "<pad>" is not in the tokenizer's vocabulary/);
  });

  it('a prompt that is not a string', () => {
    expect(() => tokenizer.encode(42 as unknown as string)).toThrow(/a prompt must be a string/);
  });
});

describe('tokenizer.json is checked before the library builds from it', () => {
  /** The file with one component's Split pattern replaced. */
  const withSplit = (pattern: string) => {
    const json = JSON.parse(JSON.stringify(tokenizerJson));
    json.pre_tokenizer.pretokenizers[0].pattern.Regex = pattern;
    return json;
  };

  it('a regular expression that is not CLIP\'s is refused before it ever runs (ReDoS)', () => {
    const start = performance.now();
    expect(() => createClipTokenizer(withSplit('(a+)+$'), tokenizerConfig)).toThrow(/regular expression "\(a\+\)\+\$", not one of CLIP's/);
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('the published CLIP tokenizer.json\'s pattern (the two markers first) is accepted and tokenizes as ours', () => {
    const published = createClipTokenizer(withSplit(String.raw`<\|startoftext\|>|<\|endoftext\|>|` + CLIP_SPLIT_PATTERN), tokenizerConfig);
    for (const row of REFS.sd15.slice(0, 8)) expect(Array.from(published.encode(row.prompt).ids), show(row.prompt)).toEqual(row.ids);
  });

  it('merges, vocabulary ids and component types the library would trip over', () => {
    const bad = (edit: (json: any) => void, message: RegExp) => {
      const json = JSON.parse(JSON.stringify(tokenizerJson));
      edit(json);
      expect(() => createClipTokenizer(json, tokenizerConfig)).toThrow(TokenizerFilesError);
      expect(() => createClipTokenizer(json, tokenizerConfig)).toThrow(message);
    };
    bad((j) => (j.model.merges[5] = 7), /"model\.merges"\[5\] is 7/);
    bad((j) => (j.model.merges[0] = ['a', 'b']), /"model\.merges"\[1\]/);
    bad((j) => (j.model.vocab.a = -3), /the id of "a" is -3/);
    bad((j) => (j.model.vocab.a = j.model.vocab.b), /is given to two tokens/);
    bad((j) => (j.normalizer = { type: 'Nope' }), /cannot be loaded: Unknown Normalizer type: Nope/);
    bad((j) => delete j.post_processor, /"post_processor" is undefined, expected an object or null/);
  });
});
