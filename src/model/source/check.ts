// The one check every model file's bytes pass, whatever their source (network, browser cache, a chosen folder, disk,
// memory): byte count and SHA-256 against the manifest, fed piece by piece as the bytes stream past, so a shard is
// verified without ever being whole in memory. A server that answers with an HTML page instead of a model file (a
// common misconfiguration) is named as such.
import { ManifestError, type ManifestFile } from '../manifest.ts';
import { createSha256 } from '../../util/sha256.ts';

export interface FileCheck {
  /** Adds the next bytes of the file; throws at once when they run past the manifest's size. */
  update(piece: Uint8Array): void;
  /** Throws a ManifestError naming what is wrong (an HTML page, a short file, another file's hash). */
  finish(): void;
  /** Bytes seen so far. */
  readonly received: number;
}

/** Enough of a file's start to recognise an HTML page. */
const HEAD_BYTES = 64;

export function startFileCheck(entry: ManifestFile): FileCheck {
  const hash = createSha256();
  const head = new Uint8Array(HEAD_BYTES);
  let received = 0;
  return {
    update(piece) {
      if (received < HEAD_BYTES) head.set(piece.subarray(0, HEAD_BYTES - received), received);
      if (received + piece.byteLength > entry.bytes) {
        if (looksLikeHtml(head.subarray(0, received + piece.byteLength))) throw htmlError(entry);
        throw new ManifestError(`${entry.path}: the server sent more than the manifest's ${entry.bytes} bytes (a different file?)`);
      }
      hash.update(piece);
      received += piece.byteLength;
    },
    finish() {
      if (looksLikeHtml(head.subarray(0, received))) throw htmlError(entry);
      if (received !== entry.bytes) throw sizeError(entry, received);
      const hex = hash.hex();
      if (hex !== entry.sha256) throw new ManifestError(`${entry.path}: SHA-256 ${hex.slice(0, 12)}… does not match the manifest's ${entry.sha256.slice(0, 12)}…`);
    },
    get received() {
      return received;
    },
  };
}

/** A file whose size differs from the manifest's, found before or after reading it. */
export const sizeError = (entry: ManifestFile, got: number) =>
  new ManifestError(`${entry.path}: expected ${entry.bytes} bytes, got ${got} (truncated or replaced file)`);

const looksLikeHtml = (bytes: Uint8Array) => /^\s*<(!doctype|html)/i.test(new TextDecoder().decode(bytes));
const htmlError = (entry: ManifestFile) => new ManifestError(`${entry.path}: the server sent an HTML page instead of the model file`);
