// Label pairs "of two seeds" (issue 11, item 5): the same image (with NPO, or without) at the current settings and
// two seeds, generated one after the other; the person picks the better one and the pick joins the same pairs set as
// the pick between baseline and NPO (src/share/picks.ts → pairs.json, trainable at once).
import { create } from 'zustand';
import type { GenerateParams, ImageKind } from '../worker/protocol.ts';
import type { RgbaImage } from './PixelCanvas.tsx';
import { createRequester } from './image-requests.ts';
import { usePlayground } from './store.ts';
import { useTraining } from './training-store.ts';

export interface SeedPair { kind: ImageKind; params: GenerateParams; seeds: [number, number]; images: RgbaImage[]; key: string }

export interface SeedPairState {
  kind: ImageKind;
  /** The second seed; undefined: the first seed + 1. */
  secondSeed?: number;
  status: 'idle' | 'running';
  pair?: SeedPair;
  /** Which of the two was picked (0: the first seed's image). */
  picked?: 0 | 1;
  message?: string;
  set(patch: Partial<Pick<SeedPairState, 'kind' | 'secondSeed'>>): void;
  run(): Promise<void>;
  cancel(): void;
  pick(which: 0 | 1): void;
}

const requester = createRequester('two-seed generation');
const MAX_SEED = 0xffffffff;

export const useSeedPair = create<SeedPairState>()((set, get) => ({
  kind: 'npo',
  status: 'idle',
  set: (patch) => set(patch),
  async run() {
    const page = usePlayground.getState();
    const { kind, secondSeed, status } = get();
    if (status === 'running' || page.status === 'loading' || page.status === 'failed') return;
    const first = page.params.seed === -1 ? crypto.getRandomValues(new Uint32Array(1))[0] : page.params.seed;
    const second = secondSeed ?? (first + 1) % (MAX_SEED + 1);
    if (second === first) return set({ message: 'the two seeds are equal: choose another second seed' });
    const params = { ...page.params, seed: first };
    requester.reset();
    set({ status: 'running', pair: undefined, picked: undefined, message: `seed ${first}…` });
    try {
      const images: RgbaImage[] = [];
      for (const seed of [first, second]) {
        images.push((await requester.request({ ...params, seed }, [kind])).get(kind)!);
        set({ message: images.length === 1 ? `seed ${second}…` : undefined });
      }
      const key = `seeds:${JSON.stringify([kind, params.prompt, params.negativePrompt, params.steps, params.omega, params.alpha, params.beta, params.scheduler, first, second, page.loraVersions])}`;
      set({ status: 'idle', pair: { kind, params, seeds: [first, second], images, key } });
    } catch (error) {
      set({ status: 'idle', message: (error as Error).message });
    }
  },
  cancel: () => (get().status === 'running' ? requester.cancel() : undefined),
  pick(which) {
    const { pair } = get();
    if (!pair) return;
    const [winner, loser] = [pair.images[which], pair.images[1 - which]];
    useTraining.getState().addPick({ prompt: pair.params.prompt, winner: winner.rgba, loser: loser.rgba, width: winner.width, height: winner.height, key: pair.key });
    set({ picked: which });
  },
}));
