// The calibrations collection's documents: validated before a write like the other collections, and
// rates round-trip through the entry list that keeps '.' out of field names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  entriesToRates,
  ratesToEntries,
  validateCalibration,
  type CalibrationDoc,
} from '../../../results/calibrations.js';
import { SchemaError } from '../../../results/errors.js';

const rates = {
  simulate: { gaussian_linear: 1e-6 },
  train: { '{"batchSize":128,"defense":{"name":"fim"},"lr":0.001}': 2e-3 },
  attack: { '{"attack":"l2pgd"}': 1e-3 },
  metric: { '{"objective":"rkl"}': { kl: 4e-5, coverage: 3e-5 } },
};

function doc(): CalibrationDoc {
  const now = new Date();
  return {
    _id: 'host/wasm',
    host: 'host',
    backend: 'wasm',
    cores: 2,
    loadAverage1m: 1.5,
    codeVersion: '0.1.0',
    rates: ratesToEntries(rates),
    createdAt: now,
    updatedAt: now,
  };
}

test('rates round-trip through the stored entries', () => {
  assert.deepEqual(entriesToRates(ratesToEntries(rates)), rates);
});

test('a valid document passes; a bad rate or a missing field is refused naming the field', () => {
  validateCalibration(doc());
  const bad = doc();
  bad.rates[0]!.seconds = 0;
  assert.throws(
    () => validateCalibration(bad),
    (e: unknown) => {
      assert.ok(e instanceof SchemaError);
      assert.match(e.message, /rates\[0\]\.seconds/);
      return true;
    },
  );
  const missing: Partial<CalibrationDoc> = doc();
  delete missing.backend;
  assert.throws(() => validateCalibration(missing), SchemaError);
  assert.throws(
    () => validateCalibration({ ...doc(), rates: [{ kind: 'train', key: 'k', seconds: NaN }] }),
    SchemaError,
  );
});
