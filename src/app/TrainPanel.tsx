// "Train your own δ": upload preference pairs (pairs.json, docs/pairs-format.md; an image folder or .zip with a
// metadata.jsonl/.csv; a Pick-a-Pic .parquet shard; chosen or dropped on the panel), train a LoRA in the worker with
// DPO or NPO (reversed pairs), watch loss and implicit accuracy per step, then use it as δ at once or download it.
// Also: bring your own LoRA file as δ or η, and the pairs a person picked on the page (export or train on them).
import { LR_SCHEDULES, type LrSchedule } from '../train/lr-schedule.ts';
import { download, trainingSize, useTraining } from './training-store.ts';
import { TrainChart } from './TrainChart.tsx';
import { LoraEffectView } from './LoraEffect.tsx';
import { ScaleOut } from './ScaleOut.tsx';
import type { LoraRole } from '../worker/protocol.ts';
import { MAX_LORA_FILE_BYTES } from '../lora/safetensors.ts';
import { sourceFromDrop, sourceFromFile, sourceFromFolderInput } from './pair-source-files.ts';
import { MODEL_LORA_NAMES, usePlayground } from './store.ts';
import { CHECKPOINT_CHOICES, type CheckpointChoice } from '../train/unet-segments.ts';

/** Reads the chosen file, unless it is larger than `maxBytes`: then it is refused before reading, with a message. */
async function readFile(input: HTMLInputElement, maxBytes: number): Promise<{ name: string; bytes: Uint8Array } | undefined> {
  const file = input.files?.[0];
  if (file && file.size > maxBytes) {
    useTraining.setState({ error: `${file.name} is ${(file.size / 2 ** 20).toFixed(0)} MiB; files over ${(maxBytes / 2 ** 20).toFixed(0)} MiB are refused` });
    input.value = '';
    return undefined;
  }
  return file ? { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) } : undefined;
}

