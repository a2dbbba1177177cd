// The playground page: controls on the left, the two images side by side ("without NPO" = ordinary CFG with θ_pos on
// both branches; "with NPO" = θ_neg = θ + α·η + β·δ on the negative branch), progress and backend status.
import { SCHEDULER_LABELS, type SchedulerName } from '../diffusion/schedulers/index.ts';
import { usePlayground } from './store.ts';
import { Slider } from './Slider.tsx';
import { ImagePane } from './ImagePane.tsx';
import { TrainPanel } from './TrainPanel.tsx';
import { LoadProgress, ModelPicker } from './ModelPicker.tsx';
import { TokenCount } from './TokenCount.tsx';

export function App() {
  const s = usePlayground();
  const { params, setParam, generate } = s;
  const busy = s.status === 'generating';
  const running = s.running?.images ?? [];
  const numberField = (key: 'seed' | 'steps', testId: string, min: number, max: number) => (
    <label>
      <span>{key}</span>
      <input type="number" data-testid={testId} min={min} max={max} value={params[key]}
        onChange={(e) => setParam(key, Math.trunc(Number(e.target.value)))} onBlur={generate}
        onKeyDown={(e) => e.key === 'Enter' && generate()} />
    </label>
  );
  return (
    <main data-status={s.status}>
      <header>
        <h1>NPO playground</h1>
        <span className="badge" data-testid="backend" title={s.adapter}>{s.backend ?? (s.status === 'failed' ? 'failed' : 'starting…')}</span>
        {s.model && <span className="model" data-testid="model-name">{s.model.name}{s.model.status === 'standin' ? ' (untrained stand-in)' : ''}</span>}
      </header>
      <ModelPicker />
      {s.error && <div role="alert" className="error" data-testid="error">{s.error}</div>}
      {s.notice && <div className="notice" data-testid="notice">{s.notice}</div>}
      <section className="layout">
        <form className="controls" onSubmit={(e) => { e.preventDefault(); generate(); }}>
          <label><span>prompt <TokenCount prompt={params.prompt} testId="prompt-tokens" /></span>
            <textarea data-testid="prompt" rows={2} value={params.prompt} onChange={(e) => setParam('prompt', e.target.value)} /></label>
          <label><span>negative prompt</span>
            <input data-testid="negative-prompt" value={params.negativePrompt} onChange={(e) => setParam('negativePrompt', e.target.value)} /></label>
          <div className="row">
            {numberField('seed', 'seed', -1, 0xffffffff)}
            {numberField('steps', 'steps', 1, 200)}
            <label><span>scheduler</span>
              <select data-testid="scheduler" value={params.scheduler} onChange={(e) => { setParam('scheduler', e.target.value); generate(); }}>
                {(s.model?.schedulers ?? [params.scheduler]).map((name) => <option key={name} value={name}>{SCHEDULER_LABELS[name as SchedulerName] ?? name}</option>)}
              </select></label>
          </div>
          <Slider label="ω guidance" testId="slider-omega" value={params.omega} min={0} max={15} step={0.25} onInput={(v) => setParam('omega', v)} onCommit={generate} />
          <Slider label="α (η on the negative branch)" testId="slider-alpha" value={params.alpha} min={0} max={1} step={0.05} onInput={(v) => setParam('alpha', v)} onCommit={generate} />
          <Slider label="β (δ on the negative branch)" testId="slider-beta" value={params.beta} min={0} max={1} step={0.05} onInput={(v) => setParam('beta', v)} onCommit={generate} />
          <div className="row">
            <button type="submit" data-testid="generate" disabled={s.status === 'loading' || s.status === 'failed'}>Generate</button>
            <button type="button" data-testid="cancel" disabled={!busy} onClick={s.cancel}>Cancel</button>
          </div>
          <progress data-testid="progress" max={Math.max(1, s.status === 'loading' ? s.loading?.total ?? 1 : s.progress.total)}
            value={s.status === 'loading' ? s.loading?.loaded ?? 0 : s.progress.step} />
          <LoadProgress />
          <p className="status" data-testid="status">
            {s.status === 'loading' ? s.loading?.message ?? 'starting the worker…'
              : busy ? `step ${s.progress.step}/${s.progress.total}`
              : s.lastSeed !== undefined ? `seed ${s.lastSeed} · ${Math.round(s.lastMilliseconds ?? 0)} ms` : ''}
          </p>
        </form>
        <div className="images" data-testid="active-loras" title={`η: ${s.loraNames.eta ?? "the model's"} · δ: ${s.loraNames.delta ?? "the model's"}`}>
          <ImagePane title="without NPO" testId="image-baseline" image={s.images.baseline} preview={s.previews.baseline} busy={running.includes('baseline')} />
          <ImagePane title="with NPO" testId="image-npo" image={s.images.npo} preview={s.previews.npo} busy={running.includes('npo')} />
        </div>
        <TrainPanel disabled={s.status === 'loading' || s.status === 'failed'} />
      </section>
    </main>
  );
}
