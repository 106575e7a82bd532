// The official AWS SDK for JavaScript v3 (@aws-sdk/client-imagebuilder),
// unchanged but for the endpoint, against `ibsync emulator`: request
// binding (URI labels, query strings, repeated keys, JSON bodies), response
// and error parsing, SigV4 signing, the SDK paginator, and fault injection.
//
// Run by ctest as interop/sdk (run-sdk.sh); by hand:
//   IBSYNC_BIN=build/cmd/ibsync node --test tests/interop/emulator_sdk.test.js
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const ib = require('@aws-sdk/client-imagebuilder');
const { startEmulator } = require('./emulator');

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';
const PREFIX = `arn:aws:imagebuilder:${REGION}:${ACCOUNT}:`;
const AKID = 'AKIDEXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const COMPONENT_DOC = [
  'name: hello',
  'schemaVersion: 1.0',
  'phases:',
  '  - name: build',
  '    steps:',
  '      - name: Greet',
  '        action: ExecuteBash',
  '        inputs:',
  '          commands:',
  '            - echo hello',
  '',
].join('\n');

const WORKFLOW_DOC = 'name: wf\nschemaVersion: 1.0\nsteps: []\n';

let emu;
let client;

function makeClient(credentials, extra = {}) {
  return new ib.ImagebuilderClient({
    endpoint: emu.url,
    region: REGION,
    credentials,
    // One attempt: every error the emulator sends must reach the test as is.
    maxAttempts: 1,
    ...extra,
  });
}

function send(command) {
  return client.send(command);
}

// Resolves to the error a call fails with (fails the test if it succeeds).
async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('the call succeeded');
}

function assertAwsError(e, name, status) {
  assert.equal(e.name, name, `${e.name}: ${e.message}`);
  assert.equal(e.$metadata.httpStatusCode, status);
  assert.match(e.$metadata.requestId, UUID);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
}

async function adminFaults(settings) {
  const res = await fetch(`${emu.url}/_ibsync/faults`, {
    method: 'POST',
    body: JSON.stringify(settings),
  });
  assert.equal(res.status, 200);
  return res.json();
}

// Tag, read tags, untag one key, read again (TagResource's ARN is a URI
// label with '/' in it; UntagResource sends tagKeys as a repeated query key).
async function tagRoundTrip(arn) {
  await send(new ib.TagResourceCommand({ resourceArn: arn, tags: { team: 'core', env: 'dev' } }));
  let tags = await send(new ib.ListTagsForResourceCommand({ resourceArn: arn }));
  assert.deepEqual(tags.tags, { team: 'core', env: 'dev' });
  await send(new ib.UntagResourceCommand({ resourceArn: arn, tagKeys: ['env', 'absent'] }));
  tags = await send(new ib.ListTagsForResourceCommand({ resourceArn: arn }));
  assert.deepEqual(tags.tags, { team: 'core' });
  await send(new ib.UntagResourceCommand({ resourceArn: arn, tagKeys: ['team'] }));
  tags = await send(new ib.ListTagsForResourceCommand({ resourceArn: arn }));
  assert.deepEqual(tags.tags, {});
}

async function createComponent(name, version = '1.0.0', token = `c-${name}-${version}`) {
  const out = await send(new ib.CreateComponentCommand({
    name,
    semanticVersion: version,
    platform: 'Linux',
    data: COMPONENT_DOC,
    clientToken: token,
  }));
  return out.componentBuildVersionArn;
}

async function createRecipe(name, componentArn) {
  const out = await send(new ib.CreateImageRecipeCommand({
    name,
    semanticVersion: '1.0.0',
    parentImage: `arn:aws:imagebuilder:${REGION}:aws:image/amazon-linux-2-x86/x.x.x`,
    components: [{ componentArn }],
    blockDeviceMappings: [{ deviceName: '/dev/xvda', ebs: { volumeSize: 30, volumeType: 'gp3' } }],
    clientToken: `r-${name}`,
  }));
  return out.imageRecipeArn;
}

