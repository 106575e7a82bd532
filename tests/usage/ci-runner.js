#!/usr/bin/env node
// A small local runner for the CI examples in examples/ci/, used by
// tests/scenarios/usage_ci.sh. It runs the workflow files as GitHub Actions
// and GitLab CI would, as far as these files need, so that what is tested is
// the files themselves, not a copy of their commands:
//
//   github WORKFLOW  event filter, job `if:` and `needs`, expressions
//                    (${{ }}: github, env, vars, needs, steps, inputs and the
//                    functions used), workflow/job/step env, run steps under
//                    `bash -eo pipefail`, GITHUB_ENV/PATH/OUTPUT/STEP_SUMMARY,
//                    job outputs, local composite actions, and these actions:
//                    actions/checkout (a real fetch of github.ref from the
//                    test's remote, at fetch-depth), aws-actions/configure-aws-
//                    credentials (AssumeRoleWithWebIdentity at
//                    AWS_ENDPOINT_URL_STS with a GitHub-style OIDC token, after
//                    checking the job may request one), actions/upload- and
//                    download-artifact, actions/github-script (the script
//                    itself, against an in-memory issue-comments API that
//                    enforces the job's permissions).
//   gitlab FILE      workflow and job rules, extends, variables and their
//                    expansion, id_tokens, GIT_STRATEGY/GIT_DEPTH checkouts,
//                    stages and needs, artifacts, before_script + script
//                    under the image's shell; images map to tool directories
//                    given by the test.
//   lines FILE...    prints the ibsync command lines of workflow files (JSON)
//
// Usage (the summary JSON goes to --summary FILE, else stdout; exit 1 when a
// job failed):
//   ci-runner.js github WORKFLOW --event-name NAME --event EVENT.json --sha SHA
//       --ref REF --repo OWNER/NAME --remote GIT_DIR --vars JSON --out DIR
//       [--run-index N]
//   ci-runner.js gitlab FILE --vars JSON (predefined CI_* variables) --sha SHA
//       --ref REF --remote GIT_DIR --images JSON ({image: {path, shell}})
//       --out DIR [--play JOB]... [--only JOB] [--first-job-id N]
//
// Every step that runs ibsync lines is checked to have run each of them: the
// test's `ibsync` (reached through the docker shim or the image directory)
// appends one line per call to USAGE_TEST_CALL_LOG. Unknown actions, keywords
// with behaviour this runner does not implement, and unknown expression
// functions are errors, so the examples cannot drift past what is tested.
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const YAML = require('yaml');

function die(msg) {
  process.stderr.write(`ci-runner: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const out = { _: [], multi: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const key = a.slice(2);
      const val = argv[++i];
      if (val === undefined) die(`${a} needs a value`);
      if (key in out) {
        out.multi[key] = (out.multi[key] || [out[key]]).concat([val]);
      }
      out[key] = val;
    } else {
      out._.push(a);
    }
  }
  return out;
}

function log(msg) {
  process.stderr.write(`${msg}\n`);
}

// ---- ibsync command lines -------------------------------------------------

// Logical lines (backslash continuations joined) of a shell script that
// start with the ibsync command.
function ibsyncLines(script) {
  const logical = [];
  let cur = '';
  for (const raw of String(script).split('\n')) {
    if (raw.endsWith('\\')) {
      cur += raw.slice(0, -1) + ' ';
      continue;
    }
    logical.push(cur + raw);
    cur = '';
  }
  if (cur) logical.push(cur);
  return logical.map((l) => l.trim()).filter((l) => /^ibsync\s/.test(l));
}

function callCount() {
  const f = process.env.USAGE_TEST_CALL_LOG;
  if (!f) die('USAGE_TEST_CALL_LOG is not set');
  if (!fs.existsSync(f)) return 0;
  return fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).length;
}

function recordExecuted(outDir, file, where, lines) {
  for (const l of lines) {
    fs.appendFileSync(path.join(outDir, 'executed.jsonl'), JSON.stringify({ file, where, line: l }) + '\n');
  }
}

// ---- shell steps ------------------------------------------------------------

function runShell(shell, script, cwd, env, label) {
  const dir = fs.mkdtempSync(path.join(env.RUNNER_TEMP || env.CI_BUILDS_DIR || '/tmp', 'step-'));
  const file = path.join(dir, 'script.sh');
  fs.writeFileSync(file, script);
  const argv = shell === 'sh' ? ['sh', ['-e', file]] : ['bash', ['--noprofile', '--norc', '-eo', 'pipefail', file]];
  const r = spawnSync(argv[0], argv[1], { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  fs.rmSync(dir, { recursive: true, force: true });
  const out = (r.stdout || '') + (r.stderr || '');
  if (out.trim()) log(out.replace(/^/gm, `  [${label}] `).trimEnd());
  if (r.error) die(`${label}: ${r.error.message}`);
  return r.status;
}

function git(args, cwd) {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

// Fetches `ref` of the test's remote into a new repository in `dir` and
// checks out `sha` detached, as actions/checkout and the GitLab runner do.
function checkout(dir, remote, ref, sha, depth, extraRefspecs) {
  fs.mkdirSync(dir, { recursive: true });
  git(['init', '-q'], dir);
  git(['remote', 'add', 'origin', `file://${remote}`], dir);
  const specs = [`+${ref}:refs/remotes/origin/checkout`].concat(extraRefspecs || []);
  const args = ['fetch', '-q', '--no-tags'];
  if (depth > 0) args.push(`--depth=${depth}`);
  git(args.concat(['origin'], specs), dir);
  git(['checkout', '-q', '--detach', 'refs/remotes/origin/checkout'], dir);
  const head = git(['rev-parse', 'HEAD'], dir);
  if (head !== sha) throw new Error(`checked out ${head} for ${ref}, the event says ${sha}`);
}

// ---- GitHub expressions -----------------------------------------------------

function tokenize(src) {
  const toks = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      let s = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new Error(`unterminated string in ${src}`);
        if (src[i] === "'") {
          if (src[i + 1] === "'") {
            s += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        s += src[i++];
      }
      toks.push({ t: 'str', v: s });
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+(\.[0-9]+)?/.exec(src.slice(i));
      toks.push({ t: 'num', v: Number(m[0]) });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i));
      toks.push({ t: 'id', v: m[0] });
      i += m[0].length;
    } else {
      const two = src.slice(i, i + 2);
      if (['==', '!=', '<=', '>=', '&&', '||'].includes(two)) {
        toks.push({ t: 'op', v: two });
        i += 2;
      } else if ('!<>().,[]*'.includes(c)) {
        toks.push({ t: 'op', v: c });
        i++;
      } else {
        throw new Error(`unexpected '${c}' in expression ${src}`);
      }
    }
  }
  return toks;
}

