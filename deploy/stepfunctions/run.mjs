// run.mjs runs tote's state machine definition locally, once.
//
// It reads the ASL file Terraform deploys, fills in its template
// variables, validates it with asl-validator, and runs one execution with
// aws-local-stepfunctions. Each Lambda Task is routed to an emulated
// function (an AWS Lambda Runtime Interface Emulator, or anything that
// speaks Lambda's Invoke API, at an invoke URL); the sns:publish Task is
// recorded instead of sent. It prints one JSON object on stdout:
//
//   {status, output, error, cause, states, invocations, calls, retries, sns}
//
// and exits 0 whether the execution succeeded or failed (status says);
// 1 if the definition is invalid, 2 on any other harness error.
//
//   node --import ./polyfill.mjs run.mjs --routes '{"Extract":"http://127.0.0.1:9001/2015-03-31/functions/function/invocations", ...}'
//
// Options (environment variable in brackets):
//   --definition PATH        ASL file [TOTE_SFN_DEFINITION]; default ../terraform/modules/tote/statemachine.asl.json
//   --vars JSON              values of the template variables [TOTE_SFN_VARS]; default: plausible ARNs (see DEFAULT_VARS)
//   --routes JSON            function ARN or state name -> invoke URL [TOTE_SFN_ROUTES]; required for every Lambda Task run
//   --input JSON             the execution's input [TOTE_SFN_INPUT]; default {}
//   --retry-interval-ms N    every Retry waits N ms instead of its interval, backoff and jitter [TOTE_SFN_RETRY_INTERVAL_MS]
//   --timeout-seconds S=N    Task S times out after N seconds instead of its TimeoutSeconds; repeatable [TOTE_SFN_TIMEOUT_SECONDS, JSON {S: N}]
//   --sns-error NAME         every sns:publish fails with this error name [TOTE_SFN_SNS_ERROR]
//   --validate-only          validate, print {"valid": true}, and stop
//
// The definition file itself is never changed: the overrides above apply to
// this run only, so tests stay fast while the deployed file keeps real
// intervals and timeouts.

import './polyfill.mjs';

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import aslValidator from 'asl-validator';
import { ExecutionError, ExecutionTimeoutError, StateMachine } from 'aws-local-stepfunctions';

const here = dirname(fileURLToPath(import.meta.url));

// The template variables Terraform passes to templatefile(), and plausible
// values for a local run.
const DEFAULT_VARS = {
  extract_function_arn: 'arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-extract',
  transform_function_arn: 'arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-transform',
  load_function_arn: 'arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-load',
  publish_function_arn: 'arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-publish',
  publish_after: 'load',
  alert_topic_arn: 'arn:aws:sns:eu-west-2:123456789012:tote-dev-alerts',
  environment: 'dev',
};

const SNS_PUBLISH = 'arn:aws:states:::sns:publish';

class HarnessError extends Error {}

// A function error, shaped so that Retry and Catch see what they would see
// from real Lambda: Error is the errorType, Cause the error payload as the
// function returned it (JSON {errorMessage, errorType}). aws-local-stepfunctions
// matches ErrorEquals against the thrown error's name and gives Catch
// {Error: name, Cause: message}.
class TaskError extends Error {
  constructor(name, cause) {
    super(cause);
    this.name = name;
  }
}

// Step Functions refuses a state input or output over 256 KiB with
// States.DataLimitExceeded, which no Retry or Catch matches;
// aws-local-stepfunctions has no such limit, so the harness applies it to
// the functions' outputs.
const MAX_PAYLOAD = 256 * 1024;

class TerminalError extends TaskError {
  // aws-local-stepfunctions reads these to skip Retry and Catch.
  get isRetryable() {
    return false;
  }

  get isCatchable() {
    return false;
  }
}

