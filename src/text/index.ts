// Text side of the real models (SD1.5, SDXL): the CLIP tokenizer, built from an SD repository's slow-tokenizer files
// (prepare-model, Node) and run from the fast tokenizer.json (the worker and the Node CLIs, one code path).
export {
  buildTokenizerConfig,
  buildTokenizerFiles,
  buildTokenizerJson,
  CLIP_MAX_MERGES,
  CLIP_SPLIT_PATTERN,
  TokenizerFilesError,
  type ClipTokenizerConfig,
  type ClipTokenizerSourceFiles,
  type TokenizerJson,
} from './tokenizer-files.ts';
export { createClipTokenizer, type ClipEncoding, type ClipTokenizer } from './clip-tokenizer.ts';