const FILTER = Symbol('filter');

function truthy(v) {
  return !(v === false || v === 0 || v === '' || v === null || v === undefined || Number.isNaN(v));
}

function looseEq(a, b) {
  if (typeof a === 'string' && typeof b === 'string') return a.toLowerCase() === b.toLowerCase();
  if (a === undefined) a = null;
  if (b === undefined) b = null;
  if (typeof a !== typeof b) {
    const num = (x) => (x === null ? 0 : typeof x === 'boolean' ? Number(x) : Number(x));
    return num(a) === num(b);
  }
  return a === b;
}

function evalExpr(src, ctx) {
  const toks = tokenize(src);
  let p = 0;
  const peek = () => toks[p];
  const take = (v) => {
    const t = toks[p];
    if (!t || (v && t.v !== v)) throw new Error(`expected ${v || 'a token'} in ${src}`);
    p++;
    return t;
  };
  const prop = (obj, key) => {
    if (obj && obj[FILTER]) {
      const r = [];
      for (const e of obj) {
        const v = e == null ? undefined : e[key];
        if (v !== undefined) r.push(v);
      }
      r[FILTER] = true;
      return r;
    }
    return obj == null ? undefined : obj[key];
  };
  const funcs = {
    contains: (a, b) =>
      Array.isArray(a) ? a.some((x) => looseEq(x, b)) : String(a ?? '').toLowerCase().includes(String(b ?? '').toLowerCase()),
    startswith: (a, b) => String(a ?? '').toLowerCase().startsWith(String(b ?? '').toLowerCase()),
    endswith: (a, b) => String(a ?? '').toLowerCase().endsWith(String(b ?? '').toLowerCase()),
    format: (f, ...args) => String(f).replace(/\{(\d+)\}/g, (_, n) => String(args[Number(n)] ?? '')),
    join: (a, sep) => (Array.isArray(a) ? a.join(sep ?? ',') : String(a ?? '')),
    tojson: (v) => JSON.stringify(v, null, 2),
    success: () => ctx.__status === 'success',
    failure: () => ctx.__status === 'failure',
    always: () => true,
    cancelled: () => false,
  };
  function primary() {
    const t = take();
    if (t.t === 'str' || t.t === 'num') return t.v;
    if (t.t === 'op' && t.v === '(') {
      const v = or();
      take(')');
      return v;
    }
    if (t.t === 'op' && t.v === '!') return !truthy(primary());
    if (t.t !== 'id') throw new Error(`unexpected ${t.v} in ${src}`);
    if (t.v === 'true') return true;
    if (t.v === 'false') return false;
    if (t.v === 'null') return null;
    if (peek() && peek().v === '(') {
      take('(');
      const args = [];
      while (peek() && peek().v !== ')') {
        args.push(or());
        if (peek() && peek().v === ',') take(',');
      }
      take(')');
      const f = funcs[t.v.toLowerCase()];
      if (!f) throw new Error(`function ${t.v}() is not implemented by the test runner`);
      return f(...args);
    }
    if (!(t.v in ctx)) throw new Error(`unknown context '${t.v}' in ${src}`);
    let v = ctx[t.v];
    for (;;) {
      const n = peek();
      if (n && n.v === '.') {
        take('.');
        const k = take();
        if (k.v === '*') {
          const arr = Array.isArray(v) ? v.slice() : v && typeof v === 'object' ? Object.values(v) : [];
          arr[FILTER] = true;
          v = arr;
        } else {
          v = prop(v, k.v);
        }
      } else if (n && n.v === '[') {
        take('[');
        const k = or();
        take(']');
        v = prop(v, k);
      } else {
        return v;
      }
    }
  }
  function cmp() {
    const a = primary();
    const n = peek();
    if (n && ['==', '!=', '<', '>', '<=', '>='].includes(n.v)) {
      take();
      const b = primary();
      switch (n.v) {
        case '==': return looseEq(a, b);
        case '!=': return !looseEq(a, b);
        case '<': return a < b;
        case '>': return a > b;
        case '<=': return a <= b;
        default: return a >= b;
      }
    }
    return a;
  }
  function and() {
    let v = cmp();
    while (peek() && peek().v === '&&') {
      take();
      const r = cmp();
      v = truthy(v) ? r : v;
    }
    return v;
  }
  function or() {
    let v = and();
    while (peek() && peek().v === '||') {
      take();
      const r = and();
      v = truthy(v) ? v : r;
    }
    return v;
  }
  const v = or();
  if (p !== toks.length) throw new Error(`trailing tokens in ${src}`);
  return v;
}

