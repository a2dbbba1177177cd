// "Prepare a model…": what `npm run prepare-model` does, in the page. Inputs are folders chosen from disk or dropped
// (an ONNX export in diffusers' or optimum's layout, optionally a diffusers DPO UNet folder as η, LoRA files for δ) or
// Hugging Face Hub repositories, prefilled with the official NPO recipes (README "Use Stable Diffusion 1.5 with the
// official NPO weights"). The prepare worker writes the model into this browser's storage with byte progress and the
// time left; prepared models are listed here (read offline), opened, and removed to free their storage.
// The Hub is contacted only when "Prepare from the Hub" is pressed; `?hub=<origin>` names another endpoint (a
// mirror), which the page's Content-Security-Policy then allows instead (src/security/csp.ts).
import { useEffect, useState } from 'react';
import type { WeightDtype } from '../model/manifest.ts';
import { DEFAULT_HUB } from '../prepare/hub-folder.ts';
import { hubOriginOf } from '../security/csp.ts';
import type { FolderInput, LoraSpec, PrepareInputs } from '../worker/prepare-protocol.ts';
import { formatBytes } from '../util/format-bytes.ts';
import { droppedFileInput, droppedFolderInput, subfolder } from '../prepare/dropped-inputs.ts';
import { droppedItems, folderFromInput, type PageFolder } from './page-files.ts';
import { cancelPrepare, openPrepared, refreshPrepared, removePreparedModel, secondsLeft, startPrepare, usePrepare } from './prepare-store.ts';

/** The official recipes (DESIGN §2; the NPO repository's released δ, Diffusion-DPO's released UNets). */
const RECIPES = {
  sd15: {
    onnx: { repo: 'stable-diffusion-v1-5/stable-diffusion-v1-5', revision: 'onnx', folder: '' },
    eta: { repo: 'mhdang/dpo-sd1.5-text2image-v1', revision: 'main', folder: 'unet' },
    delta: { repo: 'wangfuyun/Diffusion-NPO', revision: 'main', folder: 'weights/sd15_beta500_2kiter.safetensors' },
  },
  sdxl: {
    onnx: { repo: 'stabilityai/stable-diffusion-xl-base-1.0', revision: 'main', folder: '' },
    eta: { repo: 'mhdang/dpo-sdxl-text2image-v1', revision: 'main', folder: 'unet' },
    delta: { repo: 'wangfuyun/Diffusion-NPO', revision: 'main', folder: 'weights/sdxl_beta2k_2kiter.safetensors' },
  },
};
type HubFields = typeof RECIPES.sd15;

const endpoint = () => hubOriginOf(location.href) ?? DEFAULT_HUB;
const hub = (f: { repo: string; revision: string; folder: string }): FolderInput => ({ kind: 'hub', endpoint: endpoint(), repo: f.repo.trim(), revision: f.revision.trim() || 'main', folder: f.folder.trim() });
const positive = (text: string) => (Number(text) > 0 ? Math.round(Number(text)) : undefined);

export function PreparePanel() {
  const s = usePrepare();
  useEffect(() => void refreshPrepared(), []);
  return (
    <details className="prepare-panel" data-testid="prepare-panel">
      <summary>Prepare a model…</summary>
      <p>Turns an ONNX export (and DPO / NPO weights) into a model this page runs, in your browser, as <code>npm run prepare-model</code> does. Nothing is uploaded; the result stays in this browser's storage.</p>
      <FromFolders disabled={!!s.running} />
      <FromHub disabled={!!s.running} />
      <Progress />
      {s.error && <p className="error" data-testid="prepare-error">{s.error}</p>}
      {s.result && (
        <p data-testid="prepare-done" data-model-id={s.result.modelId}>
          Prepared {s.result.name} ({formatBytes(s.result.bytes)}), verified.{' '}
          <button type="button" data-testid="prepare-open-new" onClick={() => openPrepared(s.result!.modelId)}>Open it</button>
          {s.result.unchecked.length > 0 && <> Not hash-checked against the Hub: {s.result.unchecked.join(', ')}.</>}
        </p>
      )}
      <PreparedList />
    </details>
  );
}