async function createInfra(name) {
  const out = await send(new ib.CreateInfrastructureConfigurationCommand({
    name,
    instanceProfileName: 'ib-role',
    instanceTypes: ['t3.micro'],
    clientToken: `i-${name}`,
  }));
  return out.infrastructureConfigurationArn;
}

before(async () => {
  emu = await startEmulator(['--credentials', `${AKID}:${SECRET}`, '--region', REGION]);
  client = makeClient({ accessKeyId: AKID, secretAccessKey: SECRET });
});

after(async () => {
  client?.destroy();
  if (emu) assert.equal(await emu.stop(), 0, emu.stderr());
});

test('component: create, get, list, tag, untag, delete', async () => {
  const created = await send(new ib.CreateComponentCommand({
    name: 'sdk-component',
    semanticVersion: '1.2.3',
    platform: 'Linux',
    description: 'made by the SDK',
    data: COMPONENT_DOC,
    clientToken: 'sdk-component-1',
  }));
  const arn = created.componentBuildVersionArn;
  assert.equal(arn, `${PREFIX}component/sdk-component/1.2.3/1`);
  assert.equal(created.clientToken, 'sdk-component-1');
  assert.match(created.requestId, UUID);
  // The body's requestId and the x-amzn-RequestId header are the same id.
  assert.equal(created.$metadata.requestId, created.requestId);
  assert.equal(created.$metadata.httpStatusCode, 200);

  const got = await send(new ib.GetComponentCommand({ componentBuildVersionArn: arn }));
  assert.equal(got.component.arn, arn);
  assert.equal(got.component.name, 'sdk-component');
  assert.equal(got.component.version, '1.2.3');
  assert.equal(got.component.description, 'made by the SDK');
  assert.equal(got.component.type, 'BUILD');
  assert.equal(got.component.data, COMPONENT_DOC);

  const listed = await send(new ib.ListComponentsCommand({
    filters: [{ name: 'name', values: ['sdk-component'] }],
  }));
  assert.equal(listed.componentVersionList.length, 1);
  assert.equal(listed.componentVersionList[0].arn, `${PREFIX}component/sdk-component/1.2.3`);
  const builds = await send(new ib.ListComponentBuildVersionsCommand({
    componentVersionArn: `${PREFIX}component/sdk-component/1.2.3`,
  }));
  assert.deepEqual(builds.componentSummaryList.map((c) => c.arn), [arn]);

  await tagRoundTrip(arn);
  const deleted = await send(new ib.DeleteComponentCommand({ componentBuildVersionArn: arn }));
  assert.equal(deleted.componentBuildVersionArn, arn);
  const e = await failure(send(new ib.GetComponentCommand({ componentBuildVersionArn: arn })));
  assertAwsError(e, 'ResourceNotFoundException', 404);
  assert.ok(e instanceof ib.ResourceNotFoundException);
});

test('workflow: create, get, list, tag, untag, delete', async () => {
  const created = await send(new ib.CreateWorkflowCommand({
    name: 'sdk-workflow',
    semanticVersion: '1.0.0',
    type: 'BUILD',
    data: WORKFLOW_DOC,
    clientToken: 'sdk-workflow-1',
  }));
  const arn = created.workflowBuildVersionArn;
  assert.equal(arn, `${PREFIX}workflow/build/sdk-workflow/1.0.0/1`);
  const got = await send(new ib.GetWorkflowCommand({ workflowBuildVersionArn: arn }));
  assert.equal(got.workflow.name, 'sdk-workflow');
  assert.equal(got.workflow.type, 'BUILD');
  assert.equal(got.workflow.data, WORKFLOW_DOC);
  const listed = await send(new ib.ListWorkflowsCommand({}));
  assert.deepEqual(listed.workflowVersionList.map((w) => w.name), ['sdk-workflow']);
  await tagRoundTrip(arn);
  await send(new ib.DeleteWorkflowCommand({ workflowBuildVersionArn: arn }));
  const e = await failure(send(new ib.GetWorkflowCommand({ workflowBuildVersionArn: arn })));
  assertAwsError(e, 'ResourceNotFoundException', 404);
});

