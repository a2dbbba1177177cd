// One generated image on a <canvas> (so tests and users can read its pixels), scaled up without smoothing.
import { useEffect, useRef } from 'react';
import type { ShownImage } from './store.ts';

export function ImagePane({ title, testId, image, busy }: { title: string; testId: string; image?: ShownImage; busy: boolean }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const c = canvas.current;
    if (!c || !image) return;
    c.width = image.width;
    c.height = image.height;
    c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(image.rgba), image.width, image.height), 0, 0);
    c.dataset.key = image.key;
  }, [image]);
  return (
    <figure className={busy ? 'pane busy' : 'pane'}>
      <canvas ref={canvas} data-testid={testId} width={32} height={32} />
      <figcaption>{title}</figcaption>
    </figure>
  );
}