function options() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        definition: { type: 'string' },
        vars: { type: 'string' },
        routes: { type: 'string' },
        input: { type: 'string' },
        'retry-interval-ms': { type: 'string' },
        'timeout-seconds': { type: 'string', multiple: true },
        'sns-error': { type: 'string' },
        'validate-only': { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new HarnessError(`${err.message} (the options are listed at the top of run.mjs)`);
  }
  const env = process.env;
  const json = (name, text, fallback) => {
    if (text === undefined || text === '') return fallback;
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new HarnessError(`${name}: not JSON: ${err.message}: ${text}`);
    }
  };
  const timeouts = json('TOTE_SFN_TIMEOUT_SECONDS', env.TOTE_SFN_TIMEOUT_SECONDS, {});
  for (const pair of values['timeout-seconds'] ?? []) {
    const m = /^(.+)=(\d+)$/.exec(pair);
    if (!m) throw new HarnessError(`--timeout-seconds ${pair}: want STATE=SECONDS`);
    timeouts[m[1]] = Number(m[2]);
  }
  const retry = values['retry-interval-ms'] ?? env.TOTE_SFN_RETRY_INTERVAL_MS;
  if (retry !== undefined && retry !== '' && !/^\d+$/.test(retry)) {
    throw new HarnessError(`retry interval ${retry}: want a whole number of milliseconds`);
  }
  return {
    definition: resolve(
      values.definition ?? env.TOTE_SFN_DEFINITION ?? resolve(here, '../terraform/modules/tote/statemachine.asl.json'),
    ),
    vars: { ...DEFAULT_VARS, ...json('--vars', values.vars ?? env.TOTE_SFN_VARS, {}) },
    routes: json('--routes', values.routes ?? env.TOTE_SFN_ROUTES, {}),
    input: json('--input', values.input ?? env.TOTE_SFN_INPUT, {}),
    retryIntervalMs: retry === undefined || retry === '' ? undefined : Number(retry),
    timeouts,
    snsError: values['sns-error'] ?? env.TOTE_SFN_SNS_ERROR ?? '',
    validateOnly: values['validate-only'] ?? false,
  };
}

// load reads the ASL file and fills in the template variables as
// Terraform's templatefile() would, refusing any other ${...}: templatefile
// would fail on it at plan time.
function load(path, vars) {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new HarnessError(`read definition: ${err.message}`);
  }
  const unknown = new Set();
  const missing = new Set(Object.keys(DEFAULT_VARS));
  const filled = text.replace(/\$\{([^}]*)\}/g, (all, name) => {
    if (!(name in vars)) {
      unknown.add(all);
      return all;
    }
    missing.delete(name);
    return vars[name];
  });
  const problems = [];
  if (unknown.size) problems.push(`template sequences templatefile() is not given: ${[...unknown].join(', ')}`);
  if (missing.size) problems.push(`template variables the definition does not use: ${[...missing].join(', ')}`);
  if (/%\{/.test(text)) problems.push('a "%{" sequence, which templatefile() reads as a directive');
  let definition;
  try {
    definition = JSON.parse(filled);
  } catch (err) {
    problems.push(`not JSON after substitution: ${err.message}`);
  }
  if (problems.length) {
    throw new InvalidDefinition(`${path}:\n  ${problems.join('\n  ')}`);
  }
  return definition;
}

class InvalidDefinition extends Error {}

function validate(path, definition) {
  const { isValid, errorsText } = aslValidator(definition, { checkPaths: true, checkArn: true });
  if (!isValid) {
    throw new InvalidDefinition(`${path}: asl-validator:\n  ${errorsText('\n  ')}`);
  }
  const problems = checkRetryAndCatch(definition);
  if (problems.length) {
    throw new InvalidDefinition(`${path}:\n  ${problems.join('\n  ')}`);
  }
}

