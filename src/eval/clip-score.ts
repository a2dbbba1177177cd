// The CLIP score of an image for its prompt, from a CLIP model folder the user gives (a transformers.js CLIP export:
// onnx/text_model.onnx + onnx/vision_model.onnx, config.json, preprocessor_config.json, tokenizer files), run by
// @huggingface/transformers. The score is torchmetrics' CLIPScore, max(100 · cos(image_embeds, text_embeds), 0):
// comparable across models (a model's own logit_scale is 100 only once trained), and what diffusion papers report.
// Nothing is fetched: transformers.js reads the folder's files through our `env.fetch`, which only serves the given
// Blobs (remote models off, no caches). Pixels are preprocessed by clip-preprocess.ts (PIL-exact), not by
// transformers.js' processor, so the page and Node give PyTorch's pixel_values.
import type * as Transformers from '@huggingface/transformers';
import { buildTokenizerFiles } from '../text/tokenizer-files.ts';
import { clipPixelValues, parseClipImageConfig, type ClipImageConfig } from './clip-preprocess.ts';

/** The folder's files by path relative to the folder ("config.json", "onnx/text_model.onnx"). */
export type ClipFiles = Map<string, Blob>;

export interface ClipScore {
  /** max(100 · cos, 0), torchmetrics' CLIPScore. */
  score: number;
  cosine: number;
}

export interface ClipScorer {
  /** What was loaded, for the page ("fp32, 2 files, 1.7 MB"). */
  readonly description: string;
  score(pixels: Uint8Array | Uint8ClampedArray, width: number, height: number, prompt: string): Promise<ClipScore>;
  dispose(): Promise<void>;
}

type Library = typeof Transformers;
type DType = 'fp32' | 'q8';

/**
 * Weight files transformers.js names `<model>[_suffix].onnx`, in the order we prefer them. Both keep float32 inputs
 * and outputs (q8 is dynamic quantisation); `_fp16` exports take float16 pixel_values, which this scorer does not make.
 */
const DTYPES: [DType, string][] = [['fp32', ''], ['q8', '_quantized']];

/** Paths relative to the chosen folder: a browser's webkitRelativePath starts with the folder's own name. */
export function filesFromList(list: Iterable<File>): ClipFiles {
  const files: ClipFiles = new Map();
  for (const file of list) {
    const path = (file.webkitRelativePath || file.name).split('/').slice(file.webkitRelativePath ? 1 : 0).join('/');
    files.set(path, file);
  }
  return files;
}

function chooseDType(files: ClipFiles): DType {
  for (const [dtype, suffix] of DTYPES) if (files.has(`onnx/text_model${suffix}.onnx`) && files.has(`onnx/vision_model${suffix}.onnx`)) return dtype;
  const missing = ['config.json', 'preprocessor_config.json', 'onnx/text_model.onnx', 'onnx/vision_model.onnx'].filter((p) => !files.has(p));
  throw new Error(`not a CLIP export for transformers.js (e.g. Xenova/clip-vit-base-patch32): missing ${missing.join(', ')}`);
}

async function readJson(files: ClipFiles, path: string): Promise<unknown> {
  const blob = files.get(path);
  if (!blob) throw new Error(`the CLIP folder has no ${path}`);
  try {
    return JSON.parse(await blob.text());
  } catch (error) {
    throw new Error(`${path} is not valid JSON: ${(error as Error).message}`);
  }
}

/** tokenizer.json as transformers.js wants it; a folder with only the slow files (vocab.json, merges.txt) is converted. */
async function withTokenizerJson(files: ClipFiles): Promise<ClipFiles> {
  if (files.has('tokenizer.json')) return files;
  const vocab = files.get('vocab.json');
  const merges = files.get('merges.txt');
  if (!vocab || !merges) throw new Error('the CLIP folder has no tokenizer: tokenizer.json, or vocab.json and merges.txt');
  const config = files.get('tokenizer_config.json');
  const special = files.get('special_tokens_map.json');
  const built = buildTokenizerFiles({ vocab: await vocab.text(), merges: await merges.text(), tokenizerConfig: await config?.text(), specialTokensMap: await special?.text() });
  const out = new Map(files);
  out.set('tokenizer.json', new Blob([JSON.stringify(built.tokenizerJson)]));
  if (!config) out.set('tokenizer_config.json', new Blob([JSON.stringify(built.tokenizerConfig)]));
  return out;
}

