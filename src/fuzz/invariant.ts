// Post-parse checks of the fuzz targets: a parse that returned something it should not have (negative dims, a length
// that disagrees with the shape, NaN in accepted weights, a path outside the model directory) throws InvariantError,
// which the fuzzer counts as a crash.

export class InvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantError';
  }
}

export function invariant(ok: boolean, message: string): void {
  if (!ok) throw new InvariantError(message);
}
