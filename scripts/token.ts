import { loadConfig } from '../platform/config.js';
import { devToken } from './dev-token.js';

const args = process.argv.slice(2);
const userId = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--ttl') ?? 'demo-user';
const ttl = args.includes('--ttl') ? Number(args[args.indexOf('--ttl') + 1]) : undefined;
try {
  console.log(await devToken(loadConfig().JWT_SECRET, userId, { admin: args.includes('--admin'), ttlSeconds: ttl }));
} catch (err) {
  console.error((err as Error).message);
  console.error('usage: npm run token -- [userId] [--admin] [--ttl seconds]');
  process.exit(1);
}