test('image recipe: create, get, list, tag, untag, delete; dependency errors', async () => {
  const comp = await createComponent('recipe-part');
  const arn = await createRecipe('sdk-recipe', comp);
  assert.equal(arn, `${PREFIX}image-recipe/sdk-recipe/1.0.0`);
  const got = await send(new ib.GetImageRecipeCommand({ imageRecipeArn: arn }));
  assert.equal(got.imageRecipe.components[0].componentArn, comp);
  assert.equal(got.imageRecipe.blockDeviceMappings[0].ebs.volumeSize, 30);
  assert.equal(got.imageRecipe.platform, 'Linux');
  const listed = await send(new ib.ListImageRecipesCommand({}));
  assert.deepEqual(listed.imageRecipeSummaryList.map((r) => r.arn), [arn]);
  await tagRoundTrip(arn);

  // A component that a recipe uses cannot be deleted.
  const e = await failure(send(new ib.DeleteComponentCommand({ componentBuildVersionArn: comp })));
  assertAwsError(e, 'ResourceDependencyException', 400);
  assert.ok(e instanceof ib.ResourceDependencyException);

  const dup = await failure(send(new ib.CreateImageRecipeCommand({
    name: 'sdk-recipe',
    semanticVersion: '1.0.0',
    parentImage: 'ami-0123456789abcdef0',
    components: [{ componentArn: comp }],
    clientToken: 'another-token',
  })));
  assertAwsError(dup, 'ResourceAlreadyExistsException', 400);

  await send(new ib.DeleteImageRecipeCommand({ imageRecipeArn: arn }));
  await send(new ib.DeleteComponentCommand({ componentBuildVersionArn: comp }));
  const gone = await failure(send(new ib.GetImageRecipeCommand({ imageRecipeArn: arn })));
  assertAwsError(gone, 'ResourceNotFoundException', 404);
});

test('container recipe: create, get, list, tag, untag, delete', async () => {
  const created = await send(new ib.CreateContainerRecipeCommand({
    containerType: 'DOCKER',
    name: 'sdk-container',
    semanticVersion: '2.0.0',
    components: [{ componentArn: `arn:aws:imagebuilder:${REGION}:aws:component/update-linux/x.x.x` }],
    parentImage: 'amazonlinux:latest',
    dockerfileTemplateData: 'FROM {{{ imagebuilder:parentImage }}}',
    targetRepository: { service: 'ECR', repositoryName: 'sdk-container' },
    clientToken: 'sdk-container-1',
  }));
  const arn = created.containerRecipeArn;
  assert.equal(arn, `${PREFIX}container-recipe/sdk-container/2.0.0`);
  const got = await send(new ib.GetContainerRecipeCommand({ containerRecipeArn: arn }));
  assert.equal(got.containerRecipe.containerType, 'DOCKER');
  assert.equal(got.containerRecipe.targetRepository.repositoryName, 'sdk-container');
  const listed = await send(new ib.ListContainerRecipesCommand({}));
  assert.deepEqual(listed.containerRecipeSummaryList.map((r) => r.arn), [arn]);
  await tagRoundTrip(arn);
  await send(new ib.DeleteContainerRecipeCommand({ containerRecipeArn: arn }));
  const e = await failure(send(new ib.GetContainerRecipeCommand({ containerRecipeArn: arn })));
  assertAwsError(e, 'ResourceNotFoundException', 404);
});

