#!/usr/bin/env node
// studio-ops iam-eval: an offline IAM policy evaluator for the IAM replay test.
// Reads one JSON batch of requests on stdin, evaluates every request with @cloud-copilot/iam-simulate in this one
// process, writes one JSON document of results on stdout. Exit 0 when the input was well formed (whatever the
// decisions), exit 2 with a message on stderr when it was not. See README.md beside this file for the contract.

import { readFileSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { allowedContextKeysForRequest, runSimulation, typeForContextKey } from '@cloud-copilot/iam-simulate'
import { createValidatedPolicy, validateIdentityPolicy, validateResourcePolicy } from '@cloud-copilot/iam-policy'

export const RESOURCE_POLICY_NAME = 'resourcePolicy'

/** Thrown for input that does not follow the contract; the CLI turns it into exit 2. */
export class InputError extends Error {}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
const isString = (v) => typeof v === 'string'

/**
 * Checks the batch against the contract and throws an InputError naming the first offending path.
 *
 * @param input the parsed stdin document
 */
export function validateInput(input) {
  const fail = (path, what) => {
    throw new InputError(`${path}: ${what}`)
  }
  if (!isObject(input)) fail('input', 'must be a JSON object {"requests": [...]}')
  if (!Array.isArray(input.requests)) fail('input.requests', 'must be an array of requests')
  if (input.checkConditionKeys !== undefined && typeof input.checkConditionKeys !== 'boolean')
    fail('input.checkConditionKeys', 'must be true or false')
  const ids = new Set()
  input.requests.forEach((r, i) => {
    const at = `requests[${i}]`
    if (!isObject(r)) fail(at, 'must be an object')
    for (const field of ['id', 'principal', 'action', 'resource']) {
      if (!isString(r[field]) || r[field] === '') fail(`${at}.${field}`, 'must be a non-empty string')
    }
    if (ids.has(r.id)) fail(`${at}.id`, `"${r.id}" is used by an earlier request; ids must be unique`)
    ids.add(r.id)
    if (r.context !== undefined) {
      if (!isObject(r.context)) fail(`${at}.context`, 'must be an object of context keys')
      for (const [key, value] of Object.entries(r.context)) {
        const ok = isString(value) || (Array.isArray(value) && value.every(isString))
        if (!ok)
          fail(
            `${at}.context["${key}"]`,
            `must be a string or an array of strings (IAM context values are strings: write "3600" or "true", not 3600 or true); got ${JSON.stringify(value)}`
          )
      }
    }
    if (r.identityPolicies !== undefined && !Array.isArray(r.identityPolicies))
      fail(`${at}.identityPolicies`, 'must be an array of {"name", "document"}')
    const names = new Set()
    ;(r.identityPolicies ?? []).forEach((p, j) => {
      const pat = `${at}.identityPolicies[${j}]`
      if (!isObject(p)) fail(pat, 'must be an object {"name", "document"}')
      if (!isString(p.name) || p.name === '') fail(`${pat}.name`, 'must be a non-empty string')
      if (p.name === RESOURCE_POLICY_NAME) fail(`${pat}.name`, `"${RESOURCE_POLICY_NAME}" is reserved`)
      if (names.has(p.name)) fail(`${pat}.name`, `"${p.name}" repeats; policy names must be unique in a request`)
      names.add(p.name)
      if (!isObject(p.document)) fail(`${pat}.document`, 'must be an IAM policy document (a JSON object)')
    })
    if (r.resourcePolicy !== undefined && r.resourcePolicy !== null && !isObject(r.resourcePolicy))
      fail(`${at}.resourcePolicy`, 'must be an IAM policy document (a JSON object) or absent')
    if (r.resourceAccount !== undefined && !(isString(r.resourceAccount) && /^\d{12}$/.test(r.resourceAccount)))
      fail(`${at}.resourceAccount`, 'must be a 12-digit account id or absent')
    for (const flag of ['checkConditionKeys', 'autoContext']) {
      if (r[flag] !== undefined && typeof r[flag] !== 'boolean') fail(`${at}.${flag}`, 'must be true or false')
    }
  })
}

/**
 * The request-context keys IAM sets on every signed request and that follow from the principal ARN alone:
 * aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType. The library does not fill them in itself.
 * For an assumed-role session ARN the role ARN is rebuilt without its path (the session ARN does not carry it).
 */
export function principalContext(principal) {
  const m = /^arn:(aws[a-z-]*):(iam|sts)::(\d{12}):(.+)$/.exec(principal)
  if (!m) return {}
  const [, partition, service, account, rest] = m
  const out = { 'aws:PrincipalAccount': account }
  if (service === 'iam' && rest.startsWith('role/')) {
    Object.assign(out, { 'aws:PrincipalArn': principal, 'aws:PrincipalType': 'AssumedRole' })
  } else if (service === 'iam' && rest.startsWith('user/')) {
    Object.assign(out, { 'aws:PrincipalArn': principal, 'aws:PrincipalType': 'User' })
  } else if (service === 'iam' && rest === 'root') {
    Object.assign(out, { 'aws:PrincipalArn': principal, 'aws:PrincipalType': 'Account' })
  } else if (service === 'sts' && rest.startsWith('assumed-role/')) {
    const role = rest.split('/')[1]
    Object.assign(out, { 'aws:PrincipalArn': `arn:${partition}:iam::${account}:role/${role}`, 'aws:PrincipalType': 'AssumedRole' })
  }
  return out
}

/** The account field of an ARN, or undefined. */
function arnAccount(arn) {
  const parts = arn.split(':')
  return parts.length >= 6 && parts[0] === 'arn' && /^\d{12}$/.test(parts[4]) ? parts[4] : undefined
}

// Policies repeat across a batch (every request of a role carries the same documents): validate each distinct
// document once and hand the library the pre-validated policy.
const validatedCache = new Map()
function validated(document, kind) {
  const key = kind + JSON.stringify(document)
  let v = validatedCache.get(key)
  if (!v) {
    v = createValidatedPolicy(document, kind === 'identity' ? validateIdentityPolicy : validateResourcePolicy)
    validatedCache.set(key, v)
  }
  return v
}

const keyTypeCache = new Map()
async function keyType(key) {
  const lower = key.toLowerCase()
  if (!keyTypeCache.has(lower)) keyTypeCache.set(lower, await typeForContextKey(lower).catch(() => undefined))
  return keyTypeCache.get(lower)
}

const allowedKeysCache = new Map()
async function allowedKeys(action, resource) {
  // The allowed keys depend on the action and the resource type; the ARN up to its last ':' or '/' is a fine key.
  const cacheKey = action.toLowerCase() + ' ' + resource.replace(/[^:/]*$/, '')
  if (!allowedKeysCache.has(cacheKey)) {
    const [service, name] = action.split(':')
    const keys = await allowedContextKeysForRequest(service, name, resource, false, undefined).catch(() => undefined)
    allowedKeysCache.set(cacheKey, keys ? new Set(keys) : undefined)
  }
  return allowedKeysCache.get(cacheKey)
}

/** Is a (lower-cased) condition key among the allowed ones, counting `prefix/${tagkey}` style templates? */
function keySupported(lowerKey, allowed) {
  if (allowed.has(lowerKey)) return true
  const slash = lowerKey.indexOf('/')
  if (slash === -1) return false
  const prefix = lowerKey.slice(0, slash + 1)
  for (const k of allowed) if (k.startsWith(prefix)) return true
  return false
}

/** Every statement analysis of a request analysis, with the name of its policy. */
function statementAnalyses(analysis) {
  const out = []
  const idn = analysis?.identityAnalysis
  if (idn) {
    for (const s of [...idn.denyStatements, ...idn.allowStatements, ...idn.unmatchedStatements])
      out.push({ policy: s.policyId, s })
  }
  const res = analysis?.resourceAnalysis
  if (res) {
    for (const s of [...res.denyStatements, ...res.allowStatements, ...res.unmatchedStatements])
      out.push({ policy: RESOURCE_POLICY_NAME, s })
  }
  return out
}

const asArray = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v])