// Replaces every ${{ expr }} in a string.
function interpolate(value, ctx) {
  if (typeof value !== 'string') return value;
  return value.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, e) => {
    const v = evalExpr(e, ctx);
    return v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  });
}

function evalIf(cond, ctx) {
  if (cond === undefined || cond === null) return evalExpr('success()', ctx);
  if (typeof cond === 'boolean') return cond;
  const s = String(cond).trim();
  const m = /^\$\{\{([\s\S]*)\}\}$/.exec(s);
  const expr = m ? m[1] : s;
  // A condition without a status function is implicitly success() && (...).
  const v = evalExpr(expr, ctx);
  return /\b(success|failure|always|cancelled)\(/.test(expr) ? truthy(v) : ctx.__status === 'success' && truthy(v);
}

// ---- fake OIDC tokens -----------------------------------------------------

function b64url(s) {
  return Buffer.from(s).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

function fakeJwt(claims) {
  return `${b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'usage-test' }))}.${b64url(JSON.stringify(claims))}.c2lnbmF0dXJl`;
}

function assumeRoleWithWebIdentity(roleArn, token, sessionName) {
  const endpoint = process.env.AWS_ENDPOINT_URL_STS;
  if (!endpoint) throw new Error('AWS_ENDPOINT_URL_STS is not set (the test provides a fake STS)');
  const body = new URLSearchParams({
    Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: roleArn,
    RoleSessionName: sessionName, WebIdentityToken: token,
  }).toString();
  const r = spawnSync('curl', ['-sS', '-f', '--data-binary', '@-', '-H', 'Content-Type: application/x-www-form-urlencoded', endpoint], { input: body, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`AssumeRoleWithWebIdentity ${roleArn} failed: ${r.stderr}`);
  const get = (tag) => {
    const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(r.stdout);
    if (!m) throw new Error(`STS answer lacks ${tag}: ${r.stdout}`);
    return m[1];
  };
  return { AWS_ACCESS_KEY_ID: get('AccessKeyId'), AWS_SECRET_ACCESS_KEY: get('SecretAccessKey'), AWS_SESSION_TOKEN: get('SessionToken') };
}

// ---- GitHub Actions -----------------------------------------------------------

function readKeyValueFile(file) {
  const out = {};
  if (!fs.existsSync(file)) return out;
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (!l) continue;
    const h = /^([^=<]+)<<(.+)$/.exec(l);
    if (h) {
      const val = [];
      while (++i < lines.length && lines[i] !== h[2]) val.push(lines[i]);
      out[h[1]] = val.join('\n');
      continue;
    }
    const eq = l.indexOf('=');
    if (eq < 0) throw new Error(`bad line in ${file}: ${l}`);
    out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

function permissionsOf(workflow, job) {
  const p = job.permissions !== undefined ? job.permissions : workflow.permissions;
  if (p === undefined) return { all: 'write' };
  if (p === 'read-all') return { all: 'read' };
  if (p === 'write-all') return { all: 'write' };
  return p || {};
}

function may(perms, scope, level) {
  const v = perms[scope] || perms.all || 'none';
  return level === 'read' ? v === 'read' || v === 'write' : v === 'write';
}

// The issue-comments API of actions/github-script, kept in a JSON file.
function githubApi(stateFile, perms, repoFull) {
  const load = () => (fs.existsSync(stateFile) ? JSON.parse(fs.readFileSync(stateFile, 'utf8')) : { next: 1, comments: [] });
  const save = (s) => fs.writeFileSync(stateFile, JSON.stringify(s, null, 2));
  const check = (owner, repo) => {
    if (`${owner}/${repo}` !== repoFull) throw new Error(`wrong repository ${owner}/${repo}`);
    if (!may(perms, 'pull-requests', 'write') && !may(perms, 'issues', 'write')) {
      const e = new Error('Resource not accessible by integration');
      e.status = 403;
      throw e;
    }
  };
  const issues = {
    listComments: async ({ owner, repo, issue_number, per_page = 30, page = 1 }) => {
      if (`${owner}/${repo}` !== repoFull) throw new Error(`wrong repository ${owner}/${repo}`);
      const all = load().comments.filter((c) => c.issue_number === issue_number);
      return { data: all.slice((page - 1) * per_page, page * per_page) };
    },
    createComment: async ({ owner, repo, issue_number, body }) => {
      check(owner, repo);
      const s = load();
      const c = { id: s.next++, issue_number, body, edits: 0 };
      s.comments.push(c);
      save(s);
      return { data: c };
    },
    updateComment: async ({ owner, repo, comment_id, body }) => {
      check(owner, repo);
      const s = load();
      const c = s.comments.find((x) => x.id === comment_id);
      if (!c) throw new Error(`no comment ${comment_id}`);
      c.body = body;
      c.edits++;
      save(s);
      return { data: c };
    },
  };
  const paginate = async (fn, params) => {
    const out = [];
    for (let page = 1; ; page++) {
      const { data } = await fn({ ...params, page });
      out.push(...data);
      if (data.length < (params.per_page || 30)) return out;
    }
  };
  return { rest: { issues }, paginate };
}

async function githubScript(script, job, cwd) {
  const api = githubApi(job.commentsFile, job.perms, job.repoFull);
  const context = {
    repo: { owner: job.repoFull.split('/')[0], repo: job.repoFull.split('/')[1] },
    issue: { number: job.event.pull_request ? job.event.pull_request.number : job.event.number },
    payload: job.event,
    eventName: job.eventName,
    sha: job.ctx.github.sha,
  };
  const core = { info: log, warning: log, setFailed: (m) => { throw new Error(m); } };
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
  const fn = new AsyncFunction('require', 'github', 'context', 'core', script);
  const old = process.cwd();
  process.chdir(cwd);
  try {
    await fn(require, api, context, core);
  } finally {
    process.chdir(old);
  }
}

async function runGithubStep(step, job, label, inputs, actionDir) {
  const ctx = { ...job.ctx, env: { ...job.envCtx }, steps: job.steps, inputs: inputs || {} };
  const stepEnv = {};
  for (const [k, v] of Object.entries(step.env || {})) stepEnv[k] = interpolate(String(v), { ...ctx, env: { ...ctx.env, ...stepEnv } });
  ctx.env = { ...ctx.env, ...stepEnv };
  ctx.__status = job.status;
  if (!evalIf(step.if, ctx)) {
    log(`  step ${label}: skipped`);
    return;
  }
  const withArgs = {};
  for (const [k, v] of Object.entries(step.with || {})) withArgs[k] = interpolate(typeof v === 'string' ? v : String(v), ctx);
  const env = { ...job.baseEnv, ...job.exported, ...ctx.env };
  env.PATH = job.paths.concat([job.baseEnv.PATH]).join(':');
  const cwd = step['working-directory'] ? path.resolve(job.workspace, interpolate(step['working-directory'], ctx)) : job.workspace;

  if (step.run !== undefined) {
    const shell = step.shell || (actionDir ? null : 'bash');
    if (shell !== 'bash') throw new Error(`${label}: shell ${shell} is not implemented (composite steps must name shell: bash)`);
    const script = interpolate(step.run, ctx);
    const lines = ibsyncLines(script);
    const outFile = path.join(job.temp, `output-${job.stepCounter++}`);
    fs.writeFileSync(outFile, '');
    env.GITHUB_OUTPUT = outFile;
    if (actionDir) env.GITHUB_ACTION_PATH = actionDir;
    const before = callCount();
    const status = runShell('bash', script, cwd, env, label);
    if (status !== 0) throw new Error(`${label}: exit status ${status}`);
    const ran = callCount() - before;
    if (ran !== lines.length) throw new Error(`${label}: ${lines.length} ibsync line(s), but ibsync ran ${ran} time(s)`);
    recordExecuted(job.outDir, job.file, `${job.name}/${label}`, lines);
    Object.assign(job.exported, readKeyValueFile(env.GITHUB_ENV));
    job.envCtx = { ...job.envCtx, ...readKeyValueFile(env.GITHUB_ENV) };
    const added = fs.readFileSync(env.GITHUB_PATH, 'utf8').split('\n').filter(Boolean);
    job.paths = added.reverse().concat(job.paths.filter((p) => !added.includes(p)));
    fs.writeFileSync(env.GITHUB_PATH, '');
    if (step.id) job.steps[step.id] = { outputs: readKeyValueFile(outFile), outcome: 'success', conclusion: 'success' };
    return;
  }

  const uses = step.uses;
  if (!uses) throw new Error(`${label}: neither run nor uses`);
  const [name, version] = uses.split('@');
  if (uses.startsWith('./')) {
    const dir = path.join(job.workspace, uses);
    const action = YAML.parse(fs.readFileSync(path.join(dir, 'action.yml'), 'utf8'));
    if (!action.runs || action.runs.using !== 'composite') throw new Error(`${uses}: only composite actions are implemented`);
    const inp = {};
    for (const [k, d] of Object.entries(action.inputs || {})) {
      if (k in withArgs) inp[k] = withArgs[k];
      else if (d.required && d.default === undefined) throw new Error(`${uses}: input ${k} is required`);
      else inp[k] = d.default === undefined ? '' : String(d.default);
    }
    for (const k of Object.keys(withArgs)) if (!(k in inp)) throw new Error(`${uses}: unknown input ${k}`);
    let i = 0;
    for (const s of action.runs.steps) await runGithubStep(s, job, `${label}/${s.name || ++i}`, inp, dir);
    return;
  }
  const expectVersion = {
    'actions/checkout': 'v4', 'aws-actions/configure-aws-credentials': 'v4',
    'actions/upload-artifact': 'v4', 'actions/download-artifact': 'v4', 'actions/github-script': 'v7',
  };
  if (!(name in expectVersion)) throw new Error(`${label}: action ${uses} is not implemented by the test runner`);
  if (version !== expectVersion[name]) throw new Error(`${label}: ${name}@${version}: the runner implements ${expectVersion[name]}`);
  switch (name) {
    case 'actions/checkout': {
      const depth = withArgs['fetch-depth'] === undefined ? 1 : Number(withArgs['fetch-depth']);
      const extra = depth === 0 ? ['+refs/heads/*:refs/remotes/origin/*'] : [];
      checkout(job.workspace, job.remote, job.ctx.github.ref, job.ctx.github.sha, depth, extra);
      break;
    }
    case 'aws-actions/configure-aws-credentials': {
      if (!withArgs['role-to-assume']) throw new Error(`${label}: role-to-assume is empty`);
      if (!withArgs['aws-region']) throw new Error(`${label}: aws-region is empty`);
      for (const k of Object.keys(withArgs)) {
        if (!['role-to-assume', 'aws-region', 'role-session-name', 'role-duration-seconds'].includes(k)) throw new Error(`${label}: input ${k} is not implemented`);
      }
      if (!may(job.perms, 'id-token', 'write')) throw new Error(`${label}: the job may not request an OIDC token (permissions: id-token: write)`);
      const token = fakeJwt({ iss: 'https://token.actions.githubusercontent.com', aud: 'sts.amazonaws.com', sub: `repo:${job.repoFull}:${job.eventName}` });
      const creds = assumeRoleWithWebIdentity(withArgs['role-to-assume'], token, withArgs['role-session-name'] || 'GitHubActions');
      Object.assign(creds, { AWS_REGION: withArgs['aws-region'], AWS_DEFAULT_REGION: withArgs['aws-region'] });
      Object.assign(job.exported, creds);
      job.envCtx = { ...job.envCtx, ...creds };
      break;
    }
    case 'actions/upload-artifact': {
      const dest = path.join(job.artifacts, withArgs.name || 'artifact');
      if (fs.existsSync(dest)) throw new Error(`${label}: artifact ${withArgs.name} exists already`);
      fs.mkdirSync(dest, { recursive: true });
      let n = 0;
      for (const p of String(withArgs.path).split('\n').map((s) => s.trim()).filter(Boolean)) {
        const src = path.resolve(job.workspace, p);
        if (!fs.existsSync(src)) continue;
        fs.cpSync(src, path.join(dest, path.basename(src)), { recursive: true });
        n++;
      }
      if (!n && withArgs['if-no-files-found'] === 'error') throw new Error(`${label}: no files found at ${withArgs.path}`);
      break;
    }
    case 'actions/download-artifact': {
      const src = path.join(job.artifacts, withArgs.name);
      if (!fs.existsSync(src)) throw new Error(`${label}: no artifact ${withArgs.name}`);
      fs.cpSync(src, path.resolve(job.workspace, withArgs.path || '.'), { recursive: true });
      break;
    }
    case 'actions/github-script':
      await githubScript(withArgs.script, job, cwd);
      break;
    default:
      throw new Error(`unreachable ${name}`);
  }
}

async function runGithub(args) {
  const file = args._[1];
  const wf = YAML.parse(fs.readFileSync(file, 'utf8'));
  const eventName = args['event-name'];
  const event = JSON.parse(fs.readFileSync(args.event, 'utf8'));
  const outDir = path.resolve(args.out);
  const runIndex0 = Number(args['run-index'] || 1);
  const artifacts = path.join(outDir, `run-${runIndex0}`, 'artifacts');
  const on = wf.on;
  const trigger = on && (Array.isArray(on) ? on.includes(eventName) && {} : on[eventName]);
  const result = { workflow: wf.name, jobs: {} };
  if (trigger === undefined || trigger === false) {
    result.triggered = false;
    return result;
  }
  if (trigger && trigger.types && !trigger.types.includes(event.action)) {
    result.triggered = false;
    return result;
  }
  if (trigger && trigger.branches && !trigger.branches.includes(args.ref.replace('refs/heads/', ''))) {
    result.triggered = false;
    return result;
  }
  result.triggered = true;
  result.artifacts = artifacts;
  const vars = JSON.parse(args.vars || '{}');
  const github = {
    event, event_name: eventName, sha: args.sha, ref: args.ref, repository: args.repo,
    base_ref: event.pull_request ? event.pull_request.base.ref : '', head_ref: event.pull_request ? event.pull_request.head.ref : '',
    workspace: '', run_id: '1',
  };
  const baseCtx = { github, vars, secrets: { GITHUB_TOKEN: 'ghs_test' }, runner: { os: 'Linux', temp: '' }, needs: {}, steps: {}, inputs: {}, env: {} };
  const wfEnv = {};
  for (const [k, v] of Object.entries(wf.env || {})) wfEnv[k] = interpolate(String(v), { ...baseCtx, env: wfEnv });
  if (wf.concurrency) interpolate(typeof wf.concurrency === 'string' ? wf.concurrency : wf.concurrency.group, { ...baseCtx, env: wfEnv });

  const names = Object.keys(wf.jobs);
  const done = {};
  const pending = names.slice();
  let runIndex = runIndex0;
  while (pending.length) {
    const i = pending.findIndex((n) => [].concat(wf.jobs[n].needs || []).every((d) => d in done));
    if (i < 0) throw new Error(`needs cycle or unknown job among ${pending.join(', ')}`);
    const name = pending.splice(i, 1)[0];
    const spec = wf.jobs[name];
    const needList = [].concat(spec.needs || []);
    const needs = {};
    for (const d of needList) needs[d] = { result: done[d].result, outputs: done[d].outputs };
    const status = needList.every((d) => done[d].result === 'success') ? 'success' : 'failure';
    const ctx = { ...baseCtx, needs, env: { ...wfEnv }, __status: status };
    if (!evalIf(spec.if, ctx)) {
      log(`job ${name}: skipped`);
      done[name] = { result: 'skipped', outputs: {} };
      result.jobs[name] = done[name];
      continue;
    }
    for (const k of Object.keys(spec)) {
      if (!['if', 'needs', 'runs-on', 'permissions', 'concurrency', 'steps', 'env', 'outputs', 'environment'].includes(k)) throw new Error(`job ${name}: key ${k} is not implemented by the test runner`);
    }
    if (spec.concurrency) interpolate(typeof spec.concurrency === 'string' ? spec.concurrency : spec.concurrency.group, ctx);
    const root = path.join(outDir, 'jobs', `${runIndex++}-${name}`);
    const workspace = path.join(root, 'work');
    const temp = path.join(root, 'temp');
    fs.mkdirSync(workspace, { recursive: true });
    fs.mkdirSync(temp, { recursive: true });
    github.workspace = workspace;
    const jobEnv = { ...wfEnv };
    for (const [k, v] of Object.entries(spec.env || {})) jobEnv[k] = interpolate(String(v), { ...ctx, env: jobEnv });
    const summary = path.join(root, 'step-summary.md');
    const baseEnv = {
      ...process.env, CI: 'true', GITHUB_ACTIONS: 'true', GITHUB_WORKSPACE: workspace, RUNNER_TEMP: temp,
      GITHUB_ENV: path.join(temp, 'env'), GITHUB_PATH: path.join(temp, 'path'), GITHUB_STEP_SUMMARY: summary,
      GITHUB_SHA: args.sha, GITHUB_REF: args.ref, GITHUB_EVENT_NAME: eventName, GITHUB_REPOSITORY: args.repo,
      GITHUB_BASE_REF: github.base_ref, GITHUB_HEAD_REF: github.head_ref, GITHUB_EVENT_PATH: args.event,
    };
    for (const f of [baseEnv.GITHUB_ENV, baseEnv.GITHUB_PATH, summary]) fs.writeFileSync(f, '');
    const job = {
      name, file, outDir, artifacts, workspace, temp, remote: path.resolve(args.remote), eventName, event, repoFull: args.repo,
      commentsFile: path.join(outDir, 'github-comments.json'), perms: permissionsOf(wf, spec),
      ctx: { ...ctx, runner: { os: 'Linux', temp } }, envCtx: jobEnv, baseEnv, exported: {}, paths: [], steps: {},
      stepCounter: 0, status: 'success',
    };
    log(`job ${name}: running`);
    let ok = true;
    let n = 0;
    try {
      for (const s of spec.steps) await runGithubStep(s, job, s.name || s.uses || `step ${++n}`);
    } catch (e) {
      log(`job ${name}: FAILED: ${e.message}`);
      ok = false;
    }
    const outputs = {};
    for (const [k, v] of Object.entries(spec.outputs || {})) outputs[k] = interpolate(String(v), { ...job.ctx, env: job.envCtx, steps: job.steps });
    done[name] = { result: ok ? 'success' : 'failure', outputs, summary: fs.readFileSync(summary, 'utf8'), workspace };
    result.jobs[name] = done[name];
  }
  return result;
}

// ---- GitLab CI ------------------------------------------------------------------

function deepMerge(a, b) {
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const out = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = k in out ? deepMerge(out[k], v) : v;
    return out;
  }
  return b;
}

function resolveExtends(doc, name, seen = []) {
  const job = doc[name];
  if (!job) throw new Error(`extends: no ${name}`);
  if (seen.includes(name)) throw new Error(`extends cycle at ${name}`);
  let base = {};
  for (const parent of [].concat(job.extends || [])) base = deepMerge(base, resolveExtends(doc, parent, seen.concat([name])));
  const own = { ...job };
  delete own.extends;
  return deepMerge(base, own);
}

function expandVars(s, vars) {
  return String(s).replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, a, b) => {
    if (m === '$$') return '$';
    const v = vars[a || b];
    return v === undefined ? '' : v;
  });
}

// GitLab rules:if expressions: $VAR, "string", null, /regex/, ==, !=, =~,
// !~, &&, ||, parentheses.
function evalRule(src, vars) {
  const toks = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    const rest = src.slice(i);
    let m;
    if (/\s/.test(c)) i++;
    else if ((m = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/.exec(rest))) { toks.push({ t: 'var', v: m[1] }); i += m[0].length; }
    else if ((m = /^"((?:[^"\\]|\\.)*)"|^'([^']*)'/.exec(rest))) { toks.push({ t: 'str', v: m[1] !== undefined ? m[1] : m[2] }); i += m[0].length; }
    else if ((m = /^\/((?:[^/\\]|\\.)*)\/([a-z]*)/.exec(rest))) { toks.push({ t: 're', v: new RegExp(m[1], m[2]) }); i += m[0].length; }
    else if ((m = /^(==|!=|=~|!~|&&|\|\||\(|\))/.exec(rest))) { toks.push({ t: 'op', v: m[1] }); i += m[0].length; }
    else if ((m = /^null\b/.exec(rest))) { toks.push({ t: 'null' }); i += 4; }
    else throw new Error(`cannot parse rule ${src} at ${rest}`);
  }
  let p = 0;
  const peek = () => toks[p];
  function value(t) {
    if (t.t === 'var') return vars[t.v] === undefined ? null : vars[t.v];
    if (t.t === 'str') return t.v;
    if (t.t === 'null') return null;
    return t.v;
  }
  function atom() {
    const t = toks[p++];
    if (!t) throw new Error(`rule ends early: ${src}`);
    if (t.t === 'op' && t.v === '(') {
      const v = or();
      if (!toks[p] || toks[p++].v !== ')') throw new Error(`missing ) in ${src}`);
      return v;
    }
    const a = value(t);
    const n = peek();
    if (n && n.t === 'op' && ['==', '!=', '=~', '!~'].includes(n.v)) {
      p++;
      const b = value(toks[p++]);
      if (n.v === '==') return a === b;
      if (n.v === '!=') return a !== b;
      if (!(b instanceof RegExp)) throw new Error(`${n.v} needs a /regex/ in ${src}`);
      const hit = a !== null && b.test(a);
      return n.v === '=~' ? hit : !hit;
    }
    return a !== null && a !== '';
  }
  function and() {
    let v = atom();
    while (peek() && peek().v === '&&') { p++; v = atom() && v; }
    return v;
  }
  function or() {
    let v = and();
    while (peek() && peek().v === '||') { p++; v = and() || v; }
    return v;
  }
  const v = or();
  if (p !== toks.length) throw new Error(`trailing tokens in rule ${src}`);
  return v;
}