test('infrastructure configuration: create, get, list, update, tag, untag, delete', async () => {
  const arn = await createInfra('sdk-infra');
  assert.equal(arn, `${PREFIX}infrastructure-configuration/sdk-infra`);
  let got = await send(new ib.GetInfrastructureConfigurationCommand({
    infrastructureConfigurationArn: arn,
  }));
  assert.deepEqual(got.infrastructureConfiguration.instanceTypes, ['t3.micro']);
  assert.equal(got.infrastructureConfiguration.terminateInstanceOnFailure, true);
  const updated = await send(new ib.UpdateInfrastructureConfigurationCommand({
    infrastructureConfigurationArn: arn,
    instanceProfileName: 'other-role',
    terminateInstanceOnFailure: false,
    clientToken: 'sdk-infra-update',
  }));
  assert.equal(updated.infrastructureConfigurationArn, arn);
  got = await send(new ib.GetInfrastructureConfigurationCommand({
    infrastructureConfigurationArn: arn,
  }));
  assert.equal(got.infrastructureConfiguration.instanceProfileName, 'other-role');
  assert.equal(got.infrastructureConfiguration.terminateInstanceOnFailure, false);
  assert.equal(got.infrastructureConfiguration.instanceTypes, undefined);
  assert.ok(got.infrastructureConfiguration.dateUpdated);
  const listed = await send(new ib.ListInfrastructureConfigurationsCommand({}));
  assert.deepEqual(listed.infrastructureConfigurationSummaryList.map((i) => i.arn), [arn]);
  await tagRoundTrip(arn);
  await send(new ib.DeleteInfrastructureConfigurationCommand({
    infrastructureConfigurationArn: arn,
  }));
  const e = await failure(send(new ib.GetInfrastructureConfigurationCommand({
    infrastructureConfigurationArn: arn,
  })));
  assertAwsError(e, 'ResourceNotFoundException', 404);
});

test('distribution configuration: create, get, list, update, tag, untag, delete', async () => {
  const created = await send(new ib.CreateDistributionConfigurationCommand({
    name: 'sdk-dist',
    distributions: [
      { region: 'us-east-1', amiDistributionConfiguration: { name: 'golden-{{ imagebuilder:buildDate }}' } },
      { region: 'eu-west-1', amiDistributionConfiguration: {} },
    ],
    clientToken: 'sdk-dist-1',
  }));
  const arn = created.distributionConfigurationArn;
  assert.equal(arn, `${PREFIX}distribution-configuration/sdk-dist`);
  let got = await send(new ib.GetDistributionConfigurationCommand({
    distributionConfigurationArn: arn,
  }));
  assert.deepEqual(got.distributionConfiguration.distributions.map((d) => d.region),
    ['us-east-1', 'eu-west-1']);
  await send(new ib.UpdateDistributionConfigurationCommand({
    distributionConfigurationArn: arn,
    description: 'one region',
    distributions: [{ region: 'us-west-2', amiDistributionConfiguration: {} }],
    clientToken: 'sdk-dist-2',
  }));
  got = await send(new ib.GetDistributionConfigurationCommand({
    distributionConfigurationArn: arn,
  }));
  assert.equal(got.distributionConfiguration.description, 'one region');
  assert.deepEqual(got.distributionConfiguration.distributions.map((d) => d.region), ['us-west-2']);
  const listed = await send(new ib.ListDistributionConfigurationsCommand({}));
  assert.deepEqual(listed.distributionConfigurationSummaryList[0].regions, ['us-west-2']);
  await tagRoundTrip(arn);
  await send(new ib.DeleteDistributionConfigurationCommand({ distributionConfigurationArn: arn }));
  const e = await failure(send(new ib.GetDistributionConfigurationCommand({
    distributionConfigurationArn: arn,
  })));
  assertAwsError(e, 'ResourceNotFoundException', 404);
});

