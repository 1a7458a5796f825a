import { describe, expect, it } from 'vitest';
import { summarise, toMarkdown, type CpuProfile } from './cpu-profile.js';

const frame = (id: number, functionName: string, url = '', lineNumber = 0) => ({ id, callFrame: { functionName, url, lineNumber } });

describe('the CPU profile summary', () => {
  it('charges each sample its time delta, and gives GC and idle apart; shares are of busy time', () => {
    const p: CpuProfile = {
      nodes: [
        frame(1, '(root)'),
        frame(2, '(garbage collector)'),
        frame(3, '(idle)'),
        frame(4, 'containsCardNumber', `file://${process.cwd()}/platform/card-numbers.ts`, 9),
        frame(5, 'hashObject', `file://${process.cwd()}/node_modules/prom-client/lib/util.js`, 40),
        frame(6, 'verify', `file://${process.cwd()}/node_modules/@scope/pkg/index.js`, 1),
      ],
      samples: [4, 4, 2, 3, 5, 6, 3],
      timeDeltas: [1000, 1000, 2000, 5000, 500, 500, 5000], // µs
      startTime: 0,
      endTime: 15_000,
    };
    const s = summarise(p);
    expect([s.totalMs, s.idleMs, s.busyMs, s.gcMs]).toEqual([15, 10, 5, 2]);
    expect(s.byFile).toEqual([
      { name: 'platform/card-numbers.ts', ms: 2, share: 0.4 }, // ties keep the order of first appearance
      { name: '(garbage collector)', ms: 2, share: 0.4 },
      { name: 'node_modules/prom-client', ms: 0.5, share: 0.1 },
      { name: 'node_modules/@scope/pkg', ms: 0.5, share: 0.1 },
    ]);
    expect(s.byFunction[0]).toEqual({ name: 'containsCardNumber platform/card-numbers.ts:10', ms: 2, share: 0.4 });
    expect(toMarkdown(s)).toContain('garbage collection 2 ms = 40.0 % of busy time');
  });
});
