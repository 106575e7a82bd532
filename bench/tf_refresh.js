// A Terraform-style refresh of an Image Builder account with the official
// AWS SDK for JavaScript v3 (@aws-sdk/client-imagebuilder): the baseline of
// bench/plan.sh.
//
// Terraform's plan refreshes every resource in its state with that
// resource's Get call, 10 at a time (-parallelism=10), whether anything
// changed or not. Terraform knows its resource ARNs from its state file; the
// list that stands in for that state here is made once, untimed.
//
// Usage (NODE: node 20+; the SDK is the interop tests' copy, installed by
// tests/interop/setup.sh):
//   node bench/tf_refresh.js list    --endpoint URL [--region R] > inventory.json
//   node bench/tf_refresh.js refresh --endpoint URL [--region R] [--concurrency 10] inventory.json
//
// `list` prints every Self-owned resource of the eight kinds as JSON:
//   [{"kind", "name", "version" (versioned kinds, else null), "arn" (the
//     version ARN), "getArn" (what Get takes: the build version ARN for
//     components and workflows), "builds" (components and workflows: every
//     build version ARN of that version)}]
// `refresh` does one Get per resource of the inventory, `--concurrency` in
// flight, and prints one JSON line {"resources", "calls", "errors",
// "seconds"}, the seconds from the first call to the last answer. It exits 1
// when a call failed.
//
// Credentials come from the environment (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY; an emulator started without --credentials accepts
// any). Every call is made once (maxAttempts 1): a failure is reported, not
// hidden by a retry.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const SDK = path.join(__dirname, '..', 'tests', 'interop', 'node_modules', '@aws-sdk',
                      'client-imagebuilder');

function loadSdk() {
  try {
    return require(SDK);
  } catch (e) {
    process.stderr.write(`tf_refresh: cannot load ${SDK} (${e.message}); ` +
                         'run tests/interop/setup.sh first\n');
    process.exit(1);
  }
  return null;
}

const ib = loadSdk();

// kind, List command, its list member, whether it takes owner=Self, Get
// command and its ARN member; versioned kinds with build versions also name
// their List*BuildVersions command, its input member and list member.
const KINDS = [
  {kind: 'Component', list: 'ListComponentsCommand', member: 'componentVersionList', owner: true,
   builds: ['ListComponentBuildVersionsCommand', 'componentVersionArn', 'componentSummaryList'],
   get: 'GetComponentCommand', getArn: 'componentBuildVersionArn'},
  {kind: 'Workflow', list: 'ListWorkflowsCommand', member: 'workflowVersionList', owner: true,
   builds: ['ListWorkflowBuildVersionsCommand', 'workflowVersionArn', 'workflowSummaryList'],
   get: 'GetWorkflowCommand', getArn: 'workflowBuildVersionArn'},
  {kind: 'ImageRecipe', list: 'ListImageRecipesCommand', member: 'imageRecipeSummaryList',
   owner: true, get: 'GetImageRecipeCommand', getArn: 'imageRecipeArn'},
  {kind: 'ContainerRecipe', list: 'ListContainerRecipesCommand',
   member: 'containerRecipeSummaryList', owner: true, get: 'GetContainerRecipeCommand',
   getArn: 'containerRecipeArn'},
  {kind: 'InfrastructureConfiguration', list: 'ListInfrastructureConfigurationsCommand',
   member: 'infrastructureConfigurationSummaryList', get: 'GetInfrastructureConfigurationCommand',
   getArn: 'infrastructureConfigurationArn'},
  {kind: 'DistributionConfiguration', list: 'ListDistributionConfigurationsCommand',
   member: 'distributionConfigurationSummaryList', get: 'GetDistributionConfigurationCommand',
   getArn: 'distributionConfigurationArn'},
  {kind: 'ImagePipeline', list: 'ListImagePipelinesCommand', member: 'imagePipelineList',
   get: 'GetImagePipelineCommand', getArn: 'imagePipelineArn'},
  {kind: 'LifecyclePolicy', list: 'ListLifecyclePoliciesCommand',
   member: 'lifecyclePolicySummaryList', get: 'GetLifecyclePolicyCommand',
   getArn: 'lifecyclePolicyArn'},
];
const BY_KIND = Object.fromEntries(KINDS.map((k) => [k.kind, k]));