test('image pipeline: create, get, list, update, tag, untag, delete', async () => {
  const comp = await createComponent('pipeline-part');
  const recipe = await createRecipe('pipeline-recipe', comp);
  const infra = await createInfra('pipeline-infra');
  const created = await send(new ib.CreateImagePipelineCommand({
    name: 'sdk-pipeline',
    imageRecipeArn: recipe,
    infrastructureConfigurationArn: infra,
    schedule: { scheduleExpression: 'cron(0 0 * * ? *)' },
    clientToken: 'sdk-pipeline-1',
  }));
  const arn = created.imagePipelineArn;
  assert.equal(arn, `${PREFIX}image-pipeline/sdk-pipeline`);
  let got = await send(new ib.GetImagePipelineCommand({ imagePipelineArn: arn }));
  assert.equal(got.imagePipeline.status, 'ENABLED');
  assert.equal(got.imagePipeline.imageRecipeArn, recipe);
  assert.equal(got.imagePipeline.schedule.pipelineExecutionStartCondition,
    'EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE');
  await send(new ib.UpdateImagePipelineCommand({
    imagePipelineArn: arn,
    imageRecipeArn: recipe,
    infrastructureConfigurationArn: infra,
    status: 'DISABLED',
    clientToken: 'sdk-pipeline-2',
  }));
  got = await send(new ib.GetImagePipelineCommand({ imagePipelineArn: arn }));
  assert.equal(got.imagePipeline.status, 'DISABLED');
  assert.equal(got.imagePipeline.schedule, undefined);
  const listed = await send(new ib.ListImagePipelinesCommand({
    filters: [{ name: 'status', values: ['DISABLED'] }],
  }));
  assert.deepEqual(listed.imagePipelineList.map((p) => p.arn), [arn]);
  await tagRoundTrip(arn);

  const e = await failure(send(new ib.DeleteInfrastructureConfigurationCommand({
    infrastructureConfigurationArn: infra,
  })));
  assertAwsError(e, 'ResourceDependencyException', 400);

  await send(new ib.DeleteImagePipelineCommand({ imagePipelineArn: arn }));
  const gone = await failure(send(new ib.GetImagePipelineCommand({ imagePipelineArn: arn })));
  assertAwsError(gone, 'ResourceNotFoundException', 404);
  await send(new ib.DeleteImageRecipeCommand({ imageRecipeArn: recipe }));
  await send(new ib.DeleteInfrastructureConfigurationCommand({
    infrastructureConfigurationArn: infra,
  }));
  await send(new ib.DeleteComponentCommand({ componentBuildVersionArn: comp }));
});

test('lifecycle policy: create, get, list, update, tag, untag, delete', async () => {
  const details = (count) => [{ action: { type: 'DELETE' }, filter: { type: 'COUNT', value: count } }];
  const created = await send(new ib.CreateLifecyclePolicyCommand({
    name: 'sdk-cleanup',
    executionRole: 'ib-lifecycle',
    resourceType: 'AMI_IMAGE',
    policyDetails: details(5),
    resourceSelection: { tagMap: { env: 'dev' } },
    clientToken: 'sdk-lp-1',
  }));
  const arn = created.lifecyclePolicyArn;
  assert.equal(arn, `${PREFIX}lifecycle-policy/sdk-cleanup`);
  let got = await send(new ib.GetLifecyclePolicyCommand({ lifecyclePolicyArn: arn }));
  assert.equal(got.lifecyclePolicy.status, 'ENABLED');
  assert.equal(got.lifecyclePolicy.policyDetails[0].filter.value, 5);
  // A timestamp member: the SDK turns the epoch seconds into a Date.
  assert.ok(got.lifecyclePolicy.dateCreated instanceof Date);
  assert.ok(Math.abs(got.lifecyclePolicy.dateCreated.getTime() - Date.now()) < 600000);
  await send(new ib.UpdateLifecyclePolicyCommand({
    lifecyclePolicyArn: arn,
    status: 'DISABLED',
    executionRole: 'ib-lifecycle',
    resourceType: 'AMI_IMAGE',
    policyDetails: details(3),
    resourceSelection: { tagMap: { env: 'dev' } },
    clientToken: 'sdk-lp-2',
  }));
  got = await send(new ib.GetLifecyclePolicyCommand({ lifecyclePolicyArn: arn }));
  assert.equal(got.lifecyclePolicy.status, 'DISABLED');
  assert.equal(got.lifecyclePolicy.policyDetails[0].filter.value, 3);
  const listed = await send(new ib.ListLifecyclePoliciesCommand({}));
  assert.deepEqual(listed.lifecyclePolicySummaryList.map((p) => p.arn), [arn]);
  await tagRoundTrip(arn);
  await send(new ib.DeleteLifecyclePolicyCommand({ lifecyclePolicyArn: arn }));
  const e = await failure(send(new ib.GetLifecyclePolicyCommand({ lifecyclePolicyArn: arn })));
  assertAwsError(e, 'ResourceNotFoundException', 404);
});

