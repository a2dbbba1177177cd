// Generations a panel asks for one after another (the α×β sweep, the two-seed pair): each request resolves with its
// images when the worker says 'done', and fails when cancelled, interrupted by another generation (the worker aborts
// the running generation when a new one arrives) or failed. One requester per panel, one request in flight at a time.
import type { GenerateParams, ImageKind, WorkerEvent } from '../worker/protocol.ts';
import type { RgbaImage } from './PixelCanvas.tsx';
import { nextRequestId, onWorkerEvent, sendToWorker } from './worker-client.ts';

export interface ImageRequester {
  /** The images of one generation, keyed by kind, plus the seed it used. */
  request(params: GenerateParams, images: ImageKind[]): Promise<Map<ImageKind, RgbaImage & { seed: number }>>;
  /** Cancels the request in flight and refuses new ones until `reset`. */
  cancel(): void;
  reset(): void;
}

/** `what` names the panel in its errors ("sweep cancelled", "sweep interrupted by another generation"). */
export function createRequester(what: string): ImageRequester {
  type Images = Map<ImageKind, RgbaImage & { seed: number }>;
  let pending: { id: number; resolve(images: Images): void; reject(error: Error): void; images: Images } | undefined;
  let cancelled = false;
  onWorkerEvent((event: WorkerEvent) => {
    if (!pending || !('id' in event) || event.id !== pending.id) return;
    const p = pending;
    if (event.type === 'image') p.images.set(event.kind, { rgba: event.rgba, width: event.width, height: event.height, seed: event.seed });
    else if (event.type === 'done') (pending = undefined), p.resolve(p.images);
    else if (event.type === 'cancelled') (pending = undefined), p.reject(new Error(cancelled ? `${what} cancelled` : `${what} interrupted by another generation`));
    else if (event.type === 'error') (pending = undefined), p.reject(new Error(event.message));
  });
  return {
    request: (params, images) => new Promise((resolve, reject) => {
      if (cancelled) return reject(new Error(`${what} cancelled`));
      const id = nextRequestId();
      pending = { id, resolve, reject, images: new Map() };
      sendToWorker({ type: 'generate', id, params, images });
    }),
    cancel() {
      cancelled = true;
      if (pending) sendToWorker({ type: 'cancel', id: pending.id });
    },
    reset: () => void (cancelled = false),
  };
}