function statementRef(policy, s) {
  return { policy, sid: s.statement.sid() ?? null, index: s.statement.index(), effect: s.statement.effect() }
}

function fullyMatches(s) {
  return s.explain.matches === true
}

/** The parts of an action-matching statement that did not match, as short phrases. */
function mismatches(s) {
  const e = s.explain
  const out = []
  if (!e.resourceMatch) {
    for (const r of asArray(e.resources)) {
      if (r.matches) continue
      const resolved = r.resolvedValue && r.resolvedValue !== r.resource ? ` (resolved to ${r.resolvedValue})` : ''
      const errs = r.errors?.length ? `; ${r.errors.join('; ')}` : ''
      out.push(`Resource ${r.resource}${resolved} does not match: ${r.mismatchReason ?? 'no match'}${errs}`)
    }
    for (const r of asArray(e.notResources)) {
      if (r.matches) out.push(`NotResource ${r.resource} covers the resource`)
    }
    if (!e.resources && !e.notResources) out.push('resource did not match')
  }
  if (e.principalMatch === 'NoMatch') out.push('principal did not match')
  if (!e.conditionMatch) {
    for (const c of e.conditions ?? []) {
      if (c.matches) continue
      let detail
      if (c.failedBecauseMissing) detail = 'key absent from the request'
      else if (c.failedBecauseArray) detail = 'a multi-valued value was given to a single-valued operator'
      else if (c.missingOperator) detail = 'unknown operator'
      else if (/^Null$/i.test(c.operator)) {
        const wantsAbsent = asArray(c.values).some((v) => String(v.value).toLowerCase() === 'true')
        detail = wantsAbsent ? 'key present, Null "true" requires it absent' : 'key absent from the request, Null "false" requires it'
      }
      else if (c.unmatchedValues?.length) detail = `request values not matched: ${JSON.stringify(c.unmatchedValues)}`
      else {
        const wanted = asArray(c.values).map((v) => v.resolvedValue ?? v.value)
        detail = `request value does not satisfy ${JSON.stringify(wanted)}`
      }
      out.push(`Condition ${c.operator} ${c.conditionKeyValue}: ${detail}`)
    }
    if (!e.conditions?.length) out.push('condition did not match')
  }
  return out
}