function matchRules(rules, vars) {
  for (const r of rules) {
    if (r.if === undefined || evalRule(r.if, vars)) return r.when || 'on_success';
  }
  return null;
}

function runGitlab(args) {
  const file = args._[1];
  const doc = YAML.parse(fs.readFileSync(file, 'utf8'), { customTags: [] });
  const outDir = path.resolve(args.out);
  const images = JSON.parse(args.images);
  const given = JSON.parse(args.vars || '{}');
  const play = new Set(args.multi.play || (args.play ? [args.play] : []));
  const buildsDir = path.join(outDir, 'builds');
  fs.mkdirSync(buildsDir, { recursive: true });
  const predefined = { CI: 'true', GITLAB_CI: 'true', CI_BUILDS_DIR: buildsDir, CI_COMMIT_SHA: args.sha, ...given };
  for (const k of Object.keys(doc)) {
    if (!k.startsWith('.') && ['include', 'default', 'image', 'services', 'cache', 'before_script', 'after_script'].includes(k)) throw new Error(`top-level ${k} is not implemented by the test runner`);
  }
  const globalVars = {};
  for (const [k, v] of Object.entries(doc.variables || {})) globalVars[k] = expandVars(typeof v === 'object' ? v.value : v, { ...predefined, ...globalVars });
  const result = { jobs: {} };
  const wfVars = { ...predefined, ...globalVars };
  if (doc.workflow && doc.workflow.rules && !matchRules(doc.workflow.rules, wfVars)) {
    result.pipeline = false;
    return result;
  }
  result.pipeline = true;
  const stages = doc.stages || ['build', 'test', 'deploy'];
  const reserved = new Set(['variables', 'stages', 'workflow']);
  const jobs = [];
  for (const name of Object.keys(doc)) {
    if (reserved.has(name) || name.startsWith('.')) continue;
    const spec = resolveExtends(doc, name);
    const known = ['stage', 'image', 'variables', 'id_tokens', 'before_script', 'script', 'rules', 'needs', 'artifacts', 'environment', 'resource_group', 'allow_failure'];
    for (const k of Object.keys(spec)) if (!known.includes(k)) throw new Error(`job ${name}: key ${k} is not implemented by the test runner`);
    const when = spec.rules ? matchRules(spec.rules, wfVars) : 'on_success';
    if (!when || when === 'never') continue;
    if (!stages.includes(spec.stage || 'test')) throw new Error(`job ${name}: unknown stage ${spec.stage}`);
    jobs.push({ name, spec, when, stage: stages.indexOf(spec.stage || 'test') });
  }
  // --only JOB: run one job of the pipeline by itself, as when a manual job
  // (an environment's stop job) is played later.
  if (args.only) {
    const one = jobs.filter((j) => j.name === args.only);
    if (!one.length) throw new Error(`--only ${args.only}: the job is not in the pipeline`);
    jobs.length = 0;
    jobs.push(...one);
  }
  const done = {};
  let jobId = Number(args['first-job-id'] || 100);
  const artifacts = path.join(outDir, `pipeline-${jobId}`, 'artifacts');
  result.artifacts = artifacts;
  const pending = jobs.slice();
  while (pending.length) {
    for (const j of pending) {
      for (const n of j.spec.needs || []) {
        if (!jobs.some((x) => x.name === n)) throw new Error(`${j.name}: needs ${n}, which is not in the pipeline`);
      }
    }
    const ready = pending.findIndex((j) =>
      j.spec.needs ? j.spec.needs.every((n) => n in done) : jobs.filter((x) => x.stage < j.stage).every((x) => x.name in done));
    if (ready < 0) throw new Error(`cannot order ${pending.map((j) => j.name).join(', ')}`);
    const j = pending.splice(ready, 1)[0];
    if (j.when === 'manual' && !play.has(j.name)) {
      log(`job ${j.name}: manual, not played`);
      done[j.name] = { result: 'manual' };
      result.jobs[j.name] = done[j.name];
      continue;
    }
    const deps = j.spec.needs ? j.spec.needs : jobs.filter((x) => x.stage < j.stage).map((x) => x.name);
    if (deps.some((d) => done[d].result === 'failed')) {
      done[j.name] = { result: 'skipped' };
      result.jobs[j.name] = done[j.name];
      continue;
    }
    const id = String(jobId++);
    const projectDir = path.join(buildsDir, `${id}-${j.name}`, 'project');
    fs.mkdirSync(projectDir, { recursive: true });
    let vars = { ...predefined, ...globalVars, CI_JOB_ID: id, CI_JOB_NAME: j.name, CI_PROJECT_DIR: projectDir };
    for (const [k, v] of Object.entries(j.spec.variables || {})) vars[k] = expandVars(typeof v === 'object' ? v.value : v, vars);
    for (const [k, v] of Object.entries(j.spec.id_tokens || {})) {
      vars[k] = fakeJwt({ iss: 'https://gitlab.example.com', aud: v.aud, sub: `project_path:${given.CI_PROJECT_PATH}:ref_type:branch:ref:${given.CI_COMMIT_REF_NAME}` });
    }
    for (const key of ['resource_group']) if (j.spec[key]) expandVars(j.spec[key], vars);
    if (j.spec.environment) expandVars(j.spec.environment.name, vars);
    const imageName = expandVars(typeof j.spec.image === 'object' ? j.spec.image.name : j.spec.image, vars);
    const image = images[imageName];
    if (!image) throw new Error(`job ${j.name}: image ${imageName} is not known to the test`);
    log(`job ${j.name}: running in ${imageName}`);
    let ok = true;
    try {
      if ((vars.GIT_STRATEGY || 'fetch') !== 'none') {
        const depth = vars.GIT_DEPTH === undefined ? 20 : Number(vars.GIT_DEPTH);
        checkout(projectDir, path.resolve(args.remote), args.ref, args.sha, depth, ['+refs/heads/*:refs/remotes/origin/*']);
      }
      for (const d of deps) {
        const a = path.join(artifacts, d);
        if (fs.existsSync(a)) fs.cpSync(a, projectDir, { recursive: true });
      }
      const lines = [].concat(j.spec.before_script || [], j.spec.script || []);
      const script = lines.join('\n') + '\n';
      const ib = [];
      for (const l of lines) ib.push(...ibsyncLines(l));
      const env = { ...process.env, ...vars, PATH: `${image.path}:${process.env.PATH}` };
      const before = callCount();
      const status = runShell(image.shell, script, projectDir, env, j.name);
      if (status !== 0) throw new Error(`exit status ${status}`);
      const ran = callCount() - before;
      if (ran !== ib.length) throw new Error(`${ib.length} ibsync line(s), but ibsync ran ${ran} time(s)`);
      recordExecuted(outDir, file, j.name, ib);
      const paths = (j.spec.artifacts && j.spec.artifacts.paths) || [];
      const dest = path.join(artifacts, j.name);
      for (const p of paths) {
        const src = path.join(projectDir, p);
        if (!fs.existsSync(src)) throw new Error(`artifact ${p} was not created`);
        fs.mkdirSync(dest, { recursive: true });
        fs.cpSync(src, path.join(dest, p), { recursive: true });
      }
    } catch (e) {
      log(`job ${j.name}: FAILED: ${e.message}`);
      ok = false;
    }
    done[j.name] = { result: ok ? 'success' : j.spec.allow_failure ? 'failed-allowed' : 'failed', projectDir, vars: { AWS_ROLE_ARN: vars.AWS_ROLE_ARN } };
    result.jobs[j.name] = done[j.name];
  }
  return result;
}

