/**
 * Cached children of labelled prom-client metrics. `metric.labels(...)` builds and validates a label object on every
 * call, and `metric.inc({...})` / `observe({...}, v)` also build one per call; on the request path Floodgate takes the
 * child for a label combination once and reuses it. Label values must come from small fixed sets (route templates,
 * methods, status codes, outcome codes), as every label of these metrics already does: the caches grow with the
 * number of combinations, never with the traffic.
 */
type Labelled<C> = { labels(...values: string[]): C };

const caches = new WeakMap<object, Map<string, unknown>>();

function cacheOf(metric: object): Map<string, unknown> {
  let cache = caches.get(metric);
  if (!cache) caches.set(metric, (cache = new Map()));
  return cache;
}

/** The child of a metric with one label. */
export function child1<C>(metric: Labelled<C>, a: string): C {
  const cache = cacheOf(metric);
  let c = cache.get(a) as C | undefined;
  if (c === undefined) cache.set(a, (c = metric.labels(a)));
  return c;
}

/** The child of a metric with three labels. */
export function child3<C>(metric: Labelled<C>, a: string, b: string, c: number | string): C {
  const cache = cacheOf(metric);
  const key = `${a}\u0000${b}\u0000${c}`;
  let ch = cache.get(key) as C | undefined;
  if (ch === undefined) cache.set(key, (ch = metric.labels(a, b, String(c))));
  return ch;
}