/**
 * The statement that came closest to changing a denial: for an explicit deny the first Deny that matched, for an
 * implicit deny the Allow statement whose action matches with the fewest failed parts.
 */
function nearest(decision, analyses, action) {
  if (decision === 'ExplicitlyDenied') {
    const d = analyses.find(({ s }) => fullyMatches(s) && s.statement.isDeny())
    if (d) {
      return {
        ...statementRef(d.policy, d.s),
        why: 'explicit Deny: its action, resource and conditions all matched the request'
      }
    }
    return { policy: null, sid: null, why: 'explicitly denied (no single Deny statement identified)' }
  }
  const candidates = analyses
    .filter(({ s }) => s.statement.isAllow() && s.explain.actionMatch && !fullyMatches(s))
    .map((a) => ({ ...a, misses: mismatches(a.s) }))
  if (candidates.length === 0) {
    const anyAllow = analyses.some(({ s }) => s.statement.isAllow() && fullyMatches(s))
    return {
      policy: null,
      sid: null,
      why: anyAllow
        ? 'an Allow matched, but the policies do not grant the request as a whole (e.g. cross-account without a resource policy grant)'
        : `no Allow statement's Action/NotAction matches ${action}`
    }
  }
  candidates.sort((a, b) => a.misses.length - b.misses.length)
  const best = candidates[0]
  return {
    ...statementRef(best.policy, best.s),
    why: `action matched but resource/condition did not: ${best.misses.join('; ')}`
  }
}

/** Conditions in statements that apply to the action on keys that the action/resource type does not support. */
async function unsupportedConditionKeys(analyses, action, resource) {
  const allowed = await allowedKeys(action, resource)
  if (!allowed) return { findings: [], error: `cannot list the condition keys of ${action} on ${resource}` }
  const findings = []
  for (const { policy, s } of analyses) {
    if (!s.explain.actionMatch) continue
    for (const [operator, keys] of Object.entries(s.statement.conditionMap() ?? {})) {
      for (const key of Object.keys(keys)) {
        if (keySupported(key.toLowerCase(), allowed)) continue
        findings.push({
          ...statementRef(policy, s),
          operator,
          key,
          why: `${action} on this resource type does not support ${key}: IAM evaluates the condition as if the key were absent`
        })
      }
    }
  }
  return { findings }
}

async function evaluateOne(r, batchCheckKeys) {
  const result = await evaluateOrError(r, batchCheckKeys)
  if (result.decision === 'Error') {
    // Callers that print only `nearest` for a non-Allowed answer still see why nothing was evaluated.
    result.nearest = { policy: null, sid: null, why: `not evaluated: ${result.errors.join('; ')}` }
  }
  return result
}

