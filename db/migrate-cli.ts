import { loadConfig } from '../platform/config.js';
import { migrate } from './migrate.js';

const config = loadConfig();
const ran = await migrate({ databaseUrl: config.DATABASE_URL, schema: config.PG_SCHEMA });
console.log(ran.length ? `applied ${ran.length} migration(s): ${ran.join(', ')}` : 'database is up to date');
