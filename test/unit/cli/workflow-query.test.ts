import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UserError } from '../../../cli/errors.js';
import { visibilityQuery } from '../../../cli/workflow-query.js';
import { loadConfig } from '../../../infra/config.js';
import { serviceArgs } from '../../../infra/stack.js';
import { SEARCH_ATTRIBUTES } from '../../../sweeps/search-attributes.js';

test('sweep list flags become a visibility query over the search attributes', () => {
  assert.equal(visibilityQuery({}), undefined);
  assert.equal(
    visibilityQuery({ sweepId: 'abc', trialStatus: 'failed' }),
    "SweepId = 'abc' AND TrialStatus = 'failed'",
  );
  assert.equal(
    visibilityQuery({ query: "Beta > 0.1 OR Defense = 'fim'", task: 'two_moons' }),
    "(Beta > 0.1 OR Defense = 'fim') AND Task = 'two_moons'",
  );
  assert.equal(visibilityQuery({ query: 'Beta > 0' }), 'Beta > 0');
  assert.throws(() => visibilityQuery({ defense: "x' OR 1=1" }), UserError);
  assert.throws(() => visibilityQuery({ query: ' ' }), /--query must not be empty/);
});

test('the dev server registers every search attribute with its type', () => {
  const args = serviceArgs('temporal', loadConfig({}, '/r'), SEARCH_ATTRIBUTES);
  assert.equal(
    args.filter((a) => a === '--search-attribute').length,
    Object.keys(SEARCH_ATTRIBUTES).length,
  );
  assert.ok(args.includes('SweepId=Keyword'));
  assert.ok(args.includes('Beta=Double'));
  assert.ok(args.includes('TrialStatus=KeywordList'));
});