// checkRetryAndCatch checks what asl-validator 4 does not: its schema knows
// neither MaxDelaySeconds nor JitterStrategy and lets any field through in
// a retrier or a catcher, where Step Functions refuses unknown ones.
function checkRetryAndCatch(machine) {
  const problems = [];
  const retrierFields = ['ErrorEquals', 'IntervalSeconds', 'MaxAttempts', 'BackoffRate', 'MaxDelaySeconds', 'JitterStrategy', 'Comment'];
  const catcherFields = ['ErrorEquals', 'Next', 'ResultPath', 'Comment', 'Output', 'Assign'];
  const isInt = (v, min, max) => Number.isInteger(v) && v >= min && v <= max;
  const errorList = (where, list, i, n) => {
    if (list.includes('States.ALL') && (list.length !== 1 || i !== n - 1)) {
      problems.push(`${where}: States.ALL must be alone, in the last one`);
    }
  };
  const walk = (states, prefix) => {
    for (const [name, state] of Object.entries(states ?? {})) {
      (state.Retry ?? []).forEach((r, i, all) => {
        const where = `${prefix}${name}.Retry[${i}]`;
        for (const k of Object.keys(r)) if (!retrierFields.includes(k)) problems.push(`${where}: unknown field ${k}`);
        if ('IntervalSeconds' in r && !isInt(r.IntervalSeconds, 1, 99999999)) problems.push(`${where}: IntervalSeconds must be a whole number from 1`);
        if ('MaxAttempts' in r && !isInt(r.MaxAttempts, 0, 99999999)) problems.push(`${where}: MaxAttempts must be a whole number from 0`);
        if ('BackoffRate' in r && !(typeof r.BackoffRate === 'number' && r.BackoffRate >= 1)) problems.push(`${where}: BackoffRate must be at least 1.0`);
        if ('MaxDelaySeconds' in r && !isInt(r.MaxDelaySeconds, 1, 31622400)) problems.push(`${where}: MaxDelaySeconds must be a whole number from 1 to 31622400`);
        if ('JitterStrategy' in r && !['FULL', 'NONE'].includes(r.JitterStrategy)) problems.push(`${where}: JitterStrategy must be FULL or NONE`);
        errorList(where, r.ErrorEquals ?? [], i, all.length);
      });
      (state.Catch ?? []).forEach((c, i, all) => {
        const where = `${prefix}${name}.Catch[${i}]`;
        for (const k of Object.keys(c)) if (!catcherFields.includes(k)) problems.push(`${where}: unknown field ${k}`);
        errorList(where, c.ErrorEquals ?? [], i, all.length);
      });
      for (const [i, b] of (state.Branches ?? []).entries()) walk(b.States, `${prefix}${name}.Branches[${i}].`);
      const inner = state.ItemProcessor ?? state.Iterator;
      if (inner) walk(inner.States, `${prefix}${name}.`);
    }
  };
  walk(machine.States, '');
  return problems;
}

