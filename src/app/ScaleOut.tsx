// The training panel's way out to diffusers + accelerate (README "Scale out with diffusers and accelerate"):
// "Download as dataset" (the training pairs as a Pick-a-Pic-layout parquet dataset in a .zip, labels reversed when NPO
// is ticked), the `accelerate launch` command for it with this run's settings or the released NPO weights', what the
// script's defaults get wrong, and "Copy as diffusers script" for the shown pair (prepared SD1.5/SDXL models only).
import { useState } from 'react';
import { accelerateCommand, RELEASED_NPO_SETTINGS, SCRIPT_PITFALLS, settingsFromPageRun } from '../train/accelerate-command.ts';
import { diffusersScript, type DiffusersModel, type DiffusersOffset } from '../share/diffusers-script.ts';
import { usePlayground } from './store.ts';
import { download, trainingSize, useTraining } from './training-store.ts';

const DATASET_NAME = 'npo-pairs';

/** The η/δ the page uses now, as files a person has: a LoRA they brought keeps its file name, a trained one its download name. */
function offsetInUse(model: DiffusersOffset | undefined, name: string | undefined, role: 'eta' | 'delta'): DiffusersOffset | undefined {
  if (name === undefined || name.startsWith("the model's")) return model;
  if (name.startsWith('none')) return undefined;
  const file = name === 'the trained LoRA' ? (role === 'delta' ? 'npo-delta.safetensors' : 'dpo-eta.safetensors') : name;
  return { kind: 'loras', loras: [{ path: file, scale: 1 }] };
}

async function copyOrDownload(text: string, fileName: string): Promise<string> {
  try {
    await navigator.clipboard.writeText(text);
    return 'copied';
  } catch {
    download(new TextEncoder().encode(text), fileName, 'text/x-python');
    return `the clipboard is not available here: downloaded ${fileName}`;
  }
}

export function ScaleOut() {
  const t = useTraining();
  const model = usePlayground((s) => s.model);
  const [processes, setProcesses] = useState(8);
  const [released, setReleased] = useState(false);
  const [status, setStatus] = useState<string>();
  const family = model?.kind === 'sdxl' ? 'sdxl' : 'sd15';
  const size = trainingSize(t.options); // 0 until a model is loaded: then the script's family default
  const settings = released ? RELEASED_NPO_SETTINGS[family] : settingsFromPageRun(t.options, size > 0 ? size : RELEASED_NPO_SETTINGS[family].resolution);
  const command = (datasetDir: string) => accelerateCommand({ family, datasetDir, numProcesses: Math.max(1, Math.round(processes) || 1), settings });
  const pairsJson = t.pairs?.json ?? (t.picks.length ? t.picksJson() : undefined);

  const downloadDataset = async () => {
    if (!pairsJson) return;
    setStatus('writing the dataset…');
    try {
      // loaded on first use: the parquet writer (hyparquet-writer, about 50 kB) stays out of the page's first bundle
      const { datasetZipFromPairsJson } = await import('../train/dataset-export.ts');
      const { zip, summary } = await datasetZipFromPairsJson(pairsJson, {
        name: DATASET_NAME, reverse: t.options.reverse, source: `the page's training pairs (${t.pairs?.name ?? 'picks'})`, trainCommand: command,
      });
      download(zip, `${DATASET_NAME}.zip`, 'application/zip');
      setStatus(`${DATASET_NAME}.zip: ${summary.rows} pairs${summary.reverse ? ', labels reversed (NPO)' : ''}; unzip it and run the command below`);
    } catch (error) {
      setStatus(`cannot write the dataset: ${(error as Error).message}`);
    }
  };

  const copyScript = async () => {
    const { params, lastSeed, loraNames } = usePlayground.getState();
    const base = model!.diffusers!;
    const inUse: DiffusersModel = { ...base, eta: offsetInUse(base.eta, loraNames.eta, 'eta'), delta: offsetInUse(base.delta, loraNames.delta, 'delta') };
    try {
      const script = diffusersScript({ model: inUse, params: { ...params, seed: lastSeed ?? params.seed }, madeBy: "the page's Copy as diffusers script" });
      setStatus(`diffusers script ${await copyOrDownload(script, 'npo_pair.py')}`);
    } catch (error) {
      setStatus((error as Error).message);
    }
  };

  return (
    <div className="scale-out" data-testid="scale-out">
      <h3>Scale out with diffusers and accelerate</h3>
      <div className="row">
        <button type="button" data-testid="dataset-download" disabled={!pairsJson} onClick={() => void downloadDataset()}
          title="the training pairs as a parquet dataset (Pick-a-Pic's columns) that diffusers' train_diffusion_dpo.py reads unchanged">
          Download as dataset</button>
        <label><span>GPUs</span><input type="number" data-testid="accelerate-processes" min={1} step={1} value={processes}
          onChange={(e) => setProcesses(Number(e.target.value))} /></label>
      </div>
      <div className="row">
        <label className="check"><input type="checkbox" data-testid="accelerate-released" checked={released} onChange={(e) => setReleased(e.target.checked)} />
          the released NPO weights' settings (else this run's)</label>
      </div>
      <pre className="command" data-testid="accelerate-command">{command(`./${DATASET_NAME}`)}</pre>
      <button type="button" data-testid="accelerate-copy" onClick={async () => setStatus(`command ${await copyOrDownload(command(`./${DATASET_NAME}`), 'train-npo.sh')}`)}>Copy command</button>
      <details>
        <summary>What the script's defaults would get wrong</summary>
        <ul>{SCRIPT_PITFALLS.map((p) => <li key={p}>{p}</li>)}</ul>
      </details>
      <div className="row">
        <button type="button" data-testid="copy-diffusers-script" disabled={!model?.diffusers} onClick={() => void copyScript()}
          title="a Python script that makes the shown pair with diffusers and the official NPO recipe; its --prompts form splits a prompt list across GPUs">
          Copy as diffusers script</button>
      </div>
      {model && !model.diffusers && (
        <p className="notice" data-testid="diffusers-unavailable">The embedded model has no diffusers equivalent: the script is for prepared SD1.5 and SDXL models.</p>
      )}
      {status && <p className="notice" data-testid="scale-out-status">{status}</p>}
    </div>
  );
}
