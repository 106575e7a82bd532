#!/usr/bin/env node
// Offline checks of the Kubernetes manifests in deploy/kubernetes, for
// tests/scenarios/usage_k8s.sh.
//
//   k8s.js check DIR   reads DIR/kustomization.yaml and its resources (YAML
//                      1.1, as Kubernetes reads it), validates every object
//                      against the Kubernetes 1.27 OpenAPI schemas bundled in
//                      the kubernetes-models package, and checks the CronJob
//                      against the "restricted" Pod Security Standard and
//                      what ibsync needs (state directory and /tmp on
//                      emptyDir, the git token Secret mounted where
//                      --git-token-file reads it, the ConfigMap providing
//                      every $(VAR), the IRSA annotation). Prints one line per
//                      problem and "N checks, N problems"; exits 1 on problems.
//   k8s.js pod DIR [NAME=VALUE...]
//                      prints the CronJob's pod as the kubelet would start it,
//                      as JSON: per container the argv with $(VAR) expanded
//                      from its environment (ConfigMap envFrom, env, and the
//                      NAME=VALUE overrides), the environment and the mounts;
//                      plus the service account's annotations.
'use strict';

const fs = require('fs');
const path = require('path');
const YAML = require('yaml');

const MODELS = {
  'batch/v1/CronJob': () => require('kubernetes-models/batch/v1/CronJob').CronJob,
  'v1/ServiceAccount': () => require('kubernetes-models/v1/ServiceAccount').ServiceAccount,
  'v1/ConfigMap': () => require('kubernetes-models/v1/ConfigMap').ConfigMap,
  'v1/Secret': () => require('kubernetes-models/v1/Secret').Secret,
};

function load(dir) {
  const k = YAML.parse(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'), { version: '1.1' });
  const objects = [];
  for (const r of k.resources || []) {
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(dir, r), 'utf8'), { version: '1.1' })) {
      if (doc.errors.length) throw new Error(`${r}: ${doc.errors[0].message}`);
      const o = doc.toJS();
      if (o) objects.push({ file: r, o });
    }
  }
  return { kustomization: k, objects };
}

function find(objects, kind) {
  return objects.filter((x) => x.o.kind === kind).map((x) => x.o);
}

