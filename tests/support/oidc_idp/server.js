// An OpenID Connect provider for the SSO tests: node-oidc-provider with a small user store,
// its own sign-in page (no consent step, no external assets) and a test API to rotate the
// signing key, register clients, and make the next ID tokens wrong (audience, expiry, key).
//
//   node server.js CONFIG.json [PORT]    prints "listening PORT" once it answers on 127.0.0.1
//
// CONFIG: {"users": {"alice": {"password", "email", "email_verified", "name", "groups"}},
//          "clients": [{"client_id", "client_secret", "redirect_uris",
//                       "post_logout_redirect_uris"}]}
//
// Test API (JSON): POST /__test/clients {client}, POST /__test/rotate, POST /__test/tokens
// {"audience"?, "expired"?, "unknown_key"?}, POST /__test/reset, GET /__test/stats.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import { SignJWT, decodeJwt, decodeProtectedHeader, importJWK } from 'jose';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = config.users || {};
const clients = [...(config.clients || [])];
const stats = { jwks: 0, token: 0 };
let keys = [newKey()];
let tokenMode = {};
let provider;
let issuer;

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body><main><h1>${escape(title)}</h1>${body}</main></body></html>`;
}

// A new Provider whenever keys or clients change; sessions and grants live in the memory
// adapter, which every instance shares, so a rotation does not sign anyone out.
function build() {
  const next = new Provider(issuer, {
    clients,
    jwks: { keys },
    cookies: { keys: ['perpetuo-test-idp-cookie-key'] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = page(
            'Sign out of the identity provider?',
            `${form}<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>`,
          );
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = page('Signed out of the identity provider', '<p>You are signed out.</p>');
        },
      },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    // First-party clients: no consent screen, the grant covers what was asked.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
      grant.addOIDCClaims(['sub', 'email', 'email_verified', 'name', 'groups']);
      await grant.save();
      return grant;
    },
    async findAccount(ctx, id) {
      const user = users[id];
      if (!user) return undefined;
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            email: user.email,
            email_verified: user.email_verified ?? true,
            name: user.name || id,
            groups: user.groups || [],
          };
        },
      };
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Identity provider error', `<pre>${escape(JSON.stringify(out))}</pre>`);
    },
    ttl: { IdToken: 3600, AccessToken: 3600, AuthorizationCode: 60, Session: 3600, Interaction: 600, Grant: 3600 },
  });
  next.use(async (ctx, nextMiddleware) => {
    if (ctx.path === '/jwks') stats.jwks += 1;
    await nextMiddleware();
    if (ctx.path === '/token' && ctx.status === 200 && ctx.body && ctx.body.id_token) {
      stats.token += 1;
      ctx.body = { ...ctx.body, id_token: await tamper(ctx.body.id_token) };
    }
  });
  provider = next;
}

// The next ID tokens as the test asked: another audience, already expired, or signed with a
// key the JWKS does not publish. Re-signed with a real key, so only that one thing is wrong.
async function tamper(idToken) {
  if (!tokenMode.audience && !tokenMode.expired && !tokenMode.unknown_key) return idToken;
  const claims = decodeJwt(idToken);
  const { kid } = decodeProtectedHeader(idToken);
  if (tokenMode.audience) claims.aud = tokenMode.audience;
  if (tokenMode.expired) {
    const now = Math.floor(Date.now() / 1000);
    claims.iat = now - 3600;
    claims.exp = now - 1800;
  }
  const jwk = tokenMode.unknown_key ? newKey() : keys.find((k) => k.kid === kid);
  const key = await importJWK(jwk, 'RS256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'JWT' }).sign(key);
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(type === 'application/json' ? JSON.stringify(body) : body);
}

async function testApi(req, res, path) {
  const body = req.method === 'POST' ? JSON.parse((await readBody(req)) || '{}') : {};
  if (path === '/__test/clients') {
    const at = clients.findIndex((c) => c.client_id === body.client_id);
    if (at >= 0) clients.splice(at, 1);
    clients.push(body);
    build();
  } else if (path === '/__test/rotate') {
    keys = [newKey(), ...keys]; // the new key signs; the old one stays published
    build();
  } else if (path === '/__test/tokens') {
    tokenMode = body;
  } else if (path === '/__test/reset') {
    tokenMode = {};
  } else if (path !== '/__test/stats') {
    return send(res, 404, { error: 'not_found' });
  }
  return send(res, 200, { ...stats, kids: keys.map((k) => k.kid) });
}

async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'wrong interaction', 'text/plain');
  let problem = '';
  if (req.method === 'POST') {
    const form = new URLSearchParams(await readBody(req));
    const login = form.get('login') || '';
    const user = users[login];
    if (user && user.password === form.get('password')) {
      return provider.interactionFinished(req, res, { login: { accountId: login } }, {
        mergeWithLastSubmission: false,
      });
    }
    problem = '<p role="alert">Wrong username or password.</p>';
  }
  const form = `${problem}<form method="post" action="/interaction/${escape(uid)}">
<label>Username <input name="login" autocomplete="off" required></label>
<label>Password <input name="password" type="password" required></label>
<button type="submit">Sign in</button></form>`;
  return send(res, 200, page('Sign in to the identity provider', form), 'text/html; charset=utf-8');
}

const server = http.createServer(async (req, res) => {
  try {
    const path = new URL(req.url, issuer).pathname;
    if (path.startsWith('/__test/')) return await testApi(req, res, path);
    const match = path.match(/^\/interaction\/([^/]+)$/);
    if (match) return await interaction(req, res, match[1]);
    return provider.callback()(req, res);
  } catch (error) {
    console.error(error);
    if (!res.headersSent) send(res, 500, { error: String(error.message || error) });
  }
});

server.listen(Number(process.argv[3] || 0), '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `http://127.0.0.1:${port}`;
  build();
  console.log(`listening ${port}`);
});
