// Tests of the iam-eval CLI: the IAM semantics the replay test relies on, evaluated by the real library, and the
// stdin/stdout/exit-code contract of the CLI itself. Run: `npm test` in this folder (or `node --test test.mjs`).

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { evaluateBatch } from './evaluate.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const CLI = join(HERE, 'evaluate.mjs')
const ACCOUNT = '123456789012'
const ROLE = `arn:aws:iam::${ACCOUNT}:role/studio-ops-train-on-push`
const JOB = (name, region = 'us-east-1') => `arn:aws:sagemaker:${region}:${ACCOUNT}:training-job/${name}`

const policy = (...Statement) => ({ Version: '2012-10-17', Statement })

/** Evaluates one request in-process and returns its result. */
async function evalOne(request, extra = {}) {
  const { results } = await evaluateBatch({ requests: [{ id: 't', principal: ROLE, ...request }], ...extra })
  assert.equal(results.length, 1)
  assert.deepEqual(results[0].errors, [], `unexpected errors: ${JSON.stringify(results[0].errors)}`)
  return results[0]
}

/** Evaluates `request` with identity policy `doc` (named "p") and returns the decision. */
async function decide(doc, request) {
  return (await evalOne({ identityPolicies: [{ name: 'p', document: doc }], ...request })).decision
}

function runCli(stdin) {
  return spawnSync(process.execPath, [CLI], { input: stdin, encoding: 'utf8' })
}

test('Allow by action wildcard sagemaker:Describe* and ARN wildcard', async () => {
  const doc = policy({
    Sid: 'DescribeJobs',
    Effect: 'Allow',
    Action: 'sagemaker:Describe*',
    Resource: `arn:aws:sagemaker:us-east-1:${ACCOUNT}:training-job/churn-*`
  })
  const r = await evalOne({
    action: 'sagemaker:DescribeTrainingJob',
    resource: JOB('churn-xgboost-8434f27'),
    identityPolicies: [{ name: 'describe', document: doc }]
  })
  assert.equal(r.decision, 'Allowed')
  assert.deepEqual(r.matchedStatements, [{ policy: 'describe', sid: 'DescribeJobs', index: 1, effect: 'Allow' }])
  assert.equal(r.nearest, null)
  // The action wildcard does not reach other verbs.
  assert.equal(await decide(doc, { action: 'sagemaker:StopTrainingJob', resource: JOB('churn-xgboost-8434f27') }), 'ImplicitlyDenied')
})

test('implicit deny for a resource outside the ARN pattern, with the nearest statement and why', async () => {
  const doc = policy({
    Sid: 'DescribeJobs',
    Effect: 'Allow',
    Action: 'sagemaker:Describe*',
    Resource: `arn:aws:sagemaker:us-east-1:${ACCOUNT}:training-job/churn-*`
  })
  for (const resource of [JOB('sales-arima-1'), JOB('churn-xgboost-1', 'eu-west-1')]) {
    const r = await evalOne({ action: 'sagemaker:DescribeTrainingJob', resource, identityPolicies: [{ name: 'p', document: doc }] })
    assert.equal(r.decision, 'ImplicitlyDenied', resource)
    assert.deepEqual(r.matchedStatements, [])
    assert.equal(r.nearest.sid, 'DescribeJobs')
    assert.equal(r.nearest.policy, 'p')
    assert.match(r.nearest.why, /^action matched but resource\/condition did not: Resource .*training-job\/churn-\* does not match/)
  }
})

test('explicit Deny beats Allow', async () => {
  const allow = policy({ Sid: 'AllowAll', Effect: 'Allow', Action: 'sagemaker:*', Resource: '*' })
  const deny = policy({
    Sid: 'NoGpuTraining',
    Effect: 'Deny',
    Action: 'sagemaker:CreateTrainingJob',
    Resource: '*',
    Condition: { 'ForAnyValue:StringLike': { 'sagemaker:InstanceTypes': ['ml.p4*', 'ml.p5*'] } }
  })
  const request = {
    action: 'sagemaker:CreateTrainingJob',
    resource: JOB('sales-arima-fa85d10'),
    identityPolicies: [
      { name: 'allow', document: allow },
      { name: 'guardrail', document: deny }
    ]
  }
  const gpu = await evalOne({ ...request, context: { 'sagemaker:InstanceTypes': ['ml.p4d.24xlarge'] } })
  assert.equal(gpu.decision, 'ExplicitlyDenied')
  assert.deepEqual(
    gpu.matchedStatements.map((s) => `${s.policy}/${s.sid}/${s.effect}`).sort(),
    ['allow/AllowAll/Allow', 'guardrail/NoGpuTraining/Deny']
  )
  assert.equal(gpu.nearest.sid, 'NoGpuTraining')
  assert.match(gpu.nearest.why, /^explicit Deny/)
  const cpu = await evalOne({ ...request, context: { 'sagemaker:InstanceTypes': ['ml.m5.large'] } })
  assert.equal(cpu.decision, 'Allowed')
})