function FromFolders({ disabled }: { disabled: boolean }) {
  const [onnx, setOnnx] = useState<PageFolder>();
  const [etaUnet, setEtaUnet] = useState<PageFolder>();
  const [deltas, setDeltas] = useState<File[]>([]);
  const [deltaScale, setDeltaScale] = useState('1');
  const [etaRank, setEtaRank] = useState('');
  const [dtype, setDtype] = useState('');
  const [name, setName] = useState('');
  const [dropped, setDropped] = useState<string>();
  const chosen = (list: FileList | null) => (list?.length ? folderFromInput(list) : undefined);
  const start = () => startPrepare({
    onnx: { kind: 'files', name: onnx!.name, files: onnx!.files },
    etaUnet: etaUnet ? { kind: 'files', name: etaUnet.name, files: etaUnet.files } : undefined,
    etaRank: etaUnet ? positive(etaRank) : undefined,
    etaLora: [],
    deltaLora: deltas.map((file): LoraSpec => ({ folder: { kind: 'files', name: '', files: new Map([[file.name, file]]) }, path: file.name, scale: Number(deltaScale) })),
    dtype: (dtype || undefined) as WeightDtype | undefined,
    name: name.trim() || undefined,
  });
  /** A drop of any of the inputs at once: each folder and file sorted by its paths (src/prepare/dropped-inputs.ts). */
  const onDrop = async (data: DataTransfer) => {
    const { folders, files } = await droppedItems(data);
    const notes: string[] = [];
    const newDeltas: File[] = [];
    for (const folder of folders) {
      const input = droppedFolderInput(folder.name, folder.files.keys());
      if (input.role === 'onnx') (setOnnx(folder), notes.push(`${folder.name}/ as the ONNX export`));
      else if (input.role === 'etaUnet') {
        const name = input.folder ? `${folder.name}/${input.folder}` : folder.name;
        setEtaUnet({ name, files: subfolder(folder.files, input.folder) });
        notes.push(`${name}/ as the DPO UNet (η)`);
      } else if (input.role === 'unknown') notes.push(input.why);
    }
    for (const file of files) {
      const input = droppedFileInput(file.name);
      if (input.role === 'delta') (newDeltas.push(file), notes.push(`${file.name} as δ`));
      else if (input.role === 'unknown') notes.push(input.why);
    }
    if (newDeltas.length) setDeltas(newDeltas);
    setDropped(notes.join('; ') || 'nothing was dropped');
  };
  return (
    <fieldset className="prepare-folders" data-testid="prepare-drop"
      onDragOver={(e) => { if (e.dataTransfer.types.includes('Files')) e.preventDefault(); }}
      onDrop={(e) => {
        e.preventDefault();
        e.stopPropagation(); // not also a PNG's settings (App's page-wide drop)
        onDrop(e.dataTransfer).catch((error) => setDropped(`the drop could not be read: ${error instanceof Error ? error.message : String(error)}`));
      }}>
      <legend>From folders on this computer (choose them, or drop them here)</legend>
      <label className="file-button">ONNX export folder…<input type="file" data-testid="prepare-onnx" {...{ webkitdirectory: '', directory: '' }} onChange={(e) => setOnnx(chosen(e.target.files))} /></label>
      <label className="file-button">DPO UNet folder (η, optional)…<input type="file" data-testid="prepare-eta-unet" {...{ webkitdirectory: '', directory: '' }} onChange={(e) => setEtaUnet(chosen(e.target.files))} /></label>
      <label className="file-button">δ LoRA file(s)…<input type="file" multiple accept=".safetensors" data-testid="prepare-delta" onChange={(e) => setDeltas(e.target.files ? [...e.target.files] : [])} /></label>
      <label>δ scale <input data-testid="prepare-delta-scale" size={4} value={deltaScale} onChange={(e) => setDeltaScale(e.target.value)} /></label>
      <Options etaRank={etaRank} setEtaRank={setEtaRank} dtype={dtype} setDtype={setDtype} prefix="prepare" />
      <label>name <input data-testid="prepare-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="from the export" /></label>
      <button type="button" data-testid="prepare-start" disabled={disabled || !onnx} onClick={start}>Prepare</button>
      <p className="hint" data-testid="prepare-chosen">
        {onnx ? `export ${onnx.name}/ (${onnx.files.size} files)` : 'choose the export folder (unet/, text_encoder/, vae_decoder/, tokenizer/, scheduler/)'}
        {etaUnet ? ` · η ${etaUnet.name}/` : ''}{deltas.length ? ` · δ ${deltas.map((f) => f.name).join(', ')}` : ''}
      </p>
      {dropped && <p className="hint" data-testid="prepare-dropped">Dropped: {dropped}</p>}
    </fieldset>
  );
}

