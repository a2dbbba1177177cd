// Preference picks a person makes by clicking the better of two images, and the pairs.json they become
// (src/train/pairs.ts's format, winner stored as "a"; NPO trains on them reversed, nothing else changes).
import { encodePairs, type PairsFile } from '../train/pairs.ts';
import { rgbaToChw } from './image.ts';

export interface Pick {
  prompt: string;
  /** RGBA bytes of the preferred and the rejected image, at width × height. */
  winner: Uint8ClampedArray;
  loser: Uint8ClampedArray;
  width: number;
  height: number;
  /** Identifies the two images, so picking the same pair twice replaces the first pick. */
  key: string;
}

/** Adds a pick, replacing an earlier pick of the same two images (a person who changes their mind). */
export function addPick(picks: readonly Pick[], pick: Pick): Pick[] {
  return [...picks.filter((p) => p.key !== pick.key), pick];
}

export function picksToPairs(picks: readonly Pick[]): PairsFile {
  if (picks.length === 0) throw new RangeError('no picks yet: pick the better image of a generation first');
  const { width, height } = picks[0];
  const other = picks.find((p) => p.width !== width || p.height !== height);
  if (other) throw new RangeError(`picks mix image sizes (${width}×${height} and ${other.width}×${other.height}); clear them and pick again`);
  return encodePairs(picks.map((p) => ({ prompt: p.prompt, winner: rgbaToChw(p.winner, width, height), loser: rgbaToChw(p.loser, width, height) })), width, height);
}