test('ForAllValues:StringEquals: true when the key is absent; a Null guard closes that gap', async () => {
  const statement = {
    Sid: 'TrainInOurSubnets',
    Effect: 'Allow',
    Action: 'sagemaker:CreateTrainingJob',
    Resource: JOB('*'),
    Condition: { 'ForAllValues:StringEquals': { 'sagemaker:VpcSubnets': ['subnet-a', 'subnet-b'] } }
  }
  const unguarded = policy(statement)
  const guarded = policy({
    ...statement,
    Condition: { ...statement.Condition, Null: { 'sagemaker:VpcSubnets': 'false' } }
  })
  const req = (context) => ({ action: 'sagemaker:CreateTrainingJob', resource: JOB('churn-1'), context })

  assert.equal(await decide(unguarded, req({ 'sagemaker:VpcSubnets': ['subnet-a'] })), 'Allowed')
  assert.equal(await decide(unguarded, req({ 'sagemaker:VpcSubnets': ['subnet-a', 'subnet-b'] })), 'Allowed')
  assert.equal(await decide(unguarded, req({ 'sagemaker:VpcSubnets': ['subnet-a', 'subnet-evil'] })), 'ImplicitlyDenied')
  // The trap: a job without any VPC config satisfies ForAllValues vacuously.
  assert.equal(await decide(unguarded, req({})), 'Allowed')

  assert.equal(await decide(guarded, req({ 'sagemaker:VpcSubnets': ['subnet-b'] })), 'Allowed')
  const missing = await evalOne({ ...req({}), identityPolicies: [{ name: 'p', document: guarded }] })
  assert.equal(missing.decision, 'ImplicitlyDenied')
  assert.match(missing.nearest.why, /Condition Null sagemaker:VpcSubnets: key absent from the request/)
})

test('ForAnyValue:StringLike on aws:TagKeys', async () => {
  const doc = policy({
    Sid: 'TaggedJobsOnly',
    Effect: 'Allow',
    Action: 'sagemaker:CreateTrainingJob',
    Resource: JOB('*'),
    Condition: { 'ForAnyValue:StringLike': { 'aws:TagKeys': ['studio-ops:*'] } }
  })
  const req = (context) => ({ action: 'sagemaker:CreateTrainingJob', resource: JOB('churn-1'), context })
  assert.equal(await decide(doc, req({ 'aws:TagKeys': ['owner', 'studio-ops:model'] })), 'Allowed')
  assert.equal(await decide(doc, req({ 'aws:TagKeys': ['owner'] })), 'ImplicitlyDenied')
  // ForAnyValue over an absent key is false.
  assert.equal(await decide(doc, req({})), 'ImplicitlyDenied')
})

test('NumericLessThanEquals on sagemaker:MaxRuntimeInSeconds (numbers given as strings)', async () => {
  const doc = policy({
    Sid: 'AtMostOneDay',
    Effect: 'Allow',
    Action: 'sagemaker:CreateTrainingJob',
    Resource: JOB('*'),
    Condition: { NumericLessThanEquals: { 'sagemaker:MaxRuntimeInSeconds': '86400' } }
  })
  const req = (v) => ({ action: 'sagemaker:CreateTrainingJob', resource: JOB('churn-1'), context: v === undefined ? {} : { 'sagemaker:MaxRuntimeInSeconds': v } })
  assert.equal(await decide(doc, req('3600')), 'Allowed')
  assert.equal(await decide(doc, req('86400')), 'Allowed')
  assert.equal(await decide(doc, req('86401')), 'ImplicitlyDenied')
  assert.equal(await decide(doc, req(undefined)), 'ImplicitlyDenied')
})