async function evaluateOrError(r, batchCheckKeys) {
  const errors = []
  const warnings = []
  const given = r.context ?? {}
  const context = r.autoContext === false ? given : { ...principalContext(r.principal), ...given }
  const account = r.resourceAccount ?? arnAccount(r.resource) ?? arnAccount(r.principal)
  const result = { id: r.id, decision: 'Error', matchedStatements: [], nearest: null, errors, warnings }
  if (!account) {
    errors.push('cannot tell the resource account: give resourceAccount, or a principal or resource ARN with an account')
    return result
  }

  const simulation = {
    request: {
      principal: r.principal,
      action: r.action,
      resource: { resource: r.resource, accountId: account },
      contextVariables: context
    },
    identityPolicies: (r.identityPolicies ?? []).map((p) => ({ name: p.name, policy: validated(p.document, 'identity') })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    ...(r.resourcePolicy ? { resourcePolicy: validated(r.resourcePolicy, 'resource') } : {})
  }

  let response
  try {
    response = await runSimulation(simulation, { simulationMode: 'Strict' })
  } catch (e) {
    errors.push(`the simulator failed: ${e?.message ?? e}`)
    return result
  }
  if (response.resultType === 'error') {
    const { message, ...details } = response.errors
    errors.push(describeSimulationError(message, r, details))
    return result
  }

  const resourceResults = response.resultType === 'single' ? [response.result] : response.results
  result.decision = response.overallResult
  const ignored = new Set(resourceResults.flatMap((x) => x.ignoredContextKeys ?? []))
  for (const [key, value] of Object.entries(given)) {
    if (ignored.has(key)) {
      warnings.push(`context key ${key} does not apply to ${r.action} on this resource type; dropped before evaluation, as IAM would never send it`)
      continue
    }
    if (!Array.isArray(value)) continue
    const type = await keyType(key)
    if (type && !type.startsWith('ArrayOf')) {
      warnings.push(`context key ${key} is single-valued (${type}) but was given an array; only ${JSON.stringify(value[0])} is used`)
    }
  }
  const analyses = resourceResults.flatMap((x) => statementAnalyses(x.analysis))
  const seen = new Set()
  for (const { policy, s } of analyses) {
    if (!fullyMatches(s)) continue
    const ref = statementRef(policy, s)
    const k = `${ref.policy}#${ref.index}`
    if (seen.has(k)) continue
    seen.add(k)
    result.matchedStatements.push(ref)
  }
  if (result.decision !== 'Allowed') {
    result.nearest =
      resourceResults.length === 0
        ? { policy: null, sid: null, why: `no statement grants ${r.action} on the whole resource pattern ${r.resource}` }
        : nearest(result.decision, analyses, r.action)
  }
  if (r.checkConditionKeys ?? batchCheckKeys) {
    const resourceForKeys = resourceResults[0]?.resourcePattern ?? r.resource
    const { findings, error } = await unsupportedConditionKeys(analyses, r.action, resourceForKeys)
    if (error) warnings.push(error)
    result.unsupportedConditionKeys = findings
  }
  return result
}

function describeSimulationError(message, r, details) {
  const known = {
    'invalid.action': `unknown action ${r.action} (not in the IAM service reference)`,
    'invalid.service': `unknown service in action ${r.action}`,
    'no.resource.types': `resource ${r.resource} is not a resource type that ${r.action} acts on`,
    'multiple.resource.types': `resource ${r.resource} matches several resource types of ${r.action}`,
    'must.use.wildcard': `${r.action} only supports Resource "*"; give resource "*"`,
    'invalid.principal': `invalid principal ${JSON.stringify(r.principal)}`,
    'policy.errors': 'invalid policy document(s)'
  }
  const text = known[message] ?? message
  return Object.keys(details).length ? `${text}: ${JSON.stringify(details)}` : text
}

/**
 * Evaluates a whole batch. The input must have passed validateInput.
 *
 * @param input {"requests": [...], "checkConditionKeys"?: boolean}
 * @returns {"results": [...]} in request order
 */
export async function evaluateBatch(input) {
  validateInput(input)
  const results = []
  for (const r of input.requests) results.push(await evaluateOne(r, input.checkConditionKeys === true))
  return { results }
}

async function main() {
  let text
  try {
    text = readFileSync(0, 'utf8')
  } catch (e) {
    process.stderr.write(`iam-eval: cannot read stdin: ${e.message}\n`)
    process.exit(2)
  }
  let input
  try {
    input = JSON.parse(text)
  } catch (e) {
    process.stderr.write(`iam-eval: stdin is not valid JSON: ${e.message}\n`)
    process.exit(2)
  }
  let output
  try {
    output = await evaluateBatch(input)
  } catch (e) {
    if (e instanceof InputError) {
      process.stderr.write(`iam-eval: malformed input: ${e.message}\n`)
      process.exit(2)
    }
    throw e
  }
  process.stdout.write(JSON.stringify(output) + '\n')
}

const invokedDirectly = (() => {
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
})()
if (invokedDirectly) {
  main().catch((e) => {
    process.stderr.write(`iam-eval: internal error: ${e?.stack ?? e}\n`)
    process.exit(1)
  })
}
