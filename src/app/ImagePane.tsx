// One generated image on a <canvas> (so tests and users can read its pixels), scaled up without smoothing for small
// models and to fit for large ones; a click shows it at 100 %. While a generation runs, its low-resolution preview
// is drawn instead (data-preview-step says which step it shows); while a slider is dragged, a reduced-step image of
// the new settings (data-drag-steps says how many steps). Below it: its reward, pick and download buttons.
import { useEffect, useRef, type ReactNode } from 'react';
import type { ShownImage } from './store.ts';

export function ImagePane({ title, testId, image, preview, busy, dragSteps, actualSize, onToggleSize, children }: {
  title: string; testId: string; image?: ShownImage; preview?: ShownImage & { step: number }; busy: boolean; dragSteps?: number;
  actualSize?: boolean; onToggleSize?: () => void; children?: ReactNode;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const shown = preview ?? image;
  useEffect(() => {
    const c = canvas.current;
    if (!c || !shown) return;
    c.width = shown.width;
    c.height = shown.height;
    c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(shown.rgba), shown.width, shown.height), 0, 0);
    c.dataset.key = shown.key;
  }, [shown]);
  const small = (shown?.width ?? 32) <= 256;
  return (
    <figure className={['pane', busy && 'busy', (preview || dragSteps) && 'preview', actualSize && 'actual', small && 'small'].filter(Boolean).join(' ')}>
      <canvas ref={canvas} data-testid={testId} data-preview-step={preview?.step} data-drag-steps={preview ? undefined : dragSteps} width={32} height={32}
        role="img" aria-label={`${title}${shown ? `, ${shown.width}×${shown.height}` : ''}`}
        title={actualSize ? 'click to fit' : 'click for 100 %'} onClick={onToggleSize} tabIndex={onToggleSize ? 0 : undefined}
        onKeyDown={(e) => { if (onToggleSize && (e.key === 'Enter' || e.key === ' ')) (e.preventDefault(), onToggleSize()); }} />
      <figcaption>{title}</figcaption>
      {children}
    </figure>
  );
}