function FromHub({ disabled }: { disabled: boolean }) {
  const [fields, setFields] = useState<HubFields>(RECIPES.sd15);
  const [useEta, setUseEta] = useState(true);
  const [etaRank, setEtaRank] = useState('64');
  const [dtype, setDtype] = useState('float16');
  const row = (key: keyof HubFields, labels: [string, string, string]) => (
    <div className="row">
      {(['repo', 'revision', 'folder'] as const).map((part, i) => (
        <input key={part} data-testid={`hub-${key}-${part}`} aria-label={`${key} ${labels[i]}`} placeholder={labels[i]} value={fields[key][part]}
          onChange={(e) => setFields({ ...fields, [key]: { ...fields[key], [part]: e.target.value } })} />
      ))}
    </div>
  );
  const deltaPath = fields.delta.folder.trim();
  const start = () => startPrepare({
    onnx: hub(fields.onnx),
    etaUnet: useEta ? hub(fields.eta) : undefined,
    etaRank: useEta ? positive(etaRank) : undefined,
    etaLora: [],
    deltaLora: deltaPath ? [{ folder: hub({ ...fields.delta, folder: deltaPath.split('/').slice(0, -1).join('/') }), path: deltaPath.split('/').at(-1)!, scale: 1 }] : [],
    dtype: (dtype || undefined) as WeightDtype | undefined,
  } satisfies PrepareInputs);
  return (
    <fieldset className="prepare-hub">
      <legend>From Hugging Face ({endpoint()})</legend>
      <div className="row">
        <button type="button" data-testid="hub-recipe-sd15" onClick={() => setFields(RECIPES.sd15)}>SD1.5 + NPO recipe</button>
        <button type="button" data-testid="hub-recipe-sdxl" onClick={() => setFields(RECIPES.sdxl)}>SDXL + NPO recipe</button>
      </div>
      <p className="hint">ONNX export: repository, revision, folder</p>
      {row('onnx', ['repository', 'revision', 'folder'])}
      <label><input type="checkbox" data-testid="hub-eta-on" checked={useEta} onChange={(e) => setUseEta(e.target.checked)} /> DPO UNet as η: repository, revision, folder</label>
      {row('eta', ['repository', 'revision', 'folder'])}
      <p className="hint">NPO δ (LoRA): repository, revision, file</p>
      {row('delta', ['repository', 'revision', 'file'])}
      <Options etaRank={etaRank} setEtaRank={setEtaRank} dtype={dtype} setDtype={setDtype} prefix="hub" />
      <button type="button" data-testid="hub-start" disabled={disabled || !fields.onnx.repo.trim()} onClick={start}>Prepare from the Hub</button>
    </fieldset>
  );
}

function Options(p: { etaRank: string; setEtaRank: (v: string) => void; dtype: string; setDtype: (v: string) => void; prefix: string }) {
  return (
    <>
      <label title="empty: the dense η (3× the UNet in memory with α ≠ 1); a rank keeps η as a LoRA (the error of each layer is computed)">
        η rank <input data-testid={`${p.prefix}-eta-rank`} size={4} value={p.etaRank} onChange={(e) => p.setEtaRank(e.target.value)} placeholder="dense" />
      </label>
      <label>weights
        <select data-testid={`${p.prefix}-dtype`} value={p.dtype} onChange={(e) => p.setDtype(e.target.value)}>
          <option value="">as exported</option>
          <option value="float16">float16 (half the size)</option>
          <option value="float32">float32</option>
        </select>
      </label>
    </>
  );
}

function Progress() {
  const running = usePrepare((s) => s.running);
  if (!running) return null;
  const left = secondsLeft(running);
  return (
    <p className="load-progress" data-testid="prepare-progress" data-done={running.done} data-total={running.total}>
      {running.stage}: {formatBytes(running.done)} of {formatBytes(running.total)}
      {left !== undefined ? ` · ${left >= 90 ? `${Math.floor(left / 60)} min` : `${Math.max(1, Math.round(left))} s`} left` : ''}
      {running.network > 0 ? ` · ${formatBytes(running.network)} downloaded` : ''}{' '}
      <button type="button" data-testid="prepare-cancel" onClick={cancelPrepare}>Cancel</button>
    </p>
  );
}

function PreparedList() {
  const { prepared, storage, removed } = usePrepare();
  const current = new URLSearchParams(location.search).get('prepared');
  return (
    <div data-testid="prepared-list">
      <p>In this browser: {prepared.length ? '' : 'no prepared models.'}
        {storage && <span data-testid="storage-usage" data-usage={storage.usage}> (site storage {formatBytes(storage.usage)} of {formatBytes(storage.quota)})</span>}
      </p>
      <ul>
        {prepared.map((p) => (
          <li key={p.id} data-testid={`prepared-${p.id}`} data-bytes={p.bytes}>
            {p.name ?? p.id} · {formatBytes(p.bytes)}{p.leftover ? ` · ${p.leftover}` : ''}{p.id === current ? ' · in use' : ''}{' '}
            {!p.leftover && <button type="button" data-testid={`prepared-open-${p.id}`} onClick={() => openPrepared(p.id)}>Open</button>}
            <button type="button" data-testid={`prepared-remove-${p.id}`} onClick={() => removePreparedModel(p.id)}>Remove</button>
          </li>
        ))}
      </ul>
      {removed && <p data-testid="prepared-removed">Removed {removed.id}: {formatBytes(removed.bytes)} freed.</p>}
    </div>
  );
}