test('StringEquals on iam:PassedToService (an iam:PassRole request), and the key is dropped for other actions', async () => {
  const doc = policy({
    Sid: 'PassTrainingRole',
    Effect: 'Allow',
    Action: 'iam:PassRole',
    Resource: `arn:aws:iam::${ACCOUNT}:role/studio-ops-training`,
    Condition: { StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } }
  })
  const pass = (service) => ({
    action: 'iam:PassRole',
    resource: `arn:aws:iam::${ACCOUNT}:role/studio-ops-training`,
    context: { 'iam:PassedToService': service }
  })
  assert.equal(await decide(doc, pass('sagemaker.amazonaws.com')), 'Allowed')
  assert.equal(await decide(doc, pass('lambda.amazonaws.com')), 'ImplicitlyDenied')
  assert.equal(
    await decide(doc, { ...pass('sagemaker.amazonaws.com'), resource: `arn:aws:iam::${ACCOUNT}:role/admin` }),
    'ImplicitlyDenied'
  )
  // iam:PassedToService belongs to iam:PassRole: on sagemaker:CreateTrainingJob the library drops it and says so.
  const r = await evalOne({
    action: 'sagemaker:CreateTrainingJob',
    resource: JOB('churn-1'),
    context: { 'iam:PassedToService': 'sagemaker.amazonaws.com' },
    identityPolicies: [{ name: 'p', document: policy({ Effect: 'Allow', Action: 'sagemaker:CreateTrainingJob', Resource: '*' }) }]
  })
  assert.equal(r.decision, 'Allowed')
  assert.match(r.warnings.join('\n'), /iam:PassedToService does not apply to sagemaker:CreateTrainingJob/)
  assert.equal(r.matchedStatements[0].sid, null, 'a statement without Sid is reported with sid null and its index')
  assert.equal(r.matchedStatements[0].index, 1)
})

test('ArnLike on an ARN condition key (sagemaker:VolumeKmsKeyArn)', async () => {
  const doc = policy({
    Sid: 'OurKeysOnly',
    Effect: 'Allow',
    Action: 'sagemaker:CreateTrainingJob',
    Resource: JOB('*'),
    Condition: { ArnLike: { 'sagemaker:VolumeKmsKeyArn': `arn:aws:kms:*:${ACCOUNT}:key/*` } }
  })
  const req = (key) => ({ action: 'sagemaker:CreateTrainingJob', resource: JOB('churn-1'), context: { 'sagemaker:VolumeKmsKeyArn': key } })
  assert.equal(await decide(doc, req(`arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`)), 'Allowed')
  assert.equal(await decide(doc, req('arn:aws:kms:us-east-1:999999999999:key/1234abcd-12ab-34cd-56ef-1234567890ab')), 'ImplicitlyDenied')
  assert.equal(await decide(doc, req(`arn:aws:kms:us-east-1:${ACCOUNT}:alias/aws/sagemaker`)), 'ImplicitlyDenied')
})

test('dynamodb:LeadingKeys with ForAllValues:StringLike', async () => {
  const table = `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/studio-ops-idempotency`
  const doc = policy({
    Sid: 'OwnPartitionsOnly',
    Effect: 'Allow',
    Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
    Resource: table,
    Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['train-on-push#*'] } }
  })
  const req = (keys) => ({ action: 'dynamodb:PutItem', resource: table, context: { 'dynamodb:LeadingKeys': keys } })
  assert.equal(await decide(doc, req(['train-on-push#8434f27/churn-xgboost'])), 'Allowed')
  assert.equal(await decide(doc, req(['notify#c5a83f29'])), 'ImplicitlyDenied')
  assert.equal(await decide(doc, req(['train-on-push#1', 'notify#2'])), 'ImplicitlyDenied')
  assert.equal(await decide(doc, { action: 'dynamodb:DeleteItem', resource: table, context: { 'dynamodb:LeadingKeys': ['train-on-push#1'] } }), 'ImplicitlyDenied')
})

