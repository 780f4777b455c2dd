// How the stand-in's pages show an amount in minor units (Intl knows each currency's
// number of decimals: 2 for usd and inr, 0 for jpy).

export function showAmount(minor: number, currency: string): string {
  const f = new Intl.NumberFormat('en', { style: 'currency', currency: currency.toUpperCase() });
  const digits = f.resolvedOptions().maximumFractionDigits ?? 2;
  return f.format(minor / 10 ** digits);
}
