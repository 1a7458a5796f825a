import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HOLD_FIELDS } from '../engine/holds/hold-record.js';
import { REPLIES, type ScriptName } from './codes.js';
import { LUA_DIR, readScripts } from './commands.js';

/** The codes an Output section documents, by name: every `{code, ...} NAME`. */
export function documentedCodes(header: string): Record<string, number> {
  const output = header.slice(header.indexOf('Output:'), header.indexOf('Idempotent:'));
  const out: Record<string, number> = {};
  for (const m of output.matchAll(/\{(-?\d+)[^{}]*\}\s+([A-Z][A-Z_]*)\b/g)) {
    if (m[2]! in out && out[m[2]!] !== Number(m[1])) throw new Error(`${m[2]} documented as ${out[m[2]!]} and ${m[1]}`);
    out[m[2]!] = Number(m[1]);
  }
  return out;
}

/** Hold fields a script reads or writes (HGET/HMGET/HSET on its hold key), as written in its body. */
function holdFieldsUsed(name: string, body: string): string[] {
  const holdKey = name === 'payHold' || name === 'restoreHold' ? 'KEYS\\[1\\]' : 'k\\.hold';
  const call = new RegExp(`redis\\.call\\("(HGET|HMGET|HSET)",\\s*${holdKey}\\s*,((?:[^()]|\\([^()]*\\))*)\\)`, 'g');
  const fields: string[] = [];
  for (const m of body.matchAll(call)) {
    const args = m[2]!.split(',').map((a) => a.trim());
    const names = m[1] === 'HSET' ? args.filter((_, i) => i % 2 === 0) : args;
    for (const n of names) fields.push(/^"([^"]*)"$/.exec(n)?.[1] ?? `<not a literal: ${n}>`);
  }
  return fields;
}

/** The header contract of every script, checked against its body (BullMQ's discipline). */
describe('lua scripts', async () => {
  const scripts = await readScripts();

  it('are all named <camelCaseName>-<numKeys>.lua and expand their includes', () => {
    expect(scripts.map((s) => s.name).sort()).toEqual(
      ['admitNext', 'armEvent', 'configureQueue', 'confirmHold', 'expireHold', 'holdBest', 'holdGeneral', 'holdSeats', 'joinQueue', 'joinWaitlist',
        'leaveQueue', 'offerWaitlist', 'payHold', 'queueStatus', 'rateLimit', 'refundHold', 'releaseHold', 'restoreHold', 'retakeHold', 'streamSlot', 'takeLease'].sort(),
    );
    for (const s of scripts) {
      expect(s.lua).not.toMatch(/@include/);
      expect(s.lua.startsWith('--[[')).toBe(true);
    }
  });

  for (const s of scripts) {
    describe(s.file, async () => {
      const raw = await readFile(join(LUA_DIR, s.file), 'utf8');
      const header = raw.slice(0, raw.indexOf(']]'));
      const body = s.lua.slice(s.lua.indexOf(']]'));

      it('documents purpose, invariants, input, output and idempotency', () => {
        expect(header).toMatch(new RegExp(`^--\\[\\[\\n  ${s.name}: \\S`));
        for (const section of ['Invariants:', 'Input:', 'Output:', 'Idempotent:']) expect(header).toContain(section);
      });

      it('documents exactly numKeys KEYS and never indexes past them', () => {
        const documented = [...header.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
        expect(new Set(documented)).toEqual(new Set(Array.from({ length: s.numberOfKeys }, (_, i) => i + 1)));
        const used = [...body.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
        expect(Math.max(...used)).toBeLessThanOrEqual(s.numberOfKeys);
      });

      it('documents every ARGV it reads', () => {
        const documented = new Set([...header.matchAll(/ARGV\[(\d+)(\.\.)?\]/g)].map((m) => Number(m[1])));
        for (const m of body.matchAll(/ARGV\[(\d+)\]/g)) expect(documented, `ARGV[${m[1]}]`).toContain(Number(m[1]));
      });

      it('reads no data out of a key name (what a script needs comes in through ARGV)', () => {
        expect(body).not.toMatch(/string\.(match|find|sub|gmatch|gsub)\(\s*(KEYS\[|k\.)/);
      });

      it('builds no key names from strings (every key comes in through KEYS)', () => {
        expect(body).not.toMatch(/redis\.call\("[A-Z]+",\s*[a-z_]+\s*\.\./);
      });

      it('documents exactly the reply codes of its table in lua/codes.ts (same names, same values)', () => {
        const table: Record<string, number> | undefined = REPLIES[s.name as ScriptName];
        expect(table, `lua/codes.ts has no reply table for ${s.name}`).toBeDefined();
        expect(documentedCodes(header)).toEqual({ ...table });
      });

      it('returns only the codes its header documents', () => {
        const documented = new Set(Object.values(documentedCodes(header)));
        // every literal reply of the body (and of its includes): `return {-4, …}`, `local reply = {2}`, `out = {1, …}`
        for (const m of body.matchAll(/(?:return|=)\s*\{(-?\d+)[,}]/g)) expect(documented, `reply ${m[1]}`).toContain(Number(m[1]));
      });

      it('reads and writes only the hold fields of the codec (engine/holds/hold-record.ts)', () => {
        const letters = new Set<string>(Object.values(HOLD_FIELDS));
        for (const f of holdFieldsUsed(s.name, body)) expect(letters, `hold field ${f}`).toContain(f);
      });
    });
  }
});

describe('the hold codec', () => {
  it('the field table in lua/includes/holdCommon.lua equals HOLD_FIELDS (one letter, one name)', async () => {
    const raw = await readFile(join(LUA_DIR, 'includes/holdCommon.lua'), 'utf8');
    const block = raw.slice(raw.indexOf('Its fields are'), raw.indexOf('-- The idempotency record'));
    const documented = Object.fromEntries([...block.matchAll(/\s([a-z]{1,2}) {2,}([a-z][A-Za-z]+)\b/g)].map((m) => [m[2]!, m[1]!]));
    expect(documented).toEqual({ ...HOLD_FIELDS });
  });

  it('every script that touches a hold is checked (the scanner finds their fields)', async () => {
    const scripts = await readScripts();
    const used = new Set(scripts.flatMap((s) => holdFieldsUsed(s.name, s.lua.slice(s.lua.indexOf(']]')))));
    expect(used).toEqual(new Set(Object.values(HOLD_FIELDS)));
  });
});
