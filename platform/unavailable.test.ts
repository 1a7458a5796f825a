import { describe, expect, it } from 'vitest';
import { isUnavailable } from './unavailable.js';

describe('isUnavailable: a dependency that cannot answer now (503), not a bug (500)', () => {
  it("counts node-postgres's clients whose connection died, as a Postgres failover leaves them", () => {
    expect(isUnavailable(new Error('Client has encountered a connection error and is not queryable'))).toBe(true);
    expect(isUnavailable(new Error('Client was closed and is not queryable'))).toBe(true);
    expect(isUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
  });

  it('leaves errors of our own code alone', () => {
    expect(isUnavailable(new Error('payHold start: refused a held hold (x)'))).toBe(false);
    expect(isUnavailable(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBe(false);
    expect(isUnavailable('not an error')).toBe(false);
  });
});
