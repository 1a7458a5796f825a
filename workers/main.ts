import { boot, runMain } from '../wiring/boot.js';
import { createMetrics } from '../platform/metrics.js';
import { serveMetrics } from '../platform/metrics-server.js';
import { createMailer, createSms } from '../integrations/providers.js';
import { createTicketPdfPool, defaultRenderThreads } from '../engine/tickets/ticket-pdf-pool.js';
import { DEFAULT_CONCURRENCY, startJobWorkers } from './processors.js';
import { createReconcileWorker } from './reconcile/reconcile.js';
import { createAdmissionWorker } from './admission/admission.js';
import { createPersistWorker } from './persist/persist.js';
import { startSweeper } from './sweeper/sweeper.js';
import { createWaitlistWorker } from './waitlist/waitlist.js';

const KNOWN = ['persist', 'sweeper', 'admission', 'payment', 'notify', 'refund', 'reconcile', 'waitlist'] as const;

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
    const sweeper = await startSweeper({
      engine,
      connection: rt.bull,
      prefix: rt.bullPrefix,
      intervalMs: config.SWEEP_INTERVAL_MS,
      log: log.child({ worker: 'sweeper' }),
      metrics,
    });
    shutdown.add('sweeper', () => sweeper.stop());
  }
  if (wanted.includes('admission')) {
    const admission = createAdmissionWorker({
      engine, log: log.child({ worker: 'admission' }), metrics, tickMs: config.ADMISSION_TICK_MS,
      pace: config.ADMISSION_HOLD_BUDGET > 0 ? { holdTtlMs: config.HOLD_TTL_MS, budget: config.ADMISSION_HOLD_BUDGET, windowMs: 10_000 } : undefined,
    });
    admission.start();
    shutdown.add('admission', () => admission.stop());
  }
  const jobQueues = (['payment', 'notify', 'refund'] as const).filter((q) => wanted.includes(q));
  if (jobQueues.length) {
    // notify draws each booking's PDF on a pool of render threads (one per core less one by default) and runs enough
    // jobs at once to keep them busy while other jobs wait on Postgres commits or the mail transport: with 4 jobs per
    // thread the one thread of a 2-core machine idled; 32 per thread drew 25 % more PDFs/s (docs/performance.md)
    const pdfPool = wanted.includes('notify') ? createTicketPdfPool({ threads: config.PDF_RENDER_THREADS ?? defaultRenderThreads(), log }) : undefined;
    // shutdown runs in reverse order: the threads close after the job workers finished their jobs
    if (pdfPool) shutdown.add('ticket PDF render threads', () => pdfPool.close());
    const notifyConcurrency = config.NOTIFY_CONCURRENCY ?? Math.max(DEFAULT_CONCURRENCY.notify, 32 * (pdfPool?.threads ?? 0));
    const jobWorkers = startJobWorkers(
      {
        engine, log: log.child({ worker: 'jobs' }), metrics, mailer: createMailer(config), sms: createSms(config, log), mailFrom: config.MAIL_FROM,
        publicUrl: config.PUBLIC_BASE_URL,
        ...(pdfPool ? { renderPdf: pdfPool.render } : {}),
      },
      rt.bull,
      rt.bullPrefix,
      jobQueues,
      { concurrency: { notify: notifyConcurrency } },
    );
    if (pdfPool) log.info({ renderThreads: pdfPool.threads, notifyConcurrency }, 'ticket PDF render threads started');
    shutdown.add('job workers', () => jobWorkers.stop());
  }
  if (wanted.includes('reconcile')) {
    const reconcile = createReconcileWorker({
      engine, log: log.child({ worker: 'reconcile' }), metrics, intervalMs: config.RECONCILE_INTERVAL_MS,
      queues: { ...rt.jobs.queues },
      failovers: rt.failovers, redisWatch: rt.redisWatch, autoRebuild: config.RECOVERY_AUTO_REBUILD,
    });
    reconcile.start();
    shutdown.add('reconcile', () => reconcile.stop());
  }
  if (wanted.includes('waitlist')) {
    const waitlist = createWaitlistWorker({
      engine, log: log.child({ worker: 'waitlist' }), metrics, mailer: createMailer(config), mailFrom: config.MAIL_FROM,
      publicUrl: config.PUBLIC_BASE_URL, tickMs: config.WAITLIST_TICK_MS,
    });
    waitlist.start();
    shutdown.add('waitlist', () => waitlist.stop());
  }
  if (config.METRICS_PORT) {
    const server = await serveMetrics(metrics, config.HOST, config.METRICS_PORT);
    shutdown.add('metrics server', () => new Promise<void>((r) => server.close(() => r())));
  }
  log.info({ workers: wanted }, 'workers running');
  shutdown.listen();
});
