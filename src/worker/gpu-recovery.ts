// Worker-side GPU robustness (issue 6 item 4): device loss and uncaptured GPU errors become messages for the page,
// and a lost device marks the engine for recreation on the next job (worker.ts `ready`).

/** At most this many uncaptured-error messages per device: a broken kernel would otherwise flood the page. */
const MAX_REPORTED_ERRORS = 5;

export function watchDevice(device: GPUDevice, onLost: (message: string) => void, onError: (message: string) => void): void {
  void device.lost.then((info) => onLost(`GPU device lost (${info.reason}${info.message ? `: ${info.message}` : ''})`));
  let reported = 0;
  device.addEventListener('uncapturederror', (event) => {
    const error = (event as GPUUncapturedErrorEvent).error;
    if (reported++ < MAX_REPORTED_ERRORS) onError(`GPU error (${error.constructor.name}): ${error.message}`);
  });
}
