// Which catalog offers would unlock a question, decided by the core for the user's
// current grants. No plan names, prices or catalog rules live in this code.

import type { AccessQuestion, CatalogDoc, CatalogOffer, Grant, MoneyFormat, Replaced, TollgateModule } from 'tollgate-react';

export interface OfferChoice {
  offer: CatalogOffer;
  /** Products preselected for a bundle (`metadata.clouds`), empty otherwise. */
  clouds: string[];
  /** The products a bundle's buyer may choose from. */
  eligible: string[];
  /** How many products a bundle's buyer chooses (0: not a bundle). */
  choose: number;
  /** The running subscription this offer replaces (a change of it, not a second one). */
  replaces: Replaced | null;
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

/**
 * Every offer that would allow `q` for a subject holding `current`, cheapest first, as
 * the core decides it (`Engine.offersUnlocking`): none it holds already, each meeting
 * every requirement, a bundle with the products it preselects and may choose from.
 */
export function offersUnlocking(
  tg: TollgateModule,
  catalog: CatalogDoc,
  current: Grant[],
  q: AccessQuestion,
  nowMs: number,
): OfferChoice[] {
  const engine = new tg.Engine(tg.loadCatalog(catalog), { grants: current });
  try {
    return engine.offersUnlocking(q, nowMs).flatMap((u) => {
      const offer = catalog.offers.find((o) => o.key === u.upgrade.offer);
      return offer ? [{ offer, clouds: u.clouds, eligible: u.eligible, choose: u.choose, replaces: u.replaces ?? null }] : [];
    });
  } catch {
    /* a malformed question is shown by the gate itself */
    return [];
  } finally {
    engine.free?.();
  }
}
