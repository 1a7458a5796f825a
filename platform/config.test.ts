import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, weakSecret } from './config.js';

const STRONG = {
  JWT_SECRET: '9f2c4e1a7b3d58e0c6a2f4b19d7e3c5a',
  ADMISSION_SECRET: 'q7Lm2Xv9Rt4Kp8Zw1Ns6Hd3Fj5Gb0YeU2',
  TICKET_SECRET: 'e83b1f6d0a9c27e4b5f8d1c3a6e09b7f42d8',
};
const PROD = { NODE_ENV: 'production', ...STRONG, PAYMENTS_PROVIDER: 'stripe', STRIPE_SECRET_KEY: 'sk_live_x', STRIPE_WEBHOOK_SECRET: 'whsec_Xk29fLq8Wn3Rz7Tb5Vm1Yc4Hd6Gj0Pa' };

const problems = (env: Record<string, string>) => {
  try {
    loadConfig(env);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems;
  }
};

describe('configuration guards in production', () => {
  it('accepts strong secrets with Stripe', () => {
    expect(problems(PROD)).toEqual([]);
  });

  it.each([
    ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', /repeat|distinct/],
    ['abcabcabcabcabcabcabcabcabcabcabcabc', /distinct|repeated/],
    ['0123456789abcdefghijklmnopqrstuvwxyz', /consecutive/],
    ['short-but-random-Q7x', /too short/],
    ['x1x2x3x4x5x6x7x8x9x0xAxBxCxDxExFxGx', /repeats too often/],
    ['floodgate-dev-secret-change-me-in-production', /must be set/],
  ])('refuses JWT_SECRET %j', (secret, why) => {
    const p = problems({ ...PROD, JWT_SECRET: secret });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^JWT_SECRET: /);
    expect(p[0]).toMatch(why);
  });

  it('lists every weak secret and the simulated provider at once', () => {
    const p = problems({
      NODE_ENV: 'production',
      JWT_SECRET: 'aaaaaaaaaaaaaaaa',
      ADMISSION_SECRET: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',
      TICKET_SECRET: '1234567890123456789012345678901234567890',
      PAYMENTS_PROVIDER: 'simulated',
    });
    expect(p.map((x) => x.split(':')[0])).toEqual(['JWT_SECRET', 'ADMISSION_SECRET', 'TICKET_SECRET', 'PAYMENTS_PROVIDER']);
    expect(p[3]).toContain('ALLOW_SIMULATED_PAYMENTS=true');
  });

  it('refuses the development defaults of every secret', () => {
    const p = problems({ NODE_ENV: 'production', PAYMENTS_PROVIDER: 'simulated', ALLOW_SIMULATED_PAYMENTS: 'true' });
    expect(p).toEqual(['JWT_SECRET: must be set in production', 'ADMISSION_SECRET: must be set in production', 'TICKET_SECRET: must be set in production']);
  });

  it('refuses the simulated payment provider unless ALLOW_SIMULATED_PAYMENTS=true (staging)', () => {
    const { STRIPE_SECRET_KEY: _k, STRIPE_WEBHOOK_SECRET: _w, ...base } = { ...PROD, PAYMENTS_PROVIDER: 'simulated' };
    expect(problems(base)).toEqual([expect.stringMatching(/^PAYMENTS_PROVIDER: simulated payments take no money/)]);
    expect(problems({ ...base, ALLOW_SIMULATED_PAYMENTS: 'false' })).toHaveLength(1);
    expect(problems({ ...base, ALLOW_SIMULATED_PAYMENTS: 'true' })).toEqual([]);
  });

  it('refuses a weak Stripe webhook secret, each one of a rotation', () => {
    expect(problems({ ...PROD, STRIPE_WEBHOOK_SECRET: `${PROD.STRIPE_WEBHOOK_SECRET},whsec_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa` })).toEqual([
      expect.stringMatching(/^STRIPE_WEBHOOK_SECRET: /),
    ]);
    expect(problems({ ...PROD, STRIPE_WEBHOOK_SECRET: 'whsec_test' })).toEqual([expect.stringMatching(/^STRIPE_WEBHOOK_SECRET: too short/)]);
  });

  it('leaves development and tests alone', () => {
    expect(problems({ JWT_SECRET: 'aaaaaaaaaaaaaaaa' })).toEqual([]);
    expect(problems({ NODE_ENV: 'test', PAYMENTS_PROVIDER: 'simulated' })).toEqual([]);
  });

  it('weakSecret passes random values (openssl rand -hex 32, -base64 32)', () => {
    expect(weakSecret('5b0c9e1f3a7d2846e1c0b9a8f7d6e5c4b3a29180f7e6d5c4b3a2918070f6e5d4')).toBeUndefined();
    expect(weakSecret('mZ3q9Xo0v1Lr6YtB2pK8sW4dN7fH5jC+aE/gU1iQxRk=')).toBeUndefined();
  });
});

