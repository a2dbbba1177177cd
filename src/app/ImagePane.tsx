// One generated image on a <canvas> (so tests and users can read its pixels), scaled up without smoothing. While a
// generation runs, its low-resolution preview is drawn instead (data-preview-step says which step it shows).
import { useEffect, useRef } from 'react';
import type { ShownImage } from './store.ts';

export function ImagePane({ title, testId, image, preview, busy }: { title: string; testId: string; image?: ShownImage; preview?: ShownImage & { step: number }; busy: boolean }) {
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
  return (
    <figure className={['pane', busy && 'busy', preview && 'preview'].filter(Boolean).join(' ')}>
      <canvas ref={canvas} data-testid={testId} data-preview-step={preview?.step} width={32} height={32} />
      <figcaption>{title}</figcaption>
    </figure>
  );
}
