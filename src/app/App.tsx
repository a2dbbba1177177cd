// The playground page: controls on the left; the two images of one seed ("without NPO" = ordinary CFG with θ_pos on
// both branches; "with NPO" = θ_neg = θ + α·η + β·δ on the negative branch) side by side, as a wipe or as their
// difference, each with its reward, a pick button (label a preference pair) and a PNG download, and a pick between
// two seeds of one image; then the α×β sweep, the history strip and the training panel. Under the images, one line
// says what they compare and its held-out win rate (held-out.ts). A four-step tour (Tour.tsx) shows a first visitor
// around. Keys: Ctrl+Enter generates, Esc cancels (or closes the tour), 1 / 2 pick the better image.
import { useEffect, useMemo, useState } from 'react';
import { SCHEDULER_LABELS, type SchedulerName } from '../diffusion/schedulers/index.ts';
import { describeScores, scoreRgba, type PageScore } from '../share/score.ts';
import { AXIS_RANGES } from '../share/sweep.ts';
import type { ImageKind } from '../worker/protocol.ts';
import { etaOn, hasEtaSwitch, isModelLora, NO_ETA, shownImage, usePlayground, type CompareView as View, type PlaygroundState, type ShownImage } from './store.ts';
import { endDrag, previewDrag } from './drag-preview.ts';
import { useTraining } from './training-store.ts';
import { useSweep } from './sweep-store.ts';
import { Slider } from './Slider.tsx';
import { ImagePane } from './ImagePane.tsx';
import { CompareView } from './CompareView.tsx';
import { SweepPanel } from './SweepPanel.tsx';
import { SeedPairPanel } from './SeedPairPanel.tsx';
import { HistoryStrip } from './HistoryStrip.tsx';
import { TrainPanel } from './TrainPanel.tsx';
import { LoadProgress, ModelPicker } from './ModelPicker.tsx';
import { PreparePanel } from './PreparePanel.tsx';
import { TokenCount } from './TokenCount.tsx';
import { copyLink, downloadImage, restoreFromPng } from './share-actions.ts';
import { ClipFolderPicker, ClipScoreLine } from './ClipScore.tsx';
import { heldOutClaim } from './held-out.ts';
import { Tour, useFirstRunTour, useTour } from './Tour.tsx';

const VIEWS: [View, string][] = [['side-by-side', 'Side by side'], ['wipe', 'Wipe'], ['difference', 'Difference']];

/** The embedded world's reward; real models get a CLIP score instead (ClipScore.tsx). */
function useScore(image: ShownImage | undefined, embedded: boolean): PageScore | undefined {
  return useMemo(() => image && (embedded ? scoreRgba(image.rgba, image.width, image.height, image.prompt ?? '')
    : { ok: false, reason: "the reward is the embedded world's; real models have no score here yet" }), [image, embedded]);
}

/** Ctrl/⌘+Enter generates, Esc cancels the generation and the sweep, 1 / 2 pick (outside text fields). */
function useKeyboard() {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement;
      const typing = target.matches?.('input:not([type=range]):not([type=checkbox]), textarea, select');
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        usePlayground.getState().generate();
      } else if (e.key === 'Escape') {
        usePlayground.getState().cancel();
        useSweep.getState().cancel();
      } else if (!typing && !e.ctrlKey && !e.metaKey && !e.altKey && (e.key === '1' || e.key === '2')) {
        useTraining.getState().pick(e.key === '1' ? 'baseline' : 'npo');
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
}

/** A PNG dropped anywhere on the page restores the settings in its `parameters` chunk. */
function useDrop() {
  const [over, setOver] = useState(false);
  useEffect(() => {
    const hasFiles = (e: DragEvent) => Array.from(e.dataTransfer?.types ?? []).includes('Files');
    const onOver = (e: DragEvent) => { if (hasFiles(e)) (e.preventDefault(), setOver(true)); };
    const onLeave = () => setOver(false);
    const onDrop = (e: DragEvent) => {
      const file = e.dataTransfer?.files[0];
      setOver(false);
      if (!file) return;
      e.preventDefault();
      void restoreFromPng(file);
    };
    window.addEventListener('dragover', onOver);
    window.addEventListener('dragleave', onLeave);
    window.addEventListener('drop', onDrop);
    return () => (window.removeEventListener('dragover', onOver), window.removeEventListener('dragleave', onLeave), window.removeEventListener('drop', onDrop));
  }, []);
  return over;
}

