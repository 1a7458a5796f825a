// k6 provides a console (log, info, warn, error, debug) but @types/k6 does not declare it, and the DOM/Node
// libraries that would declare it do not apply to k6. Type-checking only; k6 never reads this file.
declare global {
  var console: {
    log(...args: unknown[]): void;
    info(...args: unknown[]): void;
    warn(...args: unknown[]): void;
    error(...args: unknown[]): void;
    debug(...args: unknown[]): void;
  };
}
export {};