let loads = 0;

/**
 * Points transformers.js at `files` only. They are its "cache" (env.customCache, asked first for every file, in
 * browsers and in Node, where a cached Response is read into memory instead of a path), under a fresh model id (its
 * memoised loads are keyed by id); anything else goes to `env.fetch`, which answers 404 without a request. Remote
 * models are off, so nothing leaves the page or the process.
 */
function configure(lib: Library, files: ClipFiles): string {
  const id = `local-clip-${++loads}`;
  const fileOf = (key: string): Blob | undefined => {
    const at = key.indexOf(`${id}/`);
    // Keys are the local path (/<id>/<file>) or the hub URL it would have (…/<id>/resolve/main/<file>).
    return at < 0 ? undefined : files.get(key.slice(at + id.length + 1).replace(/^resolve\/[^/]+\//, ''));
  };
  const { env } = lib;
  Object.assign(env, {
    allowRemoteModels: false,
    allowLocalModels: true,
    useFS: false,
    useFSCache: false,
    useBrowserCache: false,
    useWasmCache: false,
    localModelPath: '/',
    useCustomCache: true,
    customCache: {
      match: async (key: string) => {
        const blob = fileOf(String(key));
        return blob && new Response(blob, { headers: { 'content-length': String(blob.size) } });
      },
      put: async () => undefined,
    },
    fetch: async () => new Response(null, { status: 404, statusText: 'not in the CLIP folder' }),
  });
  return id;
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let [dot, na, nb] = [0, 0, 0];
  for (let i = 0; i < a.length; i++) [dot, na, nb] = [dot + a[i] * b[i], na + a[i] * a[i], nb + b[i] * b[i]];
  return dot / Math.sqrt(na * nb);
}

/**
 * Loads the CLIP folder. `lib` is the imported @huggingface/transformers (the page imports it only when a folder is
 * chosen; its ORT must already be set up, e.g. wasmPaths); `device` is transformers.js' ('wasm' in a browser, 'cpu' in Node).
 */
export async function loadClipScorer(lib: Library, given: ClipFiles, device: 'wasm' | 'cpu' | 'webgpu'): Promise<ClipScorer> {
  const dtype = chooseDType(given);
  const image: ClipImageConfig = parseClipImageConfig(await readJson(given, 'preprocessor_config.json'));
  const files = await withTokenizerJson(given);
  const id = configure(lib, files);
  const options = { dtype, device, local_files_only: true } as const;
  const [tokenizer, text, vision] = await Promise.all([
    lib.AutoTokenizer.from_pretrained(id, { local_files_only: true }),
    lib.CLIPTextModelWithProjection.from_pretrained(id, options),
    lib.CLIPVisionModelWithProjection.from_pretrained(id, options),
  ]);
  const textEmbeds = new Map<string, Float32Array>();
  const embedText = async (prompt: string): Promise<Float32Array> => {
    let e = textEmbeds.get(prompt);
    if (!e) {
      // torchmetrics tokenizes with padding=True and truncates at the model's 77 tokens.
      const inputs = tokenizer([prompt], { padding: true, truncation: true });
      const { text_embeds } = await text(inputs);
      if (text_embeds.type !== 'float32') throw new Error(`the text model gave ${text_embeds.type} text_embeds, not float32`);
      e = text_embeds.data as Float32Array;
      textEmbeds.set(prompt, e);
    }
    return e;
  };
  const bytes = [...given.values()].reduce((sum, b) => sum + b.size, 0);
  return {
    description: `${dtype}, ${given.size} files, ${(bytes / 2 ** 20).toFixed(1)} MB`,
    async score(pixels, width, height, prompt) {
      const pv = clipPixelValues(pixels, width, height, image);
      const { image_embeds } = await vision({ pixel_values: new lib.Tensor('float32', pv.data, [1, 3, pv.height, pv.width]) });
      if (image_embeds.type !== 'float32') throw new Error(`the vision model gave ${image_embeds.type} image_embeds, not float32`);
      const cos = cosine(image_embeds.data as Float32Array, await embedText(prompt));
      return { score: Math.max(100 * cos, 0), cosine: cos };
    },
    async dispose() {
      await Promise.all([text.dispose(), vision.dispose()]);
    },
  };
}