function ScoreLine({ kind, score, other }: { kind: ImageKind; score?: PageScore; other?: PageScore }) {
  if (!score) return null;
  if (!score.ok) return <p className="score none" data-testid={`score-${kind}`} title={score.reason}>reward —</p>;
  const diff = kind === 'npo' && other?.ok ? score.scores.total - other.scores.total : undefined;
  const components = (['fidelity', 'detail', 'colour', 'composition'] as const).map((k) => {
    const d = kind === 'npo' && other?.ok ? score.scores[k] - other.scores[k] : 0;
    return <span key={k} className={d > 0.005 ? 'up' : d < -0.005 ? 'down' : ''}>{k} {score.scores[k].toFixed(2)}</span>;
  });
  return (
    <div className="score">
      <p data-testid={`score-${kind}`} data-score={score.scores.total} title={describeScores(score.scores)}>
        reward <strong>{score.scores.total.toFixed(3)}</strong>
        {diff !== undefined && <span data-testid="score-diff" className={diff > 0 ? 'up' : diff < 0 ? 'down' : ''}> ({diff >= 0 ? '+' : '−'}{Math.abs(diff).toFixed(3)})</span>}
      </p>
      <p className="components">{components}</p>
    </div>
  );
}

export function App() {
  const s = usePlayground();
  const t = useTraining();
  const { params, setParam, generate } = s;
  const busy = s.status === 'generating';
  const running = s.running?.images ?? [];
  const embedded = (s.model?.kind ?? 'embedded') === 'embedded';
  const scores = { baseline: useScore(s.images.baseline, embedded), npo: useScore(s.images.npo, embedded) };
  const [copied, setCopied] = useState<string>();
  const dropping = useDrop();
  useKeyboard();
  useFirstRunTour(s.status === 'ready' || s.status === 'generating');
  const pairKey = s.images.baseline && s.images.npo ? `${s.images.baseline.key}|${s.images.npo.key}` : undefined;
  const pickedKind = t.picked?.key === pairKey ? t.picked?.kind : undefined;
  const numberField = (key: 'seed' | 'steps', testId: string, min: number, max: number) => (
    <label>
      <span>{key}</span>
      <input type="number" data-testid={testId} min={min} max={max} value={params[key]}
        onChange={(e) => setParam(key, Math.trunc(Number(e.target.value)))} onBlur={generate}
        onKeyDown={(e) => e.key === 'Enter' && !e.ctrlKey && !e.metaKey && generate()} />
    </label>
  );
  const commit = () => (endDrag(), generate());
  const pane = (kind: ImageKind, title: string) => (
    <ImagePane title={title} testId={`image-${kind}`} {...shownImage(s, kind)} preview={s.previews[kind]} busy={running.includes(kind)}
      actualSize={s.actualSize} onToggleSize={s.toggleActualSize}>
      {embedded ? <ScoreLine kind={kind} score={scores[kind]} other={scores.baseline} />
        : <ClipScoreLine kind={kind} image={s.images[kind]} baseline={s.images.baseline} />}
      <div className="actions">
        <button type="button" data-testid={`pick-${kind}`} aria-pressed={pickedKind === kind} disabled={!pairKey}
          title={`this one is better (key ${kind === 'baseline' ? 1 : 2}): adds a preference pair`} onClick={() => t.pick(kind)}>
          {pickedKind === kind ? '✓ picked' : `Better (${kind === 'baseline' ? 1 : 2})`}</button>
        <button type="button" data-testid={`download-${kind}`} disabled={!s.images[kind]} onClick={() => void downloadImage(kind)}
          aria-label={`download ${title} as PNG with its settings`}>PNG ↓</button>
      </div>
    </ImagePane>
  );
  return (
    <main data-status={s.status} className={dropping ? 'dropping' : undefined}>
      <header>
        <h1>NPO playground</h1>
        <span className="backend" data-testid="backend-area">
          <span className="badge" data-testid="backend" title={s.adapter}>{s.backend ?? (s.status === 'failed' ? 'failed' : 'starting…')}</span>
          {s.backendReason && <small data-testid="backend-reason" title={s.adapter}> — {s.backendReason}</small>}
        </span>
        {s.model && <span className="model" data-testid="model-name">{s.model.name}{s.model.status === 'standin' ? ' (untrained stand-in)' : ''}</span>}
        <span className="spacer" />
        <button type="button" data-testid="tour-link" onClick={useTour.getState().open} title="a four-step look around the page">Tour</button>
        <button type="button" data-testid="copy-link" data-link={copied} onClick={async () => setCopied((await copyLink()) ? location.href : undefined)}
          title="copy a link that reproduces these images">{copied === location.href ? 'Link copied' : 'Copy link'}</button>
        <label className="open-png" title="or drop a PNG anywhere on the page">Open PNG…
          <input type="file" accept="image/png" data-testid="open-png" onChange={(e) => { const f = e.currentTarget.files?.[0]; if (f) void restoreFromPng(f); e.currentTarget.value = ''; }} /></label>
      </header>
      <Tour />
      <ModelPicker />
      <PreparePanel />
      {s.error && <div role="alert" className="error" data-testid="error">{s.error}</div>}
      {s.notice && <div className="notice" data-testid="notice" role="status">{s.notice}</div>}
      <section className="layout">
        <form className="controls" aria-label="generation settings" onSubmit={(e) => { e.preventDefault(); generate(); }}>
          <label><span>prompt <TokenCount prompt={params.prompt} testId="prompt-tokens" /></span>
            <textarea data-testid="prompt" rows={2} value={params.prompt} onChange={(e) => setParam('prompt', e.target.value)} /></label>
          <label><span>negative prompt{s.model?.kind === 'sdxl' && !params.negativePrompt
              && <small data-testid="negative-none"> (empty: none, zero embeddings as SDXL's diffusers pipeline)</small>}</span>
            <input data-testid="negative-prompt" value={params.negativePrompt} onChange={(e) => setParam('negativePrompt', e.target.value)} /></label>
          <div className="row">
            {numberField('seed', 'seed', -1, 0xffffffff)}
            {numberField('steps', 'steps', 1, 200)}
            <label><span>scheduler</span>
              <select data-testid="scheduler" value={params.scheduler} onChange={(e) => { setParam('scheduler', e.target.value); generate(); }}>
                {(s.model?.schedulers ?? [params.scheduler]).map((name) => <option key={name} value={name}>{SCHEDULER_LABELS[name as SchedulerName] ?? name}</option>)}
              </select></label>
          </div>
          <Slider label="ω guidance" testId="slider-omega" value={params.omega} min={0} max={15} step={0.25} onInput={(v) => setParam('omega', v)} onCommit={commit} onDrag={previewDrag} />
          <div className="sliders" data-tour="sliders">
          <Slider label="α (η on the negative branch)" testId="slider-alpha" value={params.alpha} min={AXIS_RANGES.alpha[0]} max={AXIS_RANGES.alpha[1]} step={0.05} onInput={(v) => setParam('alpha', v)} onCommit={commit} onDrag={previewDrag} />
          <Slider label="β (δ on the negative branch)" testId="slider-beta" value={params.beta} min={AXIS_RANGES.beta[0]} max={AXIS_RANGES.beta[1]} step={0.05} onInput={(v) => setParam('beta', v)} onCommit={commit} onDrag={previewDrag} />
          </div>
          {hasEtaSwitch(s) && <EtaSwitch inUse={etaOn(s)} />}
          <StepPreviewsSwitch />
          <div className="row">
            <button type="submit" data-testid="generate" disabled={s.status === 'loading' || s.status === 'failed'} title="Ctrl+Enter">Generate</button>
            <button type="button" data-testid="cancel" disabled={!busy} onClick={s.cancel} title="Esc">Cancel</button>
          </div>
          <progress data-testid="progress" aria-label="progress" max={Math.max(1, s.status === 'loading' ? s.loading?.total ?? 1 : s.progress.total)}
            value={s.status === 'loading' ? s.loading?.loaded ?? 0 : s.progress.step} />
          <LoadProgress />
          <p className="status" data-testid="status" aria-live="polite">
            {s.status === 'loading' ? s.loading?.message ?? 'starting the worker…'
              : busy ? `step ${s.progress.step}/${s.progress.total}`
              : s.lastSeed !== undefined ? `seed ${s.lastSeed} · ${Math.round(s.lastMilliseconds ?? 0)} ms` : ''}
          </p>
        </form>
        <div className="view" data-tour="images">
          <div className="views" role="group" aria-label="compare view">
            {VIEWS.map(([view, label]) => (
              <button key={view} type="button" data-testid={`view-${view}`} aria-pressed={s.view === view} onClick={() => s.setView(view)}>{label}</button>
            ))}
          </div>
          <CompareView />
          {!embedded && <ClipFolderPicker />}
          <div className={`images ${s.view === 'side-by-side' ? '' : 'under-compare'}`} data-testid="active-loras" title={`η: ${s.loraNames.eta ?? "the model's"} · δ: ${s.loraNames.delta ?? "the model's"}`}>
            {pane('baseline', 'without NPO')}
            {pane('npo', 'with NPO')}
          </div>
          <ClaimLine />
          <SeedPairPanel disabled={s.status === 'loading' || s.status === 'failed'} />
        </div>
        <TrainPanel disabled={s.status === 'loading' || s.status === 'failed'} />
      </section>
      <SweepPanel disabled={s.status === 'loading' || s.status === 'failed'} />
      <HistoryStrip />
    </main>
  );
}

/**
 * η on or off. On, θ_pos = θ + η: the page compares the DPO model with and without NPO. Off, θ_pos = θ and
 * θ_neg = θ + β·δ: base against base+NPO, where NPO's gain is measured (README, "the paper's table in our world").
 */
function EtaSwitch({ inUse }: { inUse: boolean }) {
  const toggle = (on: boolean) => void usePlayground.getState().setEta(on);
  return (
    <label className="check" title="off: θ_pos = θ (the base model), θ_neg = θ + β·δ">
      <input type="checkbox" data-testid="use-eta" checked={inUse} onChange={(e) => toggle(e.currentTarget.checked)} />
      <span>η (DPO) on both branches</span>
    </label>
  );
}

/** Step previews on or off: a low-resolution look at each image while it is made, one small GPU read-back each. */
function StepPreviewsSwitch() {
  const on = usePlayground((s) => s.stepPreviews);
  return (
    <label className="check" title="a low-resolution look at each image while it is made; off, a generation reads back from the GPU once per image">
      <input type="checkbox" data-testid="step-previews" checked={on} onChange={(e) => usePlayground.getState().setStepPreviews(e.currentTarget.checked)} />
      <span>Step previews</span>
    </label>
  );
}

/** What the two images compare, with its held-out win rate, on the model the numbers were measured on (held-out.ts). */
function ClaimLine() {
  const model = usePlayground((s) => s.model);
  const on = usePlayground(etaOn);
  const own = usePlayground(usesOwnLoras);
  const claim = heldOutClaim(model, on, own);
  if (!claim) return null;
  return <p className="claim" data-testid="comparison-claim" data-win-rate={claim.winRate} data-interval={claim.interval.join(',')}>{claim.sentence}</p>;
}

/** A LoRA of the person's in either role (the held-out numbers are the model's own η and δ). */
const usesOwnLoras = (s: Pick<PlaygroundState, 'loraNames'>) => !isModelLora(s.loraNames.delta, 'delta') || !(isModelLora(s.loraNames.eta, 'eta') || s.loraNames.eta === NO_ETA);
