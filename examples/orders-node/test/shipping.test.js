'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');

const { BadRequestError, MAX_WEIGHT_KG, shippingQuote, validateQuote } = require('../shipping');

test('a quote is the base price plus a price per started kilogram', () => {
  assert.deepEqual(shippingQuote({ sku: 'lamp', country: 'DE', weightKg: 2.5 }), {
    country: 'DE',
    zone: 'domestic',
    weightKg: 2.5,
    shippingCents: 490 + 3 * 110,
  });
  assert.equal(shippingQuote({ sku: 'desk', country: 'US', weightKg: 1 }).shippingCents, 2490 + 590);
});

test('validateQuote normalises a good request', () => {
  assert.deepEqual(validateQuote({ sku: ' lamp ', country: 'fr', weightKg: 1.2 }), {
    sku: 'lamp',
    country: 'FR',
    weightKg: 1.2,
  });
});

test('validateQuote rejects what it cannot price', () => {
  for (const body of [
    null,
    [],
    'lamp',
    {},
    { sku: '', country: 'DE', weightKg: 1 },
    { sku: 'lamp', country: 'DEU', weightKg: 1 },
    { sku: 'lamp', country: 'D1', weightKg: 1 },
    { sku: 'lamp', country: 'DE', weightKg: 0 },
    { sku: 'lamp', country: 'DE', weightKg: '2' },
    { sku: 'lamp', country: 'DE', weightKg: MAX_WEIGHT_KG + 1 },
  ]) {
    assert.throws(() => validateQuote(body), BadRequestError, JSON.stringify(body));
  }
});
