import type { EngineDeps } from '../deps.js';

/**
 * The payment provider's webhook events already handled (table webhook_events): a delivery Stripe sends again, or
 * sends twice, is answered without being handled twice. An event is recorded once it is handled, so one whose handling
 * failed is handled again when the provider retries it.
 */
export function createWebhookEvents(d: Pick<EngineDeps, 'pg'>) {
  return {
    /** Whether the event with this id was handled (recorded) before. */
    async seen(id: string): Promise<boolean> {
      const { rowCount } = await d.pg.query('SELECT 1 FROM webhook_events WHERE id = $1', [id]);
      return Boolean(rowCount);
    },
    /** Records the event as handled; recording it again changes nothing. */
    async record(id: string, type: string): Promise<void> {
      await d.pg.query('INSERT INTO webhook_events (id, type) VALUES ($1, $2) ON CONFLICT DO NOTHING', [id, type]);
    },
  };
}
export type WebhookEvents = ReturnType<typeof createWebhookEvents>;
