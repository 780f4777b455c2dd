// How the stand-in's pages show an amount in minor units: the core's formatter (the
// package's `formatMoney`), the same text the app's offers and upgrades show.

import { getTollgate } from 'tollgate-react/server';

/** `showAmount(minor, currency)`, once the package is loaded on this server. */
export async function amountFormatter(): Promise<(minor: number, currency: string) => string> {
  const tg = await getTollgate();
  return (amount, currency) => tg.formatMoney({ amount, currency });
}
