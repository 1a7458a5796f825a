/**
 * Tiny hand-written SVG line charts for the results (no chart package): axes with "nice" ticks, optional log-scale x,
 * several named series with a legend, vertical markers (e.g. "sale opens").
 */
import { maxOf, minOf } from './common.js';
export type Series = { name: string; points: [number, number][]; color?: string; dashed?: boolean };
export type Chart = {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  width?: number;
  height?: number;
  xLog?: boolean;
  /** Fixed y range (default: 0 .. the largest value). */
  yMax?: number;
  markers?: { x: number; label: string }[];
};

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v * 1e9) / 1e9);
  return out;
}
const label = (v: number) => (Math.abs(v) >= 10_000 ? `${Math.round(v / 1000)}k` : Math.abs(v) >= 1000 ? `${(v / 1000).toFixed(1).replace(/\.0$/, '')}k` : `${Math.round(v * 100) / 100}`);

export function lineChart(c: Chart): string {
  const W = c.width ?? 860;
  const H = c.height ?? 420;
  const m = { l: 70, r: 20, t: 44, b: 62 + 16 * Math.ceil(c.series.length / 4) };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const pts = c.series.flatMap((s) => s.points);
  const xs = pts.map((p) => p[0]).filter((x) => !c.xLog || x > 0);
  let xLo = xs.length ? minOf(xs) : 0;
  let xHi = xs.length ? maxOf(xs) : 1;
  for (const mk of c.markers ?? []) {
    xLo = Math.min(xLo, mk.x);
    xHi = Math.max(xHi, mk.x);
  }
  if (xHi === xLo) xHi = xLo + 1;
  const yHi = c.yMax ?? Math.max(1, ...pts.map((p) => p[1])) * 1.05;
  const tx = c.xLog
    ? (x: number) => m.l + ((Math.log10(Math.max(x, xLo)) - Math.log10(xLo)) / (Math.log10(xHi) - Math.log10(xLo) || 1)) * pw
    : (x: number) => m.l + ((x - xLo) / (xHi - xLo)) * pw;
  const ty = (y: number) => m.t + ph - (Math.min(y, yHi) / yHi) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(c.title)}</text>`,
  ];
  // grid and ticks
  for (const v of niceTicks(0, yHi)) {
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${ty(v).toFixed(1)}" y2="${ty(v).toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.l - 6}" y="${(ty(v) + 4).toFixed(1)}" text-anchor="end" fill="#444">${label(v)}</text>`);
  }
  const xticks = c.xLog
    ? [1, 2, 5].flatMap((k) => Array.from({ length: 9 }, (_, e) => k * 10 ** (e - 1))).filter((v) => v >= xLo && v <= xHi).sort((a, b) => a - b)
    : niceTicks(xLo, xHi, 8);
  for (const v of xticks) {
    out.push(`<line x1="${tx(v).toFixed(1)}" x2="${tx(v).toFixed(1)}" y1="${m.t}" y2="${m.t + ph}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${tx(v).toFixed(1)}" y="${m.t + ph + 16}" text-anchor="middle" fill="#444">${label(v)}</text>`);
  }
  out.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}" stroke="#333"/>`);
  out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="#333"/>`);
  out.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 34}" text-anchor="middle" fill="#222">${esc(c.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" fill="#222">${esc(c.yLabel)}</text>`);
  for (const mk of c.markers ?? []) {
    const x = tx(mk.x).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${m.t}" y2="${m.t + ph}" stroke="#888" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${Number(x) + 4}" y="${m.t + 12}" fill="#555">${esc(mk.label)}</text>`);
  }
  // series
  c.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    const p = s.points.filter((q) => !c.xLog || q[0] > 0);
    if (p.length) {
      const d = p.map((q, k) => `${k ? 'L' : 'M'}${tx(q[0]).toFixed(1)} ${ty(q[1]).toFixed(1)}`).join(' ');
      out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    }
    const lx = m.l + (i % 4) * (pw / 4);
    const ly = m.t + ph + 54 + Math.floor(i / 4) * 16;
    out.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="3"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${lx + 28}" y="${ly}" fill="#222">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** The empirical CDF of `values` as chart points (x = value, y = percent at or below), thinned to about `n` points. */
export function cdf(values: number[], n = 300): [number, number][] {
  const s = Float64Array.from(values).sort();
  if (!s.length) return [];
  const step = Math.max(1, Math.floor(s.length / n));
  const out: [number, number][] = [];
  for (let i = 0; i < s.length; i += step) out.push([s[i]!, ((i + 1) / s.length) * 100]);
  out.push([s[s.length - 1]!, 100]);
  return out;
}
