'use strict';
// Shipping rules of orders-node: pure functions, no I/O.
//
// shippingQuote carries the bug selfheal heals in its Node end-to-end test: a country
// code that is well formed but not in SHIPPING_ZONES ("XX") leaves `zone` undefined, and
// reading zone.baseCents throws a TypeError. Tests and fixtures name shipping.js:50.

/** A request the caller got wrong; the HTTP layer answers it with 400. */
class BadRequestError extends Error {
  constructor(message) {
    super(message);
    this.name = 'BadRequestError';
  }
}

/** Where each country ships from, and what a parcel costs there. */
const SHIPPING_ZONES = {
  DE: { zone: 'domestic', baseCents: 490, perKgCents: 110 },
  AT: { zone: 'eu', baseCents: 890, perKgCents: 180 },
  FR: { zone: 'eu', baseCents: 890, perKgCents: 180 },
  NL: { zone: 'eu', baseCents: 890, perKgCents: 180 },
  GB: { zone: 'europe', baseCents: 1490, perKgCents: 260 },
  US: { zone: 'world', baseCents: 2490, perKgCents: 590 },
};

/** The heaviest parcel the carriers take, in kilograms. */
const MAX_WEIGHT_KG = 31.5;

/** Checks a quote request ({sku, country, weightKg}) and returns it normalised. */
function validateQuote(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new BadRequestError('body must be a JSON object');
  }
  const { sku, country, weightKg } = body;
  if (typeof sku !== 'string' || sku.trim() === '') {
    throw new BadRequestError('sku must be a non-empty string');
  }
  if (typeof country !== 'string' || !/^[A-Za-z]{2}$/.test(country)) {
    throw new BadRequestError('country must be a two-letter code');
  }
  if (typeof weightKg !== 'number' || !(weightKg > 0) || weightKg > MAX_WEIGHT_KG) {
    throw new BadRequestError(`weightKg must be a number in (0, ${MAX_WEIGHT_KG}]`);
  }
  return { sku: sku.trim(), country: country.toUpperCase(), weightKg };
}

/** The shipping price of one parcel, in cents: the zone's base price plus a price per started kilogram. */
function shippingQuote(order) {
  const zone = SHIPPING_ZONES[order.country];
  const cents = zone.baseCents + Math.ceil(order.weightKg) * zone.perKgCents;
  return { country: order.country, zone: zone.zone, weightKg: order.weightKg, shippingCents: cents };
}

module.exports = { BadRequestError, MAX_WEIGHT_KG, SHIPPING_ZONES, shippingQuote, validateQuote };
