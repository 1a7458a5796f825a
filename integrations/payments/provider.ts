/** The payment provider contract lives with the engine (engine/payments/provider.ts); providers implement it here. */
export type * from '../../engine/payments/provider.js';
