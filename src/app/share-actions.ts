// Save and share: PNG downloads that carry the settings as A1111's `parameters` text chunk, a dropped (or opened)
// PNG's settings restored, and the page link copied. The formats are src/share's; this file only wires them to the page.
import type { ImageKind } from '../worker/protocol.ts';
import { formatParameters, parseParameters } from '../share/parameters.ts';
import { readPngText, withPngText } from '../share/png-text.ts';
import { etaOn, etaSetting, hasEtaSwitch, usePlayground } from './store.ts';
import { download } from './training-store.ts';

/** The settings that made the shown images, as A1111 text (the concrete seed, never −1). */
export function currentParameters(): string | undefined {
  const s = usePlayground.getState();
  const image = s.images.npo ?? s.images.baseline;
  if (!image) return undefined;
  return formatParameters({
    params: { ...s.params, seed: image.seed }, width: image.width, height: image.height,
    model: s.model?.name, eta: etaSetting(s), delta: s.loraNames.delta ?? 'model',
  });
}

export async function downloadImage(kind: ImageKind) {
  const s = usePlayground.getState();
  const image = s.images[kind];
  const text = currentParameters();
  if (!image || !text) return;
  const canvas = Object.assign(document.createElement('canvas'), { width: image.width, height: image.height });
  canvas.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(image.rgba), image.width, image.height), 0, 0);
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'));
  if (!blob) return usePlayground.setState({ error: 'the browser could not encode the PNG' });
  const png = withPngText(new Uint8Array(await blob.arrayBuffer()), 'parameters', text);
  download(png, `npo-${image.seed}-${kind === 'npo' ? 'with-npo' : 'without-npo'}.png`, 'image/png');
}

/** Reads a PNG's `parameters` chunk and applies the settings it states (the η switch first), then generates. */
export async function restoreFromPng(file: File) {
  const page = usePlayground.getState();
  try {
    const text = (await readPngText(new Uint8Array(await file.arrayBuffer()))).get('parameters');
    if (text === undefined) throw new Error('it has no "parameters" text chunk (A1111 or this playground writes one)');
    const parsed = parseParameters(text);
    const notes = [
      parsed.eta !== undefined && !hasEtaSwitch(page) ? `made with η ${parsed.eta ? 'on' : 'off'}; this model has no η` : '',
      parsed.model && page.model && parsed.model !== page.model.name ? `made with model ${parsed.model}, shown with ${page.model.name}` : '',
      parsed.size && page.model?.kind === 'embedded' && (parsed.size.width !== page.model.width || parsed.size.height !== page.model.height) ? `made at ${parsed.size.width}×${parsed.size.height}` : '',
      ...parsed.ignored.map((i) => `not applied: ${i}`),
    ].filter(Boolean);
    // Prepared models generate at any size, so theirs is restored too; the embedded model has one size.
    const sized = parsed.size && page.model?.kind && page.model.kind !== 'embedded' ? { width: parsed.size.width, height: parsed.size.height } : {};
    if (parsed.eta !== undefined && hasEtaSwitch(page) && parsed.eta !== etaOn(page)) await page.setEta(parsed.eta, false);
    page.setParams({ ...parsed.params, ...sized });
    usePlayground.setState({ error: undefined, notice: `settings restored from ${file.name}${notes.length ? ` (${notes.join('; ')})` : ''}` });
    usePlayground.getState().generate();
  } catch (error) {
    usePlayground.setState({ error: `cannot restore settings from ${file.name}: ${(error as Error).message}` });
  }
}

export async function copyLink(): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(location.href);
    return true;
  } catch {
    return false;
  }
}
