// A live look while a slider (α, β, ω) is dragged (issue 11, item 8): each move asks for the images the new value
// changes at a reduced step count (a quarter of the steps, at least DRAG_MIN_STEPS), one request at a time with the
// latest value queued; the release commits and the page generates the full-step image, which replaces the preview.
// The worker aborts a running generation when another arrives, so a move also stops a full generation made stale.
import type { GenerateParams, ImageKind } from '../worker/protocol.ts';
import { createRequester } from './image-requests.ts';
import { imageKeys, usePlayground, type ShownImage } from './store.ts';

export const DRAG_MIN_STEPS = 2;

/** The reduced step count of a drag preview: a quarter of `steps`, at least DRAG_MIN_STEPS, at most `steps`. */
export const dragSteps = (steps: number) => Math.min(steps, Math.max(DRAG_MIN_STEPS, Math.ceil(steps / 4)));

/** Reduced-step images, each keyed as the full-step image of the same settings would be (it stands in for that one). */
export interface DragPreview { steps: number; images: Partial<Record<ImageKind, ShownImage>> }

const requester = createRequester('drag preview');
let busy = false;
let queued = false;
let dragging = false;

/** Called on every slider move: previews the current settings when no preview is in flight, else queues them. */
export function previewDrag() {
  dragging = true;
  if (busy) return void (queued = true);
  void run();
}

/** Called on release, before the full generation: queued previews are dropped and late ones are not shown. */
export function endDrag() {
  dragging = false;
  queued = false;
}

async function run() {
  const page = usePlayground.getState();
  if (page.status === 'loading' || page.status === 'failed' || page.params.seed === -1) return;
  const params: GenerateParams = page.params;
  const keys = imageKeys(params, params.seed, page.loraVersions);
  const stale = (['baseline', 'npo'] as const).filter((kind) => page.images[kind]?.key !== keys[kind]);
  if (stale.length === 0) return;
  busy = true;
  requester.reset();
  try {
    const steps = dragSteps(params.steps);
    const images = await requester.request({ ...params, steps }, stale);
    if (!dragging) return;
    const shown: DragPreview['images'] = {};
    for (const [kind, image] of images) shown[kind] = { ...image, key: keys[kind], prompt: params.prompt };
    usePlayground.setState({ dragPreview: { steps, images: shown } });
  } catch {
    // Interrupted by the next move's request or by the release's full generation: nothing to show.
  } finally {
    busy = false;
    if (queued && dragging) (queued = false), void run();
  }
}
