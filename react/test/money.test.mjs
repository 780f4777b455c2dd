// formatMoney prints integer minor units with the currency's own number of decimals, the
// same count as the core (`minor_digits` in src/money.rs): three for BHD, JOD, KWD, OMR
// and TND (1/1000), none for JPY, KRW and the other zero-decimal currencies, two otherwise.
// Symbols and spacing come from the runtime's ICU, so the figures are compared on their own.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { formatMoney, minorDigits } from '../dist/core.js';

/** The figure of a formatted amount: "KWD 1.500" -> "1.500", "¥12,000" -> "12,000". */
const figure = (s) => s.replace(/[^\d.,-]/g, '');

test('three-decimal currencies: the minor unit is a thousandth', () => {
  for (const c of ['bhd', 'jod', 'kwd', 'omr', 'tnd', 'KWD']) assert.equal(minorDigits(c), 3, c);
  const kwd = formatMoney({ amount: 1500, currency: 'kwd' });
  assert.equal(figure(kwd), '1.500', kwd);
  assert.match(kwd, /KWD/);
  assert.equal(figure(formatMoney({ amount: 12345, currency: 'BHD' })), '12.345');
  assert.equal(figure(formatMoney({ amount: 5, currency: 'omr' })), '0.005');
  assert.equal(figure(formatMoney({ amount: 2500000, currency: 'jod' })), '2,500.000');
  assert.equal(figure(formatMoney({ amount: 999, currency: 'tnd' })), '0.999');
});

test('zero-decimal currencies: the minor unit is the unit', () => {
  for (const c of ['jpy', 'krw', 'vnd', 'clp', 'xof', 'JPY']) assert.equal(minorDigits(c), 0, c);
  const jpy = formatMoney({ amount: 500, currency: 'jpy' });
  assert.equal(figure(jpy), '500', jpy);
  assert.match(jpy, /¥|JPY/);
  assert.equal(figure(formatMoney({ amount: 12000, currency: 'KRW' })), '12,000');
});

test('two-decimal currencies: hundredths', () => {
  for (const c of ['usd', 'eur', 'inr', 'gbp']) assert.equal(minorDigits(c), 2, c);
  assert.equal(formatMoney({ amount: 5900, currency: 'usd' }), '$59.00');
  assert.equal(figure(formatMoney({ amount: 123456, currency: 'eur' })), '1,234.56');
  assert.equal(figure(formatMoney({ amount: 1, currency: 'inr' })), '0.01');
});