function usage(msg) {
  process.stderr.write(`tf_refresh: ${msg}\n` +
                       'usage: tf_refresh.js list --endpoint URL [--region R]\n' +
                       '       tf_refresh.js refresh --endpoint URL [--region R] ' +
                       '[--concurrency N] INVENTORY.json\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {region: process.env.AWS_REGION || 'us-east-1', concurrency: 10};
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--endpoint' || a === '--region' || a === '--concurrency') {
      if (i + 1 >= argv.length)
        usage(`${a} needs a value`);
      opts[a.slice(2)] = argv[++i];
    } else if (a.startsWith('--')) {
      usage(`unknown option ${a}`);
    } else {
      positional.push(a);
    }
  }
  [opts.command, ...opts.files] = positional;
  if (opts.command !== 'list' && opts.command !== 'refresh')
    usage('the command is list or refresh');
  opts.concurrency = Number(opts.concurrency);
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1)
    usage('--concurrency must be a positive integer');
  if (!opts.endpoint)
    usage('--endpoint is required');
  if (opts.command === 'refresh' && opts.files.length !== 1)
    usage('refresh takes one inventory file');
  if (opts.command === 'list' && opts.files.length !== 0)
    usage('list takes no file');
  return opts;
}

// Runs fn over items with at most n in flight; resolves to the results in order.
async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({length: Math.min(n, items.length)}, worker));
  return out;
}

// Every page of a List call (maxResults 25, the API's largest).
async function listAll(client, command, input, member) {
  const items = [];
  let nextToken;
  do {
    const page = await client.send(new ib[command]({...input, maxResults: 25, nextToken}));
    items.push(...(page[member] || []));
    nextToken = page.nextToken;
  } while (nextToken);
  return items;
}

async function inventory(client, concurrency) {
  const perKind = await Promise.all(KINDS.map(async (k) => {
    const items = await listAll(client, k.list, k.owner ? {owner: 'Self'} : {}, k.member);
    return pool(items, concurrency, async (it) => {
      const r = {kind: k.kind, name: it.name, version: it.version || null, arn: it.arn,
                 getArn: it.arn, builds: null};
      if (k.builds) {
        const [cmd, inMember, outMember] = k.builds;
        const builds = await listAll(client, cmd, {[inMember]: it.arn}, outMember);
        r.builds = builds.map((b) => b.arn).sort();
        r.getArn = r.builds[r.builds.length - 1] || it.arn;
      }
      return r;
    });
  }));
  return perKind.flat();
}

async function refresh(client, resources, concurrency) {
  let calls = 0;
  let errors = 0;
  const start = process.hrtime.bigint();
  await pool(resources, concurrency, async (r) => {
    const k = BY_KIND[r.kind];
    if (!k)
      throw new Error(`unknown kind ${r.kind} in the inventory`);
    calls++;
    try {
      await client.send(new ib[k.get]({[k.getArn]: r.getArn}));
    } catch (e) {
      errors++;
      if (errors <= 5)
        process.stderr.write(`tf_refresh: ${k.get} ${r.getArn}: ${e.name}: ${e.message}\n`);
    }
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return {resources: resources.length, calls, errors, seconds: Number(seconds.toFixed(3))};
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const client = new ib.ImagebuilderClient({endpoint: opts.endpoint, region: opts.region,
                                            maxAttempts: 1});
  if (opts.command === 'list') {
    const inv = await inventory(client, opts.concurrency);
    process.stdout.write(JSON.stringify(inv, null, 1) + '\n');
    return 0;
  }
  const inv = JSON.parse(fs.readFileSync(opts.files[0], 'utf8'));
  const result = await refresh(client, inv, opts.concurrency);
  process.stdout.write(JSON.stringify(result) + '\n');
  return result.errors ? 1 : 0;
}

main().then((rc) => process.exit(rc), (e) => {
  process.stderr.write(`tf_refresh: ${e.name || 'Error'}: ${e.message}\n`);
  process.exit(1);
});
