import { DEFAULT_ENGINE_CONFIG, type EngineConfig } from '../engine/config.js';

/** The engine settings of the tests (short holds; long catalog cache). No vitest import: child processes use it too. */
export const TEST_ENGINE_CONFIG: EngineConfig = { ...DEFAULT_ENGINE_CONFIG, holdTtlMs: 60_000, catalogCacheMs: 60_000 };