test('policy variable ${aws:SourceIdentity} in a Resource is resolved from the request context', async () => {
  const doc = policy({
    Sid: 'OwnProfileOnly',
    Effect: 'Allow',
    Action: 'sagemaker:CreatePresignedDomainUrl',
    Resource: `arn:aws:sagemaker:us-east-1:${ACCOUNT}:user-profile/d-studioops0001/\${aws:SourceIdentity}`
  })
  const req = (profile, context) => ({
    action: 'sagemaker:CreatePresignedDomainUrl',
    resource: `arn:aws:sagemaker:us-east-1:${ACCOUNT}:user-profile/d-studioops0001/${profile}`,
    context
  })
  assert.equal(await decide(doc, req('ana-silva-example-com', { 'aws:SourceIdentity': 'ana-silva-example-com' })), 'Allowed')
  assert.equal(await decide(doc, req('li-wei-example-com', { 'aws:SourceIdentity': 'ana-silva-example-com' })), 'ImplicitlyDenied')
  const absent = await evalOne({ ...req('ana-silva-example-com', {}), identityPolicies: [{ name: 'p', document: doc }] })
  assert.equal(absent.decision, 'ImplicitlyDenied', 'an unresolvable variable never matches')
  assert.match(absent.nearest.why, /unresolvablePolicyVariable/)
})

