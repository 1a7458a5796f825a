/**
 * Summarises a V8 CPU profile (`node --cpu-prof` writes one .cpuprofile per process at exit) into where the time went:
 * the share of garbage collection, idle and V8's own work, then self time by source file and by function. It reads a
 * profile and prints; it measures nothing itself. Usage (docs/performance.md):
 *
 *   npx tsx bench/lib/cpu-profile.ts <file.cpuprofile> [--top 25]
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] };
export type CpuProfile = { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
export type Row = { name: string; ms: number; share: number };
export type Summary = { totalMs: number; busyMs: number; gcMs: number; idleMs: number; byFile: Row[]; byFunction: Row[] };

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Where a frame's code lives: a repository path, `node_modules/<package>`, `node:<module>`, or V8's own bucket. */
function fileOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = path.slice(nm + '/node_modules/'.length).split('/');
    return `node_modules/${parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  return path.startsWith('/') ? relative(ROOT, path) : path;
}

export function summarise(p: CpuProfile, top = 25): Summary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  // timeDeltas[i] is the time from sample i-1 to sample i; it is charged to sample i's frame (as Chrome DevTools does)
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000));
  const files = new Map<string, number>();
  const fns = new Map<string, number>();
  let totalMs = 0;
  let gcMs = 0;
  let idleMs = 0;
  for (const [id, ms] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    totalMs += ms;
    if (functionName === '(garbage collector)') gcMs += ms;
    if (functionName === '(idle)') idleMs += ms;
    const file = fileOf(url, functionName);
    files.set(file, (files.get(file) ?? 0) + ms);
    const fn = url ? `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}` : functionName || '(anonymous)';
    fns.set(fn, (fns.get(fn) ?? 0) + ms);
  }
  const busyMs = totalMs - idleMs;
  const rows = (m: Map<string, number>) =>
    [...m]
      .filter(([name]) => name !== '(idle)')
      .map(([name, ms]) => ({ name, ms, share: busyMs > 0 ? ms / busyMs : 0 }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top);
  return { totalMs, busyMs, gcMs, idleMs, byFile: rows(files), byFunction: rows(fns) };
}

export function toMarkdown(s: Summary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const table = (title: string, rows: Row[]) =>
    [`| ${title} | self ms | share of busy time |`, '|---|---:|---:|', ...rows.map((r) => `| ${r.name.replace(/\|/g, '\\|')} | ${r.ms.toFixed(0)} | ${pct(r.share)} |`)].join('\n');
  return [
    `Profiled ${s.totalMs.toFixed(0)} ms: busy ${s.busyMs.toFixed(0)} ms, idle ${s.idleMs.toFixed(0)} ms; ` +
      `garbage collection ${s.gcMs.toFixed(0)} ms = ${pct(s.busyMs > 0 ? s.gcMs / s.busyMs : 0)} of busy time.`,
    '',
    table('file', s.byFile),
    '',
    table('function', s.byFunction),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, ...rest] = process.argv.slice(2);
  if (!file) {
    console.error('usage: npx tsx bench/lib/cpu-profile.ts <file.cpuprofile> [--top 25]');
    process.exit(2);
  }
  const top = rest[0] === '--top' ? Number(rest[1]) : 25;
  console.log(toMarkdown(summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, top)));
}