// ---- main -----------------------------------------------------------------------

// The ibsync lines of run: steps (GitHub workflows and composite actions)
// and of script:/before_script: (GitLab jobs).
function lines(files) {
  const out = [];
  const add = (file, script) => out.push(...ibsyncLines(script).map((line) => ({ file, line })));
  for (const file of files) {
    const doc = YAML.parse(fs.readFileSync(file, 'utf8'));
    if (doc.jobs) {
      for (const job of Object.values(doc.jobs)) for (const st of job.steps || []) if (st.run) add(file, st.run);
    } else if (doc.runs) {
      for (const st of doc.runs.steps || []) if (st.run) add(file, st.run);
    } else {
      for (const job of Object.values(doc)) {
        if (!job || typeof job !== 'object' || Array.isArray(job)) continue;
        for (const k of ['before_script', 'script']) for (const l of [].concat(job[k] || [])) add(file, l);
      }
    }
  }
  return out;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const mode = args._[0];
  let result;
  if (mode === 'github') result = await runGithub(args);
  else if (mode === 'gitlab') result = runGitlab(args);
  else if (mode === 'lines') result = lines(args._.slice(1));
  else die('usage: ci-runner.js github|gitlab|lines FILE [options]');
  const text = JSON.stringify(result, null, 2) + '\n';
  if (args.summary) fs.writeFileSync(args.summary, text);
  else process.stdout.write(text);
  const failed = mode !== 'lines' && Object.values(result.jobs).some((j) => j.result === 'failure' || j.result === 'failed');
  process.exit(failed ? 1 : 0);
}

module.exports = { ibsyncLines };
if (require.main === module) main().catch((e) => die(e.stack || e.message));