test('aws:PrincipalArn, aws:PrincipalAccount and aws:PrincipalType follow from the principal unless given or turned off', async () => {
  const doc = policy({
    Sid: 'OwnAccountRole',
    Effect: 'Allow',
    Action: 'sagemaker:DescribeTrainingJob',
    Resource: '*',
    Condition: {
      StringEquals: { 'aws:PrincipalAccount': ACCOUNT, 'aws:PrincipalType': 'AssumedRole' },
      ArnLike: { 'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:role/studio-ops-*` }
    }
  })
  const req = { action: 'sagemaker:DescribeTrainingJob', resource: JOB('a') }
  assert.equal(await decide(doc, req), 'Allowed')
  assert.equal(await decide(doc, { ...req, principal: `arn:aws:sts::${ACCOUNT}:assumed-role/studio-ops-notify/1700000000` }), 'Allowed')
  assert.equal(await decide(doc, { ...req, principal: `arn:aws:iam::${ACCOUNT}:role/admin` }), 'ImplicitlyDenied')
  assert.equal(await decide(doc, { ...req, context: { 'aws:PrincipalAccount': '999999999999' } }), 'ImplicitlyDenied', 'given keys win')
  assert.equal(await decide(doc, { ...req, autoContext: false }), 'ImplicitlyDenied')
})

test('a resource policy alone grants a same-account principal', async () => {
  const bucket = 'arn:aws:s3:::studio-ops-artifacts'
  const r = await evalOne({
    action: 's3:GetObject',
    resource: `${bucket}/models/churn-xgboost/model.tar.gz`,
    resourceAccount: ACCOUNT,
    identityPolicies: [],
    resourcePolicy: policy({ Sid: 'TrainRoleReads', Effect: 'Allow', Principal: { AWS: ROLE }, Action: 's3:GetObject', Resource: `${bucket}/*` })
  })
  assert.equal(r.decision, 'Allowed')
  assert.deepEqual(r.matchedStatements, [{ policy: 'resourcePolicy', sid: 'TrainRoleReads', index: 1, effect: 'Allow' }])
})

test('checkConditionKeys flags conditions on keys the action does not support; the library drops such context keys', async () => {
  const doc = policy(
    {
      Sid: 'DescribeIfSmall',
      Effect: 'Allow',
      Action: 'sagemaker:DescribeTrainingJob',
      Resource: '*',
      Condition: { 'ForAllValues:StringLike': { 'sagemaker:InstanceTypes': ['ml.m5.*'] }, StringEquals: { 'aws:RequestedRegion': 'us-east-1' } }
    },
    {
      Sid: 'TrainSmall',
      Effect: 'Allow',
      Action: 'sagemaker:CreateTrainingJob',
      Resource: '*',
      Condition: { 'ForAllValues:StringLike': { 'sagemaker:InstanceTypes': ['ml.m5.*'] } }
    }
  )
  const describe = {
    action: 'sagemaker:DescribeTrainingJob',
    resource: JOB('churn-1'),
    context: { 'sagemaker:InstanceTypes': ['ml.p4d.24xlarge'], 'aws:RequestedRegion': 'us-east-1' },
    identityPolicies: [{ name: 'p', document: doc }]
  }
  const r = await evalOne({ ...describe, checkConditionKeys: true })
  // DescribeTrainingJob never carries sagemaker:InstanceTypes, so the ForAllValues condition is vacuously true even
  // though the caller put a GPU type into the context: IAM (and the library) ignore that key for this action.
  assert.equal(r.decision, 'Allowed')
  assert.match(r.warnings.join('\n'), /sagemaker:InstanceTypes does not apply to sagemaker:DescribeTrainingJob/)
  assert.deepEqual(
    r.unsupportedConditionKeys.map((f) => `${f.sid} ${f.operator} ${f.key}`),
    ['DescribeIfSmall ForAllValues:StringLike sagemaker:InstanceTypes'],
    'only statements whose action matches are checked; global keys and supported keys are not flagged'
  )
  // The batch-level switch works too, and a request can turn it off again.
  const { results } = await evaluateBatch({
    checkConditionKeys: true,
    requests: [
      { id: 'a', principal: ROLE, ...describe },
      { id: 'b', principal: ROLE, ...describe, checkConditionKeys: false },
      { id: 'c', principal: ROLE, ...describe, action: 'sagemaker:CreateTrainingJob', context: { 'sagemaker:InstanceTypes': ['ml.p4d.24xlarge'] } }
    ]
  })
  assert.equal(results[0].unsupportedConditionKeys.length, 1)
  assert.equal(results[1].unsupportedConditionKeys, undefined)
  assert.deepEqual(results[2].unsupportedConditionKeys, [])
  assert.equal(results[2].decision, 'ImplicitlyDenied')
  // Without the switch the field is absent.
  assert.equal((await evalOne(describe)).unsupportedConditionKeys, undefined)

  // A real trap: sagemaker:VolumeKmsKey is deprecated; CreateTrainingJob only sends sagemaker:VolumeKmsKeyArn. To
  // CreateTrainingJob the old key is always absent, and a negated operator matches an absent key: this Deny, meant
  // to block foreign KMS keys, blocks every training job, even one that uses our own key.
  const old = await evalOne({
    action: 'sagemaker:CreateTrainingJob',
    resource: JOB('churn-1'),
    context: { 'sagemaker:VolumeKmsKeyArn': `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab` },
    identityPolicies: [
      {
        name: 'p',
        document: policy(
          { Sid: 'Train', Effect: 'Allow', Action: 'sagemaker:CreateTrainingJob', Resource: '*' },
          { Sid: 'OurKeysOnly', Effect: 'Deny', Action: 'sagemaker:CreateTrainingJob', Resource: '*', Condition: { ArnNotLike: { 'sagemaker:VolumeKmsKey': `arn:aws:kms:*:${ACCOUNT}:key/*` } } }
        )
      }
    ],
    checkConditionKeys: true
  })
  assert.equal(old.decision, 'ExplicitlyDenied', 'the Deny on the deprecated key applies to every request')
  assert.equal(old.nearest.sid, 'OurKeysOnly')
  assert.deepEqual(old.unsupportedConditionKeys.map((f) => `${f.sid} ${f.effect} ${f.key}`), ['OurKeysOnly Deny sagemaker:VolumeKmsKey'])
})

test('requests the library cannot simulate get decision "Error" and say why', async () => {
  const { results } = await evaluateBatch({
    requests: [
      { id: 'typo', principal: ROLE, action: 'sagemaker:CreateTrainingJobs', resource: JOB('x'), identityPolicies: [] },
      { id: 'wrong-type', principal: ROLE, action: 'sagemaker:CreateTrainingJob', resource: `arn:aws:sagemaker:us-east-1:${ACCOUNT}:domain/d-1`, identityPolicies: [] },
      { id: 'bad-policy', principal: ROLE, action: 'sagemaker:CreateTrainingJob', resource: JOB('x'), identityPolicies: [{ name: 'p', document: { Statement: [{ Effect: 'Maybe', Action: '*', Resource: '*' }] } }] }
    ]
  })
  assert.deepEqual(results.map((r) => r.decision), ['Error', 'Error', 'Error'])
  assert.match(results[0].errors[0], /unknown action sagemaker:CreateTrainingJobs/)
  assert.match(results[1].errors[0], /is not a resource type that sagemaker:CreateTrainingJob acts on/)
  assert.match(results[2].errors[0], /invalid policy document/)
  assert.deepEqual(results[0].matchedStatements, [])
  assert.match(results[0].nearest.why, /^not evaluated: unknown action/)
})

test('CLI: one process, stdin to stdout, results in request order, exit 0', () => {
  const doc = policy({ Sid: 'D', Effect: 'Allow', Action: 'sagemaker:Describe*', Resource: '*' })
  const requests = ['sagemaker:DescribeTrainingJob', 'sagemaker:DeleteDomain'].map((action, i) => ({
    id: `req-${i}`,
    principal: ROLE,
    action,
    resource: i === 0 ? JOB('a') : `arn:aws:sagemaker:us-east-1:${ACCOUNT}:domain/d-1`,
    identityPolicies: [{ name: 'd', document: doc }]
  }))
  const p = runCli(JSON.stringify({ requests }))
  assert.equal(p.status, 0, p.stderr)
  const out = JSON.parse(p.stdout)
  assert.deepEqual(out.results.map((r) => [r.id, r.decision]), [['req-0', 'Allowed'], ['req-1', 'ImplicitlyDenied']])
  assert.equal(out.results[1].nearest.policy, null)
  assert.match(out.results[1].nearest.why, /no Allow statement's Action\/NotAction matches sagemaker:DeleteDomain/)
})

test('CLI: malformed input exits 2 with a message on stderr and nothing on stdout', () => {
  const cases = [
    ['not json', /stdin is not valid JSON/],
    ['[]', /input: must be a JSON object/],
    ['{}', /input.requests: must be an array/],
    [JSON.stringify({ requests: [{ id: 'a', principal: ROLE, action: 'sagemaker:DescribeTrainingJob' }] }), /requests\[0\]\.resource: must be a non-empty string/],
    [JSON.stringify({ requests: [{ id: 'a', principal: ROLE, action: 'x:y', resource: '*', context: { 'sagemaker:MaxRuntimeInSeconds': 3600 } }] }), /must be a string or an array of strings/],
    [JSON.stringify({ requests: [{ id: 'a', principal: ROLE, action: 'x:y', resource: '*', identityPolicies: [{ name: 'p' }] }] }), /identityPolicies\[0\]\.document/],
    [JSON.stringify({ requests: [{ id: 'a', principal: ROLE, action: 'x:y', resource: '*' }, { id: 'a', principal: ROLE, action: 'x:y', resource: '*' }] }), /ids must be unique/]
  ]
  for (const [stdin, message] of cases) {
    const p = runCli(stdin)
    assert.equal(p.status, 2, `exit code for ${stdin}`)
    assert.equal(p.stdout, '')
    assert.match(p.stderr, /^iam-eval: /)
    assert.match(p.stderr, message)
  }
})

test('CLI: 2,000 requests in one process take seconds', () => {
  const doc = policy(
    { Sid: 'Train', Effect: 'Allow', Action: 'sagemaker:CreateTrainingJob', Resource: JOB('*'), Condition: { 'ForAllValues:StringEquals': { 'sagemaker:VpcSubnets': ['subnet-a'] }, Null: { 'sagemaker:VpcSubnets': 'false' } } },
    { Sid: 'Describe', Effect: 'Allow', Action: 'sagemaker:Describe*', Resource: '*' },
    { Sid: 'NoGpu', Effect: 'Deny', Action: 'sagemaker:CreateTrainingJob', Resource: '*', Condition: { 'ForAnyValue:StringLike': { 'sagemaker:InstanceTypes': ['ml.p*'] } } }
  )
  const requests = Array.from({ length: 2000 }, (_, i) => ({
    id: `r${i}`,
    principal: ROLE,
    action: i % 2 ? 'sagemaker:CreateTrainingJob' : 'sagemaker:DescribeTrainingJob',
    resource: JOB(`job-${i}`),
    context: { 'sagemaker:VpcSubnets': ['subnet-a'], 'sagemaker:InstanceTypes': [i % 4 === 1 ? 'ml.p4d.24xlarge' : 'ml.m5.large'] },
    identityPolicies: [{ name: 'p', document: doc }]
  }))
  const started = Date.now()
  const p = runCli(JSON.stringify({ requests }))
  const seconds = (Date.now() - started) / 1000
  assert.equal(p.status, 0, p.stderr)
  const counts = {}
  for (const r of JSON.parse(p.stdout).results) counts[r.decision] = (counts[r.decision] ?? 0) + 1
  assert.deepEqual(counts, { Allowed: 1500, ExplicitlyDenied: 500 })
  console.log(`# 2000 requests evaluated in ${seconds.toFixed(2)} s`)
  assert.ok(seconds < 30, `2000 requests took ${seconds} s`)
})
