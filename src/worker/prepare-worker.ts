// The prepare worker: runs `npm run prepare-model`'s pipeline (src/prepare/prepare.ts, the same code) in the page,
// on folders the person chose or on Hugging Face Hub repositories, writing the prepared model into the browser's
// origin-private file system (src/model/source/opfs.ts) through synchronous access handles. Progress is posted a few
// times a second; a cancel stops between tensors and removes what was written; the model is listed only once its
// manifest is written, after the same read-back verification as the CLI's.
import { newPreparedId, preparedOutput } from '../model/source/opfs.ts';
import { chosenFolder } from '../prepare/browser-io.ts';
import { hubFolder, type HubFolder } from '../prepare/hub-folder.ts';
import type { InputFolder, LoraInput } from '../prepare/io.ts';
import { prepareModel } from '../prepare/prepare.ts';
import { quotaExceeded, storageShortfall } from '../prepare/storage-quota.ts';
import type { FolderInput, LoraSpec, PrepareEvent, PrepareRequest } from './prepare-protocol.ts';

const post = (event: PrepareEvent) => (self as unknown as Worker).postMessage(event);
const running = new Map<number, AbortController>();
/** Progress events at most this often (a 3.4 GB copy reports per tensor). */
const PROGRESS_EVERY_MS = 200;

self.onmessage = (message: MessageEvent<PrepareRequest>) => {
  const request = message.data;
  if (request.type === 'cancel') return void running.get(request.id)?.abort(new DOMException('preparation cancelled', 'AbortError'));
  if (request.type === 'prepare') void prepare(request);
};

async function prepare({ id, inputs }: Extract<PrepareRequest, { type: 'prepare' }>) {
  const controller = new AbortController();
  running.set(id, controller);
  const { signal } = controller;
  let network = 0;
  const hubFolders: HubFolder[] = [];
  const folder = (input: FolderInput): InputFolder => {
    if (input.kind === 'files') return chosenFolder(input.name, input.files);
    const hub = hubFolder(input, { signal, onBytes: (n) => void (network += n) });
    hubFolders.push(hub);
    return hub;
  };
  const lora = (spec: LoraSpec): LoraInput => ({ folder: folder(spec.folder), path: spec.path, scale: spec.scale });
  const onnx = folder(inputs.onnx);
  const modelId = newPreparedId(inputs.name || onnx.label.replace(/^hub:/, ''));
  let last = 0;
  try {
    const result = await prepareModel({
      onnx,
      etaUnet: inputs.etaUnet && folder(inputs.etaUnet),
      etaRank: inputs.etaRank,
      etaLora: inputs.etaLora.map(lora),
      deltaLora: inputs.deltaLora.map(lora),
      vae: inputs.vae && folder(inputs.vae),
      dtype: inputs.dtype,
      name: inputs.name || undefined,
      out: preparedOutput(modelId),
      signal,
      beforeWriting: checkStorage,
      onProgress: ({ stage, done, total }) => {
        if (performance.now() - last < PROGRESS_EVERY_MS && done < total) return;
        last = performance.now();
        post({ type: 'prepare-progress', id, stage, done, total, network });
      },
    });
    const bytes = result.manifest.files.reduce((sum, f) => sum + f.bytes, 0);
    const unchecked = hubFolders.flatMap((h) => h.checked().filter((c) => !c.hashChecked).map((c) => h.name(c.path)));
    post({ type: 'prepare-done', id, modelId, name: result.manifest.name, bytes, notes: result.notes, unchecked });
  } catch (error) {
    post({ type: 'prepare-error', id, message: await describe(error), cancelled: signal.aborted });
  } finally {
    running.delete(id);
  }
}

/** Refuses a preparation whose files cannot fit the site's storage quota, with the numbers, before it writes. */
async function checkStorage(bytes: number): Promise<void> {
  const refused = storageShortfall(bytes, await navigator.storage.estimate().catch(() => ({})));
  if (refused) throw new Error(refused);
}

/** An error as a sentence; a full browser storage says how much the site may use and has used. */
async function describe(error: unknown): Promise<string> {
  if ((error as { name?: string })?.name !== 'QuotaExceededError') return (error as Error)?.message ?? String(error);
  return quotaExceeded(await navigator.storage.estimate().catch(() => ({})));
}
