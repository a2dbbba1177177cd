// Messages between the page and the prepare worker (src/worker/prepare-worker.ts), which runs prepare-model's own
// pipeline (src/prepare/prepare.ts) on chosen folders or Hugging Face Hub repositories, into the browser's
// origin-private file system. A worker of its own: a preparation takes minutes to hours and must not hold up the
// sampling worker, which keeps generating with the model it has.
import type { WeightDtype } from '../model/manifest.ts';
import type { HubLocation } from '../prepare/hub-folder.ts';

/**
 * Where one input comes from: a folder chosen or dropped in the page (its name, and its files by their paths inside
 * it), or a folder of a Hub repository.
 */
export type FolderInput = { kind: 'files'; name: string; files: Map<string, File> } | ({ kind: 'hub' } & HubLocation);

export interface LoraSpec {
  folder: FolderInput;
  /** The file inside `folder`. */
  path: string;
  scale: number;
}

export interface PrepareInputs {
  onnx: FolderInput;
  /** A diffusers UNet folder (e.g. DPO-SD1.5's `unet/`): η = θ_dpo − θ, dense or as a rank-r LoRA. */
  etaUnet?: FolderInput;
  etaRank?: number;
  etaLora: LoraSpec[];
  deltaLora: LoraSpec[];
  vae?: FolderInput;
  dtype?: WeightDtype;
  name?: string;
}

export type PrepareRequest =
  | { type: 'prepare'; id: number; inputs: PrepareInputs }
  | { type: 'cancel'; id: number };

export type PrepareEvent =
  /** Bytes done of the whole preparation; `network`: bytes received from the Hub so far. */
  | { type: 'prepare-progress'; id: number; stage: string; done: number; total: number; network: number }
  | { type: 'prepare-done'; id: number; modelId: string; name: string; bytes: number; notes: string[]; unchecked: string[] }
  | { type: 'prepare-error'; id: number; message: string; cancelled: boolean };