// The value of `--flag` in argv.
function flag(argv, name) {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

function check(dir) {
  const problems = [];
  let checks = 0;
  const expect = (cond, msg) => {
    checks++;
    if (!cond) problems.push(msg);
  };
  const { kustomization, objects } = load(dir);
  expect(kustomization.kind === 'Kustomization', 'kustomization.yaml: kind is not Kustomization');
  for (const { file, o } of objects) {
    const key = `${o.apiVersion}/${o.kind}`;
    const model = MODELS[key];
    expect(model, `${file}: ${key} is not a kind this test knows`);
    if (!model) continue;
    try {
      new (model())(o).validate();
      checks++;
    } catch (e) {
      problems.push(`${file}: ${o.kind}/${o.metadata && o.metadata.name}: schema: ${e.message}`);
    }
  }
  const [cj] = find(objects, 'CronJob');
  const [sa] = find(objects, 'ServiceAccount');
  const cms = find(objects, 'ConfigMap');
  expect(cj && sa && cms.length === 1, 'the base must hold one CronJob, one ServiceAccount and one ConfigMap');
  if (!cj || !sa || !cms.length) return { checks, problems };
  const cm = cms[0];

  expect(cj.spec.concurrencyPolicy === 'Forbid', 'CronJob: concurrencyPolicy is not Forbid');
  const pod = cj.spec.jobTemplate.spec.template.spec;
  const psc = pod.securityContext || {};
  expect(psc.runAsNonRoot === true, 'pod: securityContext.runAsNonRoot is not true');
  expect(psc.runAsUser === 10001, 'pod: securityContext.runAsUser is not 10001');
  expect(psc.seccompProfile && psc.seccompProfile.type === 'RuntimeDefault', 'pod: securityContext.seccompProfile.type is not RuntimeDefault');
  for (const h of ['hostNetwork', 'hostPID', 'hostIPC']) expect(!pod[h], `pod: ${h} is set`);
  const allowedVolumes = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];
  const volumes = {};
  for (const v of pod.volumes || []) {
    const type = Object.keys(v).find((k) => k !== 'name');
    volumes[v.name] = { type, spec: v[type] };
    expect(allowedVolumes.includes(type), `pod: volume ${v.name} is a ${type} volume, which "restricted" forbids`);
  }
  expect(pod.serviceAccountName === sa.metadata.name, `pod: serviceAccountName is not ${sa.metadata.name}`);
  const containers = (pod.initContainers || []).concat(pod.containers || []);
  for (const c of containers) {
    const sc = c.securityContext || {};
    const where = `container ${c.name}`;
    expect(sc.allowPrivilegeEscalation === false, `${where}: securityContext.allowPrivilegeEscalation is not false`);
    expect(sc.readOnlyRootFilesystem === true, `${where}: securityContext.readOnlyRootFilesystem is not true`);
    expect(sc.capabilities && (sc.capabilities.drop || []).includes('ALL'), `${where}: securityContext.capabilities.drop lacks ALL`);
    expect(!sc.capabilities || (sc.capabilities.add || []).every((x) => x === 'NET_BIND_SERVICE'), `${where}: adds capabilities`);
    expect(sc.privileged !== true, `${where}: privileged`);
    expect(sc.runAsNonRoot !== false && (sc.runAsNonRoot === true || psc.runAsNonRoot === true), `${where}: may run as root`);
    expect(sc.runAsUser === undefined || sc.runAsUser === 10001, `${where}: securityContext.runAsUser is not 10001`);
    expect(!sc.seccompProfile || sc.seccompProfile.type === 'RuntimeDefault' || sc.seccompProfile.type === 'Localhost', `${where}: seccompProfile is ${sc.seccompProfile && sc.seccompProfile.type}`);
    expect(c.resources && c.resources.limits && c.resources.limits.memory, `${where}: no memory limit`);
    for (const m of c.volumeMounts || []) expect(m.name in volumes, `${where}: mounts unknown volume ${m.name}`);
  }
  const main = (pod.containers || []).find((c) => c.name === 'ibsync');
  expect(main, 'pod: no container named ibsync');
  if (!main) return { checks, problems };
  const argv = (main.command || []).concat(main.args || []);
  expect(argv[0] === 'ibsync' && argv[1] === 'reconcile', `container ibsync: runs ${argv.slice(0, 2).join(' ')}, not ibsync reconcile`);
  expect(flag(argv, '--log-format') === 'json', 'container ibsync: no --log-format json');
  const mountOf = (p) => (main.volumeMounts || []).filter((m) => p === m.mountPath || p.startsWith(m.mountPath.replace(/\/$/, '') + '/'))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  const stateDir = flag(argv, '--state-dir');
  expect(stateDir, 'container ibsync: no --state-dir');
  for (const [what, p] of [['--state-dir', stateDir], ['/tmp', '/tmp'], ['--metrics-file', flag(argv, '--metrics-file')]]) {
    const m = p && mountOf(p);
    expect(m && volumes[m.name].type === 'emptyDir' && !m.readOnly, `container ibsync: ${what} ${p} is not on a writable emptyDir volume`);
  }
  const tokenFile = flag(argv, '--git-token-file');
  const tm = tokenFile && mountOf(tokenFile);
  const tv = tm && volumes[tm.name];
  expect(tv && tv.type === 'secret', `container ibsync: --git-token-file ${tokenFile} is not on a Secret volume`);
  if (tv && tv.type === 'secret') {
    const rel = tokenFile.slice(tm.mountPath.replace(/\/$/, '').length + 1);
    const item = (tv.spec.items || []).find((i) => i.path === rel);
    expect(tm.readOnly === true, 'container ibsync: the git token volume is not mounted readOnly');
    expect(item || !tv.spec.items, `container ibsync: Secret ${tv.spec.secretName} has no item for ${rel}`);
    expect((tv.spec.defaultMode & 0o007) === 0, `secret volume ${tm.name}: defaultMode ${tv.spec.defaultMode.toString(8)} lets others read the token`);
  }
  const envNames = new Set((main.env || []).map((e) => e.name));
  for (const ef of main.envFrom || []) {
    expect(ef.configMapRef && ef.configMapRef.name === cm.metadata.name, `container ibsync: envFrom ${JSON.stringify(ef)} is not the ConfigMap ${cm.metadata.name}`);
    for (const k of Object.keys(cm.data || {})) envNames.add(k);
  }
  for (const a of argv) {
    for (const m of a.matchAll(/(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) expect(envNames.has(m[1]), `container ibsync: $(${m[1]}) is not in its environment`);
  }
  expect(!envNames.has('PATH'), 'container ibsync: the environment sets PATH');
  const role = (sa.metadata.annotations || {})['eks.amazonaws.com/role-arn'];
  expect(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+/.test(role || ''), `ServiceAccount ${sa.metadata.name}: no IRSA annotation eks.amazonaws.com/role-arn`);
  return { checks, problems };
}

function podJson(dir, overrides) {
  const { objects } = load(dir);
  const [cj] = find(objects, 'CronJob');
  const [sa] = find(objects, 'ServiceAccount');
  const cms = {};
  for (const cm of find(objects, 'ConfigMap')) cms[cm.metadata.name] = cm.data || {};
  const pod = cj.spec.jobTemplate.spec.template.spec;
  const volumes = {};
  for (const v of pod.volumes || []) {
    const type = Object.keys(v).find((k) => k !== 'name');
    volumes[v.name] = { type, ...v[type] };
  }
  const out = { serviceAccount: sa.metadata, securityContext: pod.securityContext, containers: [] };
  for (const [kind, list] of [['init', pod.initContainers || []], ['main', pod.containers || []]]) {
    for (const c of list) {
      const env = {};
      for (const ef of c.envFrom || []) Object.assign(env, cms[ef.configMapRef.name]);
      for (const e of c.env || []) env[e.name] = e.value;
      Object.assign(env, overrides);
      // Kubernetes' $(VAR) expansion: $$ escapes, unknown names stay as written.
      const expand = (s) => String(s).replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, n) => (m === '$$' ? '$' : n in env ? env[n] : m));
      out.containers.push({
        name: c.name, kind, sidecar: c.restartPolicy === 'Always', image: c.image,
        argv: (c.command || []).concat(c.args || []).map(expand), env,
        securityContext: c.securityContext || {},
        mounts: (c.volumeMounts || []).map((m) => ({ path: m.mountPath, readOnly: !!m.readOnly, volume: m.name, ...volumes[m.name] })),
      });
    }
  }
  return out;
}

function main() {
  const [mode, dir, ...rest] = process.argv.slice(2);
  if (mode === 'check' && dir) {
    const { checks, problems } = check(dir);
    for (const p of problems) console.log(`problem: ${p}`);
    console.log(`${checks} checks, ${problems.length} problems`);
    process.exit(problems.length ? 1 : 0);
  }
  if (mode === 'pod' && dir) {
    const overrides = {};
    for (const kv of rest) overrides[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
    console.log(JSON.stringify(podJson(dir, overrides), null, 2));
    return;
  }
  console.error('usage: k8s.js check DIR | k8s.js pod DIR [NAME=VALUE...]');
  process.exit(2);
}

main();
