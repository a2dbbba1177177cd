// Which model the page runs: the embedded one, a model directory by URL (`?model=`), or a prepared directory chosen
// from disk (read by the worker, nothing is uploaded). Also shows a model load in bytes with an ETA, and empties
// the browser's model cache.
import { useEffect, useRef, useState } from 'react';
import { clearModelCache, loadLocalModel, usePlayground } from './store.ts';
import { formatBytes } from '../util/format-bytes.ts';

export function ModelPicker() {
  const s = usePlayground();
  const [url, setUrl] = useState(() => new URLSearchParams(location.search).get('model') ?? '');
  const open = (target: string) => {
    const query = new URLSearchParams(location.search);
    if (target) query.set('model', target);
    else query.delete('model');
    location.search = query.toString();
  };
  return (
    <details className="model-picker" data-testid="model-picker">
      <summary>Model: <span data-testid="model-kind">{s.model ? `${s.model.name} (${s.model.kind ?? 'embedded'}, ${s.model.width}×${s.model.height})` : '…'}</span></summary>
      {(s.model?.offsets?.eta || s.model?.offsets?.delta) && (
        <p data-testid="model-offsets">η: {s.model.offsets.eta ?? 'none'} · δ: {s.model.offsets.delta ?? 'none'}</p>
      )}
      <div className="row">
        <button type="button" data-testid="model-embedded" onClick={() => open('')}>Embedded model</button>
        <label className="file-button">Prepared folder…
          <input type="file" data-testid="model-folder" {...{ webkitdirectory: '', directory: '' }}
            onChange={(e) => e.target.files?.length && loadLocalModel([...e.target.files])} />
        </label>
      </div>
      <form className="row" onSubmit={(e) => { e.preventDefault(); open(url.trim()); }}>
        <input data-testid="model-url" aria-label="model directory URL" placeholder="https://…/sd15-npo/ (a prepared model directory)" value={url} onChange={(e) => setUrl(e.target.value)} />
        <button type="submit" data-testid="model-url-load">Load</button>
      </form>
      <button type="button" data-testid="cache-clear" onClick={clearModelCache}>Remove downloaded models from this browser</button>
      {s.cacheCleared && <p data-testid="cache-cleared">Removed {s.cacheCleared.files} files ({formatBytes(s.cacheCleared.bytes)}).</p>}
    </details>
  );
}

/** "downloading unet/weights-00.bin · 512 MB of 1.7 GB · 1 min 20 s left" while a model loads. */
export function LoadProgress() {
  const loading = usePlayground((s) => (s.status === 'loading' ? s.loading : undefined));
  const started = useRef<{ at: number; loaded: number } | undefined>(undefined);
  useEffect(() => {
    if (!loading) started.current = undefined;
    else if (!started.current || loading.loaded < started.current.loaded) started.current = { at: performance.now(), loaded: loading.loaded };
  }, [loading]);
  if (!loading || loading.total <= 1) return null;
  const elapsed = started.current ? (performance.now() - started.current.at) / 1000 : 0;
  const rate = started.current && elapsed > 1 ? (loading.loaded - started.current.loaded) / elapsed : 0;
  const eta = rate > 0 ? (loading.total - loading.loaded) / rate : undefined;
  return (
    <p className="load-progress" data-testid="load-progress" data-loaded={loading.loaded} data-total={loading.total}>
      {formatBytes(loading.loaded)} of {formatBytes(loading.total)}{eta !== undefined ? ` · ${formatSeconds(eta)} left` : ''}
    </p>
  );
}

const formatSeconds = (s: number) => (s >= 90 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.max(1, Math.round(s))} s`);
