// An RGBA image on a <canvas> at its own resolution (CSS scales it; tests and users read its pixels).
import { useEffect, useRef, type CanvasHTMLAttributes } from 'react';

export interface RgbaImage { rgba: Uint8ClampedArray; width: number; height: number }

export function drawRgba(canvas: HTMLCanvasElement, image: RgbaImage) {
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(image.rgba), image.width, image.height), 0, 0);
}

export function PixelCanvas({ image, ...rest }: { image?: RgbaImage } & CanvasHTMLAttributes<HTMLCanvasElement> & Record<`data-${string}`, unknown>) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (ref.current && image) drawRgba(ref.current, image);
  }, [image]);
  return <canvas ref={ref} {...rest} />;
}