test('pagination: paginateListComponents over 63 components, 25 per page', async () => {
  const names = [];
  for (let i = 0; i < 63; i++) {
    names.push(`page-${String(i).padStart(3, '0')}`);
    await createComponent(names[i]);
  }
  const pages = [];
  // Earlier tests delete what they create: these are all the components.
  const paginator = ib.paginateListComponents({ client, pageSize: 25 }, {});
  for await (const page of paginator) pages.push(page);
  assert.deepEqual(pages.map((p) => p.componentVersionList.length), [25, 25, 13]);
  assert.ok(pages[0].nextToken && pages[1].nextToken);
  assert.equal(pages[2].nextToken, undefined);
  const seen = pages.flatMap((p) => p.componentVersionList.map((c) => c.name));
  assert.deepEqual(seen, names);

  const bad = await failure(send(new ib.ListComponentsCommand({ maxResults: 26 })));
  assertAwsError(bad, 'InvalidRequestException', 400);
  assert.match(bad.message, /maxResults/);
  const forged = await failure(send(new ib.ListComponentsCommand({ nextToken: 'forged-token' })));
  assertAwsError(forged, 'InvalidPaginationTokenException', 400);

  for (const c of pages.flatMap((p) => p.componentVersionList)) {
    await send(new ib.DeleteComponentCommand({ componentBuildVersionArn: `${c.arn}/1` }));
  }
});

test('idempotency: same clientToken replays, different parameters mismatch', async () => {
  const input = {
    name: 'idem-infra',
    instanceProfileName: 'ib-role',
    clientToken: 'idem-token-1',
  };
  const first = await send(new ib.CreateInfrastructureConfigurationCommand(input));
  const second = await send(new ib.CreateInfrastructureConfigurationCommand(input));
  assert.equal(second.infrastructureConfigurationArn, first.infrastructureConfigurationArn);
  assert.notEqual(second.requestId, first.requestId);
  const listed = await send(new ib.ListInfrastructureConfigurationsCommand({
    filters: [{ name: 'name', values: ['idem-infra'] }],
  }));
  assert.equal(listed.infrastructureConfigurationSummaryList.length, 1);

  const e = await failure(send(new ib.CreateInfrastructureConfigurationCommand({
    ...input,
    instanceProfileName: 'another-role',
  })));
  assertAwsError(e, 'IdempotentParameterMismatchException', 400);
  assert.ok(e instanceof ib.IdempotentParameterMismatchException);

  // The SDK fills in a clientToken itself when none is given.
  const auto = await send(new ib.CreateInfrastructureConfigurationCommand({
    name: 'idem-auto',
    instanceProfileName: 'ib-role',
  }));
  assert.match(auto.clientToken, UUID);
  await send(new ib.DeleteInfrastructureConfigurationCommand({
    infrastructureConfigurationArn: first.infrastructureConfigurationArn,
  }));
  await send(new ib.DeleteInfrastructureConfigurationCommand({
    infrastructureConfigurationArn: auto.infrastructureConfigurationArn,
  }));
});

test('not found: each error with the status of the API reference', async () => {
  const cases = [
    new ib.GetComponentCommand({ componentBuildVersionArn: `${PREFIX}component/ghost/1.0.0/1` }),
    new ib.DeleteImagePipelineCommand({ imagePipelineArn: `${PREFIX}image-pipeline/ghost` }),
    new ib.ListTagsForResourceCommand({ resourceArn: `${PREFIX}image-recipe/ghost/1.0.0` }),
    new ib.TagResourceCommand({ resourceArn: `${PREFIX}lifecycle-policy/ghost`, tags: { a: 'b' } }),
  ];
  for (const command of cases) {
    const e = await failure(send(command));
    assertAwsError(e, 'ResourceNotFoundException', 404);
    assert.match(e.message, /ghost/);
  }
  const invalid = await failure(send(new ib.GetComponentCommand({
    componentBuildVersionArn: 'not-an-arn',
  })));
  assertAwsError(invalid, 'InvalidRequestException', 400);
  assert.match(invalid.message, /componentBuildVersionArn/);
});

