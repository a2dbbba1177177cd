import { describe, expect, it } from 'vitest';
import { oneAtATime } from './one-at-a-time.ts';

describe('oneAtATime', () => {
  it('starts each call after the previous one settled, in call order, and a failure does not stop the next', async () => {
    const log: string[] = [];
    let running = 0;
    const task = oneAtATime(async (name: string, ms: number, fail = false) => {
      running++;
      log.push(`start ${name} (${running} running)`);
      await new Promise((r) => setTimeout(r, ms));
      running--;
      log.push(`end ${name}`);
      if (fail) throw new Error(name);
      return name;
    });
    const results = await Promise.allSettled([task('a', 30), task('b', 1, true), task('c', 1)]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['a', 'b', 'c']);
    expect(results[1].status).toBe('rejected');
    expect(log).toEqual(['start a (1 running)', 'end a', 'start b (1 running)', 'end b', 'start c (1 running)', 'end c']);
  });
});