export function TrainPanel({ disabled }: { disabled: boolean }) {
  const t = useTraining();
  const model = usePlayground((s) => s.model);
  const last = t.history.at(-1);
  const numberOption = (key: 'steps' | 'rank' | 'batch' | 'beta' | 'lr' | 'seed', label: string, step = 1) => (
    <label><span>{label}</span>
      <input type="number" data-testid={`train-${key}`} step={step} value={t.options[key]}
        onChange={(e) => t.setOption(key, Number(e.target.value))} /></label>
  );
  const useFile = async (input: HTMLInputElement, role: LoraRole) => {
    const file = await readFile(input, MAX_LORA_FILE_BYTES);
    if (file) t.useLora(role, file.bytes, file.name);
    input.value = '';
  };
  const prepared = model?.kind === 'sd15' || model?.kind === 'sdxl';
  return (
    <section className="train" aria-labelledby="train-title" data-testid="train-panel" data-tour="train"
      onDragOver={(e) => { if (e.dataTransfer.types.includes('Files')) e.preventDefault(); }}
      onDrop={async (e) => {
        e.preventDefault();
        const source = await sourceFromDrop(e.dataTransfer);
        if (source) await t.loadSource(source);
      }}>
      <h2 id="train-title">Train your own δ</h2>
      <div className="picks">
        <span data-testid="pairs-count" data-count={t.picks.length}>{t.picks.length} picked pair{t.picks.length === 1 ? '' : 's'}</span>
        <button type="button" data-testid="pairs-export" disabled={t.picks.length === 0}
          onClick={() => download(new TextEncoder().encode(t.picksJson()), 'pairs.json', 'application/json')}>Export pairs.json</button>
        <button type="button" data-testid="pairs-use" disabled={t.picks.length === 0} onClick={t.usePicks}>Train on my picks</button>
        <button type="button" data-testid="pairs-clear" disabled={t.picks.length === 0} onClick={t.clearPicks}>Clear picks</button>
      </div>
      <label><span>preference pairs: pairs.json, a .zip of images with metadata.jsonl/.csv, or a Pick-a-Pic .parquet (or drop one here)</span>
        <input type="file" accept=".json,application/json,.zip,application/zip,.parquet" data-testid="pairs-file" onChange={async (e) => {
          const file = e.currentTarget.files?.[0];
          e.currentTarget.value = '';
          if (file) await t.loadSource(sourceFromFile(file));
        }} /></label>
      <label><span>…or an image folder (metadata.jsonl or .csv of prompt, chosen, rejected)</span>
        <input type="file" data-testid="pairs-folder" {...{ webkitdirectory: '' }} onChange={async (e) => {
          const files = e.currentTarget.files;
          if (files?.length) await t.loadSource(sourceFromFolderInput(files));
          e.currentTarget.value = '';
        }} /></label>
      {t.pairs?.source && (
        <button type="button" data-testid="pairs-download" onClick={() => download(new TextEncoder().encode(t.pairs!.json), 'pairs.json', 'application/json')}>
          Download these pairs as pairs.json</button>
      )}
      <div className="row">
        <label className="check"><input type="checkbox" data-testid="train-reverse" checked={t.options.reverse}
          onChange={(e) => t.setOption('reverse', e.target.checked)} /> NPO (reversed pairs → δ)</label>
        <label className="check" title="mirror each drawn pair with probability ½, as diffusers' DPO scripts do by default; leave it off when prompts say left or right">
          <input type="checkbox" data-testid="train-hflip" checked={t.options.hflip ?? false}
            onChange={(e) => t.setOption('hflip', e.target.checked)} /> random horizontal flip</label>
      </div>
      <div className="row">
        {numberOption('steps', 'steps')}{numberOption('rank', 'rank')}{numberOption('batch', 'batch')}
        {prepared && (
          <label><span>resolution</span>
            <input type="number" data-testid="train-resolution" step={8} min={8} placeholder={String(trainingSize({ ...t.options, resolution: undefined }))} value={t.options.resolution ?? ''}
              onChange={(e) => t.setOption('resolution', e.target.value === '' ? undefined : Number(e.target.value))} /></label>
        )}
        <label title="recompute activations in the backward pass (activation checkpointing): auto when the memory plan needs it">
          <span>recompute</span>
          <select data-testid="train-checkpoint" value={t.options.checkpoint ?? 'auto'} onChange={(e) => t.setOption('checkpoint', e.target.value as CheckpointChoice)}>
            {CHECKPOINT_CHOICES.map((c) => <option key={c} value={c}>{c}</option>)}
          </select>
        </label>
      </div>
      <div className="row">
        {numberOption('beta', 'β_dpo', 50)}{numberOption('lr', 'learning rate', 0.0001)}{numberOption('seed', 'seed')}
      </div>
      <div className="row">
        <label title="micro-batches whose gradients are averaged into one update (gradient accumulation)"><span>accumulate</span>
          <input type="number" data-testid="train-accum" min={1} step={1} value={t.options.gradAccum ?? 1}
            onChange={(e) => t.setOption('gradAccum', Number(e.target.value))} /></label>
        <label title="learning-rate schedule, as diffusers' --lr_scheduler"><span>lr schedule</span>
          <select data-testid="train-lr-schedule" value={t.options.lrSchedule ?? 'constant'} onChange={(e) => t.setOption('lrSchedule', e.target.value as LrSchedule)}>
            {LR_SCHEDULES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select></label>
        <label title="warm-up steps of the lr schedule"><span>warm-up</span>
          <input type="number" data-testid="train-lr-warmup" min={0} step={1} value={t.options.lrWarmup ?? 0}
            onChange={(e) => t.setOption('lrWarmup', Number(e.target.value))} /></label>
      </div>
      <div className="row">
        <button type="button" data-testid="train" disabled={disabled || !t.pairs || t.status === 'training' || !!t.preparing} onClick={() => void t.train()}>Train</button>
        <button type="button" data-testid="train-cancel" disabled={t.status !== 'training' && !(t.effect && !t.effect.result)} onClick={t.cancel}>Stop</button>
      </div>
      <progress data-testid="train-progress" max={t.options.steps} value={t.history.length} />
      <p className="status" data-testid="train-status" data-losses={JSON.stringify(t.history.map((h) => h.loss))}>
        {t.preparing ?? (last ? `step ${last.step}/${last.steps} · loss ${last.loss.toFixed(4)} · implicit accuracy ${(last.accuracy * 100).toFixed(0)}% · ${last.stepsPerSecond.toFixed(2)} steps/s` : t.pairs ? `${t.pairs.name} loaded` : 'no pairs loaded')}
      </p>
      {t.plan && <p className="notice" data-testid="train-plan" data-checkpoint={t.plan.checkpoint}>{t.plan.summary}</p>}
      <TrainChart history={t.history} steps={t.options.steps} />
      {t.error && <div role="alert" className="error" data-testid="train-error">{t.error}</div>}
      {t.message && <p className="notice" data-testid="train-message">{t.message}</p>}
      {t.trained && (
        <div className="row">
          <button type="button" data-testid="use-trained" onClick={() => t.useLora(t.trained!.reverse ? 'delta' : 'eta', t.trained!.lora, 'the trained LoRA')}>
            Use as {t.trained.reverse ? 'δ' : 'η'}</button>
          <button type="button" data-testid="download-lora" onClick={() => download(t.trained!.lora, t.trained!.reverse ? 'npo-delta.safetensors' : 'dpo-eta.safetensors')}>Download</button>
        </div>
      )}
      {t.effect && <LoraEffectView effect={t.effect} />}
      <ScaleOut />
      <h3>Bring a LoRA</h3>
      <div className="row">
        <label><span>as δ</span><input type="file" accept=".safetensors" data-testid="lora-file-delta" onChange={(e) => useFile(e.currentTarget, 'delta')} /></label>
        <label><span>as η</span><input type="file" accept=".safetensors" data-testid="lora-file-eta" onChange={(e) => useFile(e.currentTarget, 'eta')} /></label>
      </div>
      <div className="row">
        <button type="button" data-testid="restore-loras" onClick={() => { t.useLora('delta', null, MODEL_LORA_NAMES.delta); t.useLora('eta', null, MODEL_LORA_NAMES.eta); }}>Restore the model's η and δ</button>
      </div>
    </section>
  );
}