test('signatures: a wrong secret, an unknown key and no signature are rejected', async () => {
  const wrong = makeClient({ accessKeyId: AKID, secretAccessKey: 'not-the-secret' });
  const unknown = makeClient({ accessKeyId: 'AKIDUNKNOWN', secretAccessKey: SECRET });
  try {
    let e = await failure(wrong.send(new ib.ListComponentsCommand({})));
    assertAwsError(e, 'InvalidSignatureException', 403);
    e = await failure(unknown.send(new ib.ListComponentsCommand({})));
    assertAwsError(e, 'UnrecognizedClientException', 403);
  } finally {
    wrong.destroy();
    unknown.destroy();
  }
  const res = await fetch(`${emu.url}/ListComponents`, { method: 'POST', body: '{}' });
  assert.equal(res.status, 403);
  assert.equal(res.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException');
  assert.match(res.headers.get('x-amzn-requestid'), UUID);
  assert.equal(typeof (await res.json()).message, 'string');
});

test('faults: the SDK sees injected throttling, errors and drops as the service\'s', async () => {
  try {
    await adminFaults({ throttleRate: 1 });
    let e = await failure(send(new ib.ListComponentsCommand({})));
    assertAwsError(e, 'CallRateLimitExceededException', 429);

    await adminFaults({ throttleRate: 0, errorRate: 1, seed: 42 });
    const seen = new Set();
    for (let i = 0; i < 12; i++) {
      e = await failure(send(new ib.ListComponentsCommand({})));
      seen.add(`${e.name}/${e.$metadata.httpStatusCode}`);
    }
    assert.deepEqual([...seen].sort(),
      ['ServiceException/500', 'ServiceUnavailableException/503']);

    // A dropped answer is a network error for the SDK, but the call was
    // executed: a retry with the same clientToken gets the original ARN.
    await adminFaults({ errorRate: 0, dropRate: 1 });
    const input = { name: 'dropped-infra', instanceProfileName: 'ib-role', clientToken: 'drop-1' };
    e = await failure(send(new ib.CreateInfrastructureConfigurationCommand(input)));
    assert.equal(e.$metadata?.httpStatusCode, undefined);
    assert.match(`${e.code} ${e.message}`, /ECONNRESET|socket hang up|EPIPE/);
    await adminFaults({ dropRate: 0 });
    const retried = await send(new ib.CreateInfrastructureConfigurationCommand(input));
    assert.equal(retried.infrastructureConfigurationArn,
      `${PREFIX}infrastructure-configuration/dropped-infra`);
    const listed = await send(new ib.ListInfrastructureConfigurationsCommand({
      filters: [{ name: 'name', values: ['dropped-infra'] }],
    }));
    assert.equal(listed.infrastructureConfigurationSummaryList.length, 1);

    // With retries on, the SDK rides out throttling on its own.
    await adminFaults({ throttleRate: 0.5, seed: 7 });
    const patient = makeClient({ accessKeyId: AKID, secretAccessKey: SECRET }, {
      maxAttempts: 10,
      retryMode: 'standard',
    });
    try {
      for (let i = 0; i < 3; i++) {
        const out = await patient.send(new ib.ListInfrastructureConfigurationsCommand({}));
        assert.equal(out.$metadata.httpStatusCode, 200);
      }
    } finally {
      patient.destroy();
    }
  } finally {
    await adminFaults({ throttleRate: 0, errorRate: 0, dropRate: 0, latencyMs: 0 });
  }
});