// post sends one invocation and returns Lambda's view of it: {payload} or
// {errorType, cause}. It understands both real Lambda's Invoke API (the
// X-Amz-Function-Error header) and a bare Runtime Interface Emulator, which
// sets no header: a function error is then a 200 whose body is only
// {errorMessage, errorType[, stackTrace]}, a timeout a 200 of plain text
// "Task timed out after N.00 seconds", and a crashed runtime a 502 with the
// error document.
function post(url, body) {
  const u = new URL(url);
  const client = u.protocol === 'https:' ? https : http;
  return new Promise((resolvePost, rejectPost) => {
    // node:http rather than fetch: fetch gives up on a response that takes
    // more than 300 s, and a stage may run for 900.
    const req = client.request(
      u,
      { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', rejectPost);
        res.on('end', () => resolvePost({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', rejectPost);
    req.end(body);
  });
}

function isErrorDocument(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return typeof value.errorType === 'string' && keys.every((k) => ['errorType', 'errorMessage', 'stackTrace'].includes(k));
}

function interpret({ status, headers, text }) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const timedOut = /^Task timed out after [\d.]+ seconds$/.exec(text.trim());
  if (headers['x-amz-function-error'] || (status === 502 && isErrorDocument(value)) || (status === 200 && isErrorDocument(value))) {
    const errorType = value && typeof value.errorType === 'string' ? value.errorType : 'Lambda.Unknown';
    return { errorType, cause: text };
  }
  if (status === 200 && timedOut) {
    // What real Lambda returns for a function killed by its timeout.
    const cause = JSON.stringify({ errorType: 'Sandbox.Timedout', errorMessage: `RequestId: ${randomUUID()} Error: ${timedOut[0]}` });
    return { errorType: 'Sandbox.Timedout', cause };
  }
  if (status === 429) return { errorType: 'Lambda.TooManyRequestsException', cause: text };
  if (status >= 500) return { errorType: 'Lambda.ServiceException', cause: `status ${status}: ${text}` };
  if (status !== 200) return { errorType: 'Lambda.AWSLambdaException', cause: `status ${status}: ${text}` };
  if (value === undefined) {
    // Lambda itself refuses a response that is not JSON.
    return { errorType: 'Lambda.Unknown', cause: `function response is not JSON: ${text}` };
  }
  return { payload: value };
}

async function main() {
  const opts = options();
  const definition = load(opts.definition, opts.vars);
  validate(opts.definition, definition);
  if (opts.validateOnly) {
    return { valid: true, definition: opts.definition };
  }

  // This run's copy: Task timeouts overridden, the file untouched.
  const run = structuredClone(definition);
  for (const [state, seconds] of Object.entries(opts.timeouts)) {
    const s = run.States[state];
    if (!s || s.Type !== 'Task') throw new HarnessError(`--timeout-seconds: no Task state ${state}`);
    s.TimeoutSeconds = seconds;
  }

  const invocations = {};
  const calls = [];
  const sns = [];
  const queues = new Map(); // invoke URL -> tail of its queue
  const handlers = {};

  for (const [name, state] of Object.entries(run.States)) {
    if (state.Type !== 'Task') continue;
    const resource = state.Resource;
    if (resource === SNS_PUBLISH) {
      handlers[name] = (input) => publish(name, input, opts.snsError, sns);
      continue;
    }
    if (!resource.startsWith('arn:aws:lambda:')) {
      throw new HarnessError(`state ${name}: no local stand-in for resource ${resource}`);
    }
    const url = opts.routes[name] ?? opts.routes[resource];
    if (!url) {
      throw new HarnessError(`state ${name}: no route for ${resource}: give --routes {"${name}" or "${resource}": invoke URL}`);
    }
    handlers[name] = async (input) => {
      invocations[resource] = (invocations[resource] ?? 0) + 1;
      const attempt = invocations[resource];
      // One invocation at a time per emulator: the Runtime Interface
      // Emulator crashes on concurrent ones. Only a timed-out Task that is
      // retried could overlap here, and it then waits, where Lambda would
      // start another sandbox.
      const previous = queues.get(url) ?? Promise.resolve();
      let release;
      queues.set(url, new Promise((r) => (release = r)));
      await previous;
      const started = Date.now();
      let outcome;
      try {
        outcome = interpret(await post(url, JSON.stringify(input)));
      } catch (err) {
        outcome = { errorType: 'Lambda.SdkClientException', cause: `invoke ${url}: ${err.message}` };
      } finally {
        release();
      }
      const ms = Date.now() - started;
      calls.push({ state: name, resource, attempt, ms, ...(outcome.errorType ? { errorType: outcome.errorType } : {}) });
      process.stderr.write(`run.mjs: ${name} attempt ${attempt}: ${outcome.errorType ?? 'ok'} in ${ms} ms\n`);
      if (outcome.errorType) throw new TaskError(outcome.errorType, outcome.cause);
      const size = Buffer.byteLength(JSON.stringify(outcome.payload));
      if (size > MAX_PAYLOAD) {
        throw new TerminalError('States.DataLimitExceeded', `${name}: the function's output is ${size} bytes, over Step Functions' ${MAX_PAYLOAD}`);
      }
      return outcome.payload;
    };
  }

  const retryIntervalOverrides = {};
  if (opts.retryIntervalMs !== undefined) {
    for (const [name, state] of Object.entries(run.States)) {
      if (state.Retry) retryIntervalOverrides[name] = opts.retryIntervalMs;
    }
  }

  // Validated above with asl-validator 4; the library bundles an older one
  // (3.x) that predates some fields, so it is not asked again.
  const machine = new StateMachine(run, { validationOptions: { noValidate: true } });
  const executionName = `local-${randomUUID()}`;
  const machineName = `tote-${opts.vars.environment}-pipeline`;
  const machineArn = opts.vars.extract_function_arn
    .replace(/:lambda:/, ':states:')
    .replace(/:function:.*$/, `:stateMachine:${machineName}`);
  const execution = machine.run(opts.input, {
    overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides },
    context: {
      Execution: {
        Id: `${machineArn.replace(':stateMachine:', ':execution:')}:${executionName}`,
        Name: executionName,
      },
      StateMachine: { Id: machineArn, Name: machineName },
    },
  });

  const states = [];
  const retries = [];
  const logging = (async () => {
    for await (const event of execution.eventLogs) {
      if (event.type === 'StateEntered') {
        states.push(event.state.name);
        process.stderr.write(`run.mjs: entered ${event.state.name}\n`);
      } else if (event.type === 'StateRetried') {
        retries.push({ state: event.state.name, attempt: event.retry.attempt, errorEquals: event.retry.retrier.ErrorEquals });
      }
    }
  })();

  const report = { status: 'SUCCEEDED', output: null, error: null, cause: null };
  try {
    report.output = await execution.result;
  } catch (err) {
    if (err instanceof ExecutionError) {
      report.status = 'FAILED';
      report.error = err.cause?.name ?? null;
      report.cause = err.cause?.message ?? null;
    } else if (err instanceof ExecutionTimeoutError) {
      report.status = 'TIMED_OUT';
    } else {
      throw err;
    }
  }
  await logging;
  return { ...report, states, invocations, calls, retries, sns };
}

// publish stands in for Step Functions' sns:publish integration: it checks
// what SNS would check, records the message and answers with a MessageId.
function publish(state, input, snsError, sns) {
  const { TopicArn, Subject, Message } = input ?? {};
  const problems = [];
  if (typeof TopicArn !== 'string' || !/^arn:aws:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$/.test(TopicArn)) problems.push(`TopicArn ${JSON.stringify(TopicArn)}`);
  if (typeof Message !== 'string' || Message === '' || Buffer.byteLength(Message) > 262144) problems.push('Message: empty or over 256 KiB');
  // SNS: at most 100 characters, printable ASCII, no line breaks.
  if (Subject !== undefined && (typeof Subject !== 'string' || Subject.length === 0 || Subject.length > 100 || !/^[\x20-\x7e]+$/.test(Subject))) {
    problems.push(`Subject ${JSON.stringify(Subject)}: 1 to 100 printable ASCII characters`);
  }
  const record = { state, TopicArn, Subject, Message };
  if (snsError || problems.length) {
    record.error = snsError || 'SNS.InvalidParameterException';
    sns.push(record);
    throw new TaskError(record.error, snsError ? `${snsError} (--sns-error)` : `Invalid parameter: ${problems.join('; ')}`);
  }
  record.MessageId = randomUUID();
  sns.push(record);
  return { MessageId: record.MessageId };
}

// exit leaves once the output is written (on some systems a pipe is
// written asynchronously), without waiting for invocations that a
// timed-out Task left running.
function exit(code, stream, text) {
  stream.write(text, () => process.exit(code));
}

try {
  exit(0, process.stdout, `${JSON.stringify(await main())}\n`);
} catch (err) {
  if (err instanceof InvalidDefinition) {
    exit(1, process.stderr, `run.mjs: invalid definition: ${err.message}\n`);
  } else {
    exit(2, process.stderr, `run.mjs: ${err instanceof HarnessError ? err.message : err.stack}\n`);
  }
}
