// Helpers of the GPU e2e specs: record the worker's events (its 'done' events carry GenerationStats), and serve the
// tiny fixture model (src/worker/tiny-model.ts) from memory at /tiny/ so long runs stay short on SwiftShader.
import type { Page } from '@playwright/test';
import { buildTinyModel } from '../src/worker/tiny-model.ts';
import type { WorkerEvent } from '../src/worker/protocol.ts';

/** Wraps the page's Worker constructor before any page script runs; events land in window.__workerEvents. */
export async function recordWorkerEvents(page: Page) {
  await page.addInitScript(() => {
    const w = window as unknown as { Worker: typeof Worker; __workerEvents: unknown[]; __worker?: Worker };
    const Native = w.Worker;
    w.__workerEvents = [];
    w.Worker = class extends Native {
      constructor(url: string | URL, options?: WorkerOptions) {
        super(url, options);
        w.__worker = this;
        this.addEventListener('message', (e: MessageEvent<{ type: string }>) => {
          if (e.data.type !== 'image') w.__workerEvents.push(e.data); // images are large; counters are what we need
        });
      }
    };
  });
}

export async function workerEvents(page: Page): Promise<WorkerEvent[]> {
  return page.evaluate(() => (window as unknown as { __workerEvents: WorkerEvent[] }).__workerEvents);
}

/** Requests for /tiny/<file> (a glob would also catch the page URL, whose query contains model=/tiny/). */
export const isTinyModelFile = (url: URL) => url.pathname.startsWith('/tiny/');

/** Serves the tiny model at /tiny/ (manifest.json and its files); returns the model URL for ?model=. */
export async function serveTinyModel(page: Page, options: Parameters<typeof buildTinyModel>[0] = {}): Promise<string> {
  const { manifest, files } = buildTinyModel(options);
  await page.route(isTinyModelFile, async (route) => {
    const name = new URL(route.request().url()).pathname.split('/').pop()!;
    if (name === 'manifest.json') return route.fulfill({ json: manifest });
    const bytes = files.get(name);
    return bytes ? route.fulfill({ body: Buffer.from(bytes), contentType: 'application/octet-stream' }) : route.fulfill({ status: 404 });
  });
  return '/tiny/';
}

/** Asks the worker to destroy its GPU device (protocol 'debug-lose-device'), as a lost device would behave. */
export async function loseDevice(page: Page) {
  await page.evaluate(() => (window as unknown as { __worker: Worker }).__worker.postMessage({ type: 'debug-lose-device' }));
}