describe('TRUST_PROXY_HOPS', () => {
  it('defaults to 0, TRUST_PROXY=true means one hop, and an explicit count wins', () => {
    expect(loadConfig({}).TRUST_PROXY_HOPS).toBe(0);
    expect(loadConfig({ TRUST_PROXY: 'true' }).TRUST_PROXY_HOPS).toBe(1);
    expect(loadConfig({ TRUST_PROXY_HOPS: '2' }).TRUST_PROXY_HOPS).toBe(2);
    expect(loadConfig({ TRUST_PROXY: 'true', TRUST_PROXY_HOPS: '2' }).TRUST_PROXY_HOPS).toBe(2);
    expect(problems({ TRUST_PROXY: 'true', TRUST_PROXY_HOPS: '0' })).toEqual([expect.stringMatching(/^TRUST_PROXY_HOPS: /)]);
    expect(problems({ TRUST_PROXY_HOPS: '-1' })).toEqual([expect.stringMatching(/^TRUST_PROXY_HOPS: /)]);
  });
});

describe('API_PROCESSES', () => {
  it('is unset by default (one per core, decided by api/main.ts), a whole number from 1 when set, and empty means unset', () => {
    expect(loadConfig({}).API_PROCESSES).toBeUndefined();
    expect(loadConfig({ API_PROCESSES: '' }).API_PROCESSES).toBeUndefined();
    expect(loadConfig({ API_PROCESSES: '1' }).API_PROCESSES).toBe(1);
    expect(loadConfig({ API_PROCESSES: '4' }).API_PROCESSES).toBe(4);
    for (const bad of ['0', '-2', '1.5', 'many', '257']) expect(problems({ API_PROCESSES: bad })).toEqual([expect.stringMatching(/^API_PROCESSES: /)]);
  });
});

describe('SMS_PROVIDER=twilio', () => {
  const SID = 'AC0123456789abcdef0123456789abcdef';
  const TOKEN = '7c1e9b2f4a6d8035e2b9c4f1a7d6e038';
  const TWILIO = { SMS_PROVIDER: 'twilio', TWILIO_ACCOUNT_SID: SID, TWILIO_AUTH_TOKEN: TOKEN, TWILIO_FROM: '+15005550006' };

  it('needs the account, its token and a sender (a number or a Messaging Service), and lists what is missing at once', () => {
    expect(problems(TWILIO)).toEqual([]);
    expect(problems({ ...TWILIO, TWILIO_FROM: '', TWILIO_MESSAGING_SERVICE_SID: 'MG0123456789abcdef0123456789abcdef' })).toEqual([]);
    expect(problems({ SMS_PROVIDER: 'twilio' })).toEqual([
      expect.stringMatching(/^TWILIO_ACCOUNT_SID: required/),
      expect.stringMatching(/^TWILIO_AUTH_TOKEN: required/),
      expect.stringMatching(/^TWILIO_FROM: TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID is required/),
    ]);
    expect(problems({ ...TWILIO, TWILIO_ACCOUNT_SID: 'AC123', TWILIO_FROM: '0151 234' })).toEqual([
      expect.stringMatching(/^TWILIO_ACCOUNT_SID: /),
      expect.stringMatching(/^TWILIO_FROM: /),
    ]);
    // the log transport needs none of it, as before; the tickets link defaults to where the API listens
    expect(loadConfig({}).SMS_PROVIDER).toBe('log');
    expect(loadConfig({ PORT: '3917' }).PUBLIC_BASE_URL).toBe('http://127.0.0.1:3917');
  });

  it('in production: a strong token, https for the callback and the ticket links, no API override; the token is never in a problem', () => {
    const prod = { ...PROD, ...TWILIO, TWILIO_STATUS_CALLBACK_URL: 'https://tickets.example.com/api/webhooks/twilio', PUBLIC_BASE_URL: 'https://tickets.example.com' };
    expect(problems(prod)).toEqual([]);
    const weak = problems({ ...prod, TWILIO_AUTH_TOKEN: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', TWILIO_STATUS_CALLBACK_URL: 'http://tickets.example.com/api/webhooks/twilio', PUBLIC_BASE_URL: 'http://127.0.0.1:3000', TWILIO_API_URL: 'http://127.0.0.1:9' });
    expect(weak.map((p) => p.split(':')[0])).toEqual(['TWILIO_AUTH_TOKEN', 'TWILIO_API_URL', 'TWILIO_STATUS_CALLBACK_URL', 'PUBLIC_BASE_URL']);
    expect(weak.join('\n')).not.toContain('aaaaaaaa');
  });
});

describe('failover settings', () => {
  it('takes PG_HOSTS and REDIS_SENTINELS as host:port lists, WAIT off by default, and names a malformed list', () => {
    const c = loadConfig({ PG_HOSTS: 'db1:5432,db2:5433', REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_WAIT_REPLICAS: '1' });
    expect([c.PG_HOSTS, c.REDIS_SENTINELS, c.REDIS_SENTINEL_NAME, c.REDIS_WAIT_REPLICAS, c.REDIS_WAIT_TIMEOUT_MS]).toEqual(['db1:5432,db2:5433', 's1:26379,s2:26379', 'floodgate', 1, 200]);
    expect(loadConfig({}).REDIS_WAIT_REPLICAS).toBe(0);
    expect(() => loadConfig({ REDIS_SENTINELS: 's1' })).toThrow(/REDIS_SENTINELS: host:port,host:port/);
    expect(() => loadConfig({ PG_HOSTS: 'db1:5432,,db2' })).toThrow(/PG_HOSTS/);
  });
});
