// formatMoney and minorDigits are the core's (`Money::display`, `minor_digits` in
// src/money.rs): integer minor units printed with the currency's own number of decimals,
// three for BHD, JOD, KWD, OMR and TND (1/1000), none for JPY, KRW and the other
// zero-decimal currencies, two otherwise; the same text as every upgrade's `display`.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Engine, formatMoney, minorDigits } from '../node.js';
import { catalogJson } from './catalogs.mjs';

test('three-decimal currencies: the minor unit is a thousandth', () => {
  for (const c of ['bhd', 'jod', 'kwd', 'omr', 'tnd', 'KWD']) assert.equal(minorDigits(c), 3, c);
  assert.equal(formatMoney({ amount: 1500, currency: 'kwd' }), '1.500 KWD');
  assert.equal(formatMoney({ amount: 12345, currency: 'BHD' }), '12.345 BHD');
  assert.equal(formatMoney({ amount: 5, currency: 'omr' }), '0.005 OMR');
  assert.equal(formatMoney({ amount: 999, currency: 'tnd' }), '0.999 TND');
});

test('zero-decimal currencies: the minor unit is the unit', () => {
  for (const c of ['jpy', 'krw', 'vnd', 'clp', 'xof', 'JPY']) assert.equal(minorDigits(c), 0, c);
  assert.equal(formatMoney({ amount: 500, currency: 'jpy' }), '500 JPY');
  assert.equal(formatMoney({ amount: 12000, currency: 'KRW' }), '12000 KRW');
});

test('two-decimal currencies: hundredths, with the symbols the core knows', () => {
  for (const c of ['usd', 'eur', 'inr', 'gbp']) assert.equal(minorDigits(c), 2, c);
  assert.equal(formatMoney({ amount: 5900, currency: 'usd' }), '$59.00');
  assert.equal(formatMoney({ amount: 49900, currency: 'inr' }), '₹499.00');
  assert.equal(formatMoney({ amount: 123456, currency: 'eur' }), '€1234.56');
  assert.equal(formatMoney({ amount: -250, currency: 'gbp' }), '-£2.50');
  assert.equal(formatMoney({ amount: 1, currency: 'chf' }), '0.01 CHF');
});

test('the same text as an upgrade the core offers', () => {
  const d = new Engine(catalogJson('vcm-suite'), { grants: [] }).hasAccess('creation', 'pro', '2026-03-01T00:00:00Z');
  assert.ok(d.upgrade, 'a free user is offered an upgrade');
  assert.ok(d.upgrade.display.includes(formatMoney(d.upgrade.price)), `${d.upgrade.display} shows ${formatMoney(d.upgrade.price)}`);
});

test('malformed amounts and currencies are refused', () => {
  assert.throws(() => formatMoney({ amount: 1.5, currency: 'usd' }), /whole number of minor units/);
  assert.throws(() => formatMoney({ amount: '100', currency: 'usd' }), TypeError);
  assert.throws(() => formatMoney({ amount: 100, currency: 'dollars' }), /three-letter ISO 4217/);
  assert.throws(() => formatMoney(null), TypeError);
  assert.throws(() => minorDigits(3), TypeError);
});
