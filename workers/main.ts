import { boot, runMain } from '../platform/boot.js';
import { createMetrics } from '../platform/metrics.js';
import { createBullConnection } from '../platform/redis.js';
import { createAdmissionWorker } from './admission/admission.js';
import { createPersistWorker } from './persist/persist.js';
import { startSweeper } from './sweeper/sweeper.js';

const KNOWN = ['persist', 'sweeper', 'admission'] as const;

runMain(async () => {
  const rt = await boot('workers', 'worker');
  const { config, log, shutdown, engine } = rt;
  const wanted = config.WORKERS.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = wanted.filter((w) => !(KNOWN as readonly string[]).includes(w));
  if (unknown.length) throw new Error(`WORKERS: unknown worker(s) ${unknown.join(', ')}; known: ${KNOWN.join(', ')}`);
  const metrics = createMetrics('workers');

  if (wanted.includes('persist')) {
    const persist = createPersistWorker({ engine, log: log.child({ worker: 'persist' }), metrics, batchSize: config.PERSIST_BATCH_SIZE });
    persist.start();
    shutdown.add('persist', () => persist.stop());
  }
  if (wanted.includes('sweeper')) {
    const bull = createBullConnection({ url: config.REDIS_URL, clusterNodes: config.REDIS_CLUSTER_NODES });
    shutdown.add('bullmq connection', () => bull.quit());
    const sweeper = await startSweeper({
      engine,
      connection: bull,
      prefix: `${config.KEY_NAMESPACE}:bull`,
      intervalMs: config.SWEEP_INTERVAL_MS,
      log: log.child({ worker: 'sweeper' }),
      metrics,
    });
    shutdown.add('sweeper', () => sweeper.stop());
  }
  if (wanted.includes('admission')) {
    const admission = createAdmissionWorker({ engine, log: log.child({ worker: 'admission' }), metrics, tickMs: config.ADMISSION_TICK_MS });
    admission.start();
    shutdown.add('admission', () => admission.stop());
  }
  log.info({ workers: wanted }, 'workers running');
  shutdown.listen();
});
