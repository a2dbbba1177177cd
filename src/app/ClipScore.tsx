// The CLIP score on the page, for real models (the embedded model shows its world's reward instead): a "CLIP model
// folder" picker and, under each image, the score as the embedded reward is shown (`score-baseline` / `score-npo`,
// the NPO image's difference to the baseline highlighted).
import { useEffect } from 'react';
import type { ImageKind } from '../worker/protocol.ts';
import { clipKey, useClip, type ClipResult, type ScorableImage } from './clip-store.ts';

export const CLIP_SCORE_MEANING = 'CLIP score = max(100 · cos(image, prompt), 0), as torchmetrics CLIPScore';

/** The image's CLIP result, asked for once the folder is loaded. */
export function useClipScore(image: ScorableImage | undefined): ClipResult | undefined {
  const status = useClip((s) => s.status);
  const result = useClip((s) => (image ? s.results[clipKey(image)] : undefined));
  useEffect(() => {
    if (image && status === 'ready') useClip.getState().request(image);
  }, [image, status]);
  return result;
}

/** Images that have no key of their own (sweep cells) get one, by identity. */
const imageIds = new WeakMap<object, string>();
let lastImageId = 0;
function idOf(image: object): string {
  if (!imageIds.has(image)) imageIds.set(image, `unkeyed-${++lastImageId}`);
  return imageIds.get(image)!;
}

type Unkeyed = Omit<ScorableImage, 'key' | 'prompt'>;

/** The CLIP scores of several images (the sweep's cells) once a folder is loaded; undefined where none (yet). */
export function useClipScores(items: ({ image: Unkeyed; prompt: string } | undefined)[]): (number | undefined)[] {
  const status = useClip((s) => s.status);
  const results = useClip((s) => s.results);
  const scorable = items.map((item) => item && { ...item.image, key: idOf(item.image), prompt: item.prompt });
  useEffect(() => {
    if (status === 'ready') for (const image of scorable) if (image) useClip.getState().request(image);
  });
  return scorable.map((image) => {
    const result = image && results[clipKey(image)];
    return result?.state === 'done' ? result.score : undefined;
  });
}

export function ClipFolderPicker() {
  const s = useClip();
  return (
    <p className="clip-picker">
      <label className="file-button" title="a CLIP export for transformers.js (e.g. Xenova/clip-vit-base-patch32): onnx/text_model.onnx, onnx/vision_model.onnx, config.json, preprocessor_config.json, tokenizer files. Read here, nothing is uploaded.">
        CLIP model folder…
        <input type="file" data-testid="clip-folder" {...{ webkitdirectory: '', directory: '' }}
          onChange={(e) => { if (e.target.files?.length) s.choose([...e.target.files]); e.target.value = ''; }} />
      </label>{' '}
      <span data-testid="clip-status" data-status={s.status} role={s.status === 'failed' ? 'alert' : 'status'}>
        {s.status === 'none' ? 'choose one to score images by prompt similarity'
          : s.status === 'loading' ? `loading ${s.folder}…`
          : s.status === 'ready' ? `${s.folder} (${s.description})` : s.error}
      </span>
    </p>
  );
}

export function ClipScoreLine({ kind, image, baseline }: { kind: ImageKind; image?: ScorableImage; baseline?: ScorableImage }) {
  const result = useClipScore(image);
  const other = useClipScore(kind === 'npo' ? baseline : undefined);
  const status = useClip((s) => s.status);
  if (!image) return null;
  if (result?.state !== 'done') {
    const reason = status !== 'ready' ? 'choose a CLIP model folder to score real models' : result?.state === 'failed' ? result.message : 'scoring…';
    return <div className="score"><p className="score none" data-testid={`score-${kind}`} title={reason}>CLIP {result?.state === 'pending' ? '…' : '—'}</p></div>;
  }
  const diff = other?.state === 'done' ? result.score - other.score : undefined;
  return (
    <div className="score">
      <p data-testid={`score-${kind}`} data-score={result.score} data-cosine={result.cosine}
        title={`${CLIP_SCORE_MEANING}; cosine ${result.cosine.toFixed(4)}; ${Math.round(result.ms)} ms`}>
        CLIP <strong>{result.score.toFixed(2)}</strong>
        {diff !== undefined && <span data-testid="score-diff" className={diff > 0 ? 'up' : diff < 0 ? 'down' : ''}> ({diff >= 0 ? '+' : '−'}{Math.abs(diff).toFixed(2)})</span>}
      </p>
    </div>
  );
}
