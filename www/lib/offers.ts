// Which catalog offers would unlock a question, decided by the core: each offer's
// grants are added to the user's current ones in a scratch engine and the same
// question is asked again. No plan names or prices live in this code.

import { ask } from 'tollgate-react';
import type { AccessQuestion, CatalogDoc, CatalogOffer, Grant, MoneyFormat, TollgateModule } from 'tollgate-react';

export interface OfferChoice {
  offer: CatalogOffer;
  /** Products chosen for a bundle (`metadata.clouds`), empty otherwise. */
  clouds: string[];
}

/**
 * An offer's price as shown: the amount by the core's formatter (`useMoney()`), then
 * `/month`, `/year` or ` once`; an ellipsis until the package is loaded.
 */
export function priceLabel(price: CatalogOffer['price'], money: MoneyFormat | null): string {
  if (!money) return '…';
  const per = price.interval === 'month' ? '/month' : price.interval === 'year' ? '/year' : ' once';
  return `${money.format(price)}${per}`;
}

/** The product a question is about, if any (for choosing a bundle's clouds). */
export function productOf(q: AccessQuestion, catalog: CatalogDoc): string | null {
  if ('product' in q) return q.product;
  if ('tool' in q) return catalog.tools?.find((t) => t.id === q.tool)?.requires.product ?? null;
  return null;
}

function grantsOf(offer: CatalogOffer, catalog: CatalogDoc, clouds: string[], nowMs: number): Grant[] {
  const from = new Date(Math.floor(nowMs / 1000) * 1000 - 1000).toISOString().replace('.000Z', 'Z');
  const out: Grant[] = [];
  const add = (product: string, tier: string) =>
    out.push({ id: `preview:${offer.key}:${product}`, product, tier, source: 'stripe', status: 'active', valid_from: from, valid_to: null });
  for (const g of offer.grants ?? []) {
    if (g.all_products && g.tier) {
      for (const p of catalog.products) if (p.tiers.includes(g.tier)) add(p.id, g.tier);
    } else if (g.choose && g.tier) {
      for (const c of clouds) add(c, g.tier);
    } else if (g.product && g.tier) {
      add(g.product, g.tier);
    }
  }
  return out;
}

/** How many clouds a bundle lets the buyer choose (0: not a bundle). */
export function bundleSize(offer: CatalogOffer): number {
  return (offer.grants ?? []).reduce((s, g) => s + (g.choose ?? 0), 0);
}

/** The clouds a bundle's buyer may choose from. */
export function eligibleClouds(offer: CatalogOffer, catalog: CatalogDoc): string[] {
  return (offer.grants ?? [])
    .filter((g) => g.choose)
    .flatMap((g) => (g.from && g.from.length ? g.from : catalog.products.filter((p) => p.tiers.includes(g.tier ?? '')).map((p) => p.id)));
}

/** A bundle's chosen clouds: the one the question needs first, then the next eligible ones. */
export function chooseClouds(offer: CatalogOffer, catalog: CatalogDoc, wanted: string | null): string[] {
  const n = bundleSize(offer);
  if (n === 0) return [];
  const eligible = eligibleClouds(offer, catalog);
  const picked: string[] = [];
  if (wanted && eligible.includes(wanted)) picked.push(wanted);
  for (const c of eligible) {
    if (picked.length >= n) break;
    if (!picked.includes(c)) picked.push(c);
  }
  return picked;
}

/** Every offer that would allow `q`, cheapest first (ties: catalog order). */
export function offersUnlocking(
  tg: TollgateModule,
  catalog: CatalogDoc,
  current: Grant[],
  q: AccessQuestion,
  nowMs: number,
): OfferChoice[] {
  const wanted = productOf(q, catalog);
  const loaded = tg.loadCatalog(catalog);
  const out: OfferChoice[] = [];
  for (const offer of catalog.offers) {
    if (!offer.grants || offer.grants.length === 0) continue;
    const clouds = chooseClouds(offer, catalog, wanted);
    const engine = new tg.Engine(loaded, { grants: [...current, ...grantsOf(offer, catalog, clouds, nowMs)] });
    try {
      if (ask(engine, q, nowMs).allowed) out.push({ offer, clouds });
    } catch {
      /* a malformed question is shown by the gate itself */
    } finally {
      engine.free?.();
    }
  }
  return out.sort((a, b) => a.offer.price.amount - b.offer.price.amount);
}
