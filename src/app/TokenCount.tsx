// The prompt's token count against the text encoder's limit, as A1111 shows it ("12/75"); red when the prompt will be
// truncated. Counted in the worker by the model's own tokenizer; the embedded model has no such limit to show.
import { useEffect, useState } from 'react';
import { nextRequestId, onWorkerEvent, sendToWorker } from './worker-client.ts';
import { usePlayground } from './store.ts';

export function TokenCount({ prompt, testId }: { prompt: string; testId: string }) {
  const limit = usePlayground((s) => s.model?.tokenLimit);
  const [count, setCount] = useState<{ prompt: string; count: number } | undefined>();
  useEffect(() => {
    if (!limit) return;
    const id = nextRequestId();
    const timer = setTimeout(() => sendToWorker({ type: 'count-tokens', id, prompt }), 120);
    const stop = onWorkerEvent((event) => {
      if (event.type === 'tokens' && event.id === id) setCount({ prompt: event.prompt, count: event.count });
    });
    return () => { clearTimeout(timer); stop(); };
  }, [prompt, limit]);
  if (!limit || !count) return null;
  return <span className={count.count > limit ? 'tokens over' : 'tokens'} data-testid={testId} title="tokens of the text encoder's limit; the rest is cut off">{count.count}/{limit}</span>;
}
