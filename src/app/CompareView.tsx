// The compare frame for the two images of one seed: a wipe (baseline left of the divider, NPO right of it; drag the
// divider or use the arrow keys on it) or the difference |NPO − baseline| × DIFFERENCE_GAIN. Drawn into one canvas at
// display resolution, without smoothing when the images are smaller than the frame, so its pixels can be checked.
import { useEffect, useRef, type PointerEvent as ReactPointerEvent } from 'react';
import { differenceRgba } from '../share/image.ts';
import { shownImage, usePlayground, type ShownImage } from './store.ts';

export const DIFFERENCE_GAIN = 4;
/** Display side of the frame in CSS pixels when fitting (small images are scaled up, large ones down). */
const FIT = 384;

function toCanvas(rgba: Uint8ClampedArray, width: number, height: number): HTMLCanvasElement {
  const c = Object.assign(document.createElement('canvas'), { width, height });
  c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(rgba), width, height), 0, 0);
  return c;
}

function draw(canvas: HTMLCanvasElement, view: 'wipe' | 'difference', baseline: ShownImage, npo: ShownImage, wipe: number, actualSize: boolean) {
  const scale = actualSize ? 1 : Math.min(FIT / baseline.width, FIT / baseline.height);
  const w = Math.round(baseline.width * scale), h = Math.round(baseline.height * scale);
  canvas.width = w;
  canvas.height = h;
  canvas.style.width = `${w}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = scale < 1;
  if (view === 'difference') {
    ctx.drawImage(toCanvas(differenceRgba(baseline.rgba, npo.rgba, DIFFERENCE_GAIN), baseline.width, baseline.height), 0, 0, w, h);
    return;
  }
  const split = Math.round(wipe * w);
  ctx.drawImage(toCanvas(baseline.rgba, baseline.width, baseline.height), 0, 0, w, h);
  ctx.save();
  ctx.beginPath();
  ctx.rect(split, 0, w - split, h);
  ctx.clip();
  ctx.drawImage(toCanvas(npo.rgba, npo.width, npo.height), 0, 0, w, h);
  ctx.restore();
  canvas.dataset.split = String(split);
}

export function CompareView() {
  const state = usePlayground();
  const { view, wipe, setWipe, actualSize, toggleActualSize } = state;
  const canvas = useRef<HTMLCanvasElement>(null);
  const frame = useRef<HTMLDivElement>(null);
  // While a slider is dragged the frame shows the reduced-step previews too (store.ts shownImage).
  const [baseline, npo] = [shownImage(state, 'baseline').image, shownImage(state, 'npo').image];
  const sameSize = baseline && npo && baseline.width === npo.width && baseline.height === npo.height;
  useEffect(() => {
    if (canvas.current && baseline && npo && sameSize && view !== 'side-by-side') draw(canvas.current, view, baseline, npo, wipe, actualSize);
  }, [view, baseline, npo, wipe, actualSize, sameSize]);
  if (view === 'side-by-side') return null;
  if (!sameSize) return <p className="status">Both images are needed for this view.</p>;

  const dragTo = (clientX: number) => {
    const box = canvas.current!.getBoundingClientRect();
    setWipe((clientX - box.left) / box.width);
  };
  const startDrag = (e: ReactPointerEvent) => {
    e.preventDefault();
    e.stopPropagation();
    const move = (m: PointerEvent) => dragTo(m.clientX);
    const up = () => (window.removeEventListener('pointermove', move), window.removeEventListener('pointerup', up));
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
  };
  return (
    <figure className={`compare ${actualSize ? 'actual' : ''}`} data-view={view}>
      <div className="frame" ref={frame}>
        <canvas ref={canvas} data-testid="compare-canvas" role="img" onClick={toggleActualSize}
          aria-label={view === 'wipe' ? `wipe: without NPO left of ${Math.round(wipe * 100)} %, with NPO right` : `difference |NPO − baseline| × ${DIFFERENCE_GAIN}`}
          title={actualSize ? 'click to fit' : 'click for 100 %'} />
        {view === 'wipe' && (
          <div className="divider" data-testid="wipe-divider" data-position={wipe.toFixed(4)} style={{ left: `${wipe * 100}%` }}
            role="slider" tabIndex={0} aria-label="wipe divider" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(wipe * 100)}
            onPointerDown={startDrag}
            onKeyDown={(e) => {
              const step = e.shiftKey ? 0.1 : 0.02;
              if (e.key === 'ArrowLeft') (setWipe(wipe - step), e.preventDefault());
              if (e.key === 'ArrowRight') (setWipe(wipe + step), e.preventDefault());
            }} />
        )}
      </div>
      <figcaption>{view === 'wipe' ? '← without NPO · with NPO →' : `|with NPO − without NPO| × ${DIFFERENCE_GAIN}`}</figcaption>
    </figure>
  );
}
