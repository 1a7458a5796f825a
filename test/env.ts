/** Where tests find the machine's real services (override with TEST_REDIS_URL / TEST_DATABASE_URL). */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** When set, the web app's Chromium test saves a screenshot of each step there (README "Using it": docs/screens). */
export const SCREENS_DIR = process.env.FG_SCREENS_DIR ?? '';
