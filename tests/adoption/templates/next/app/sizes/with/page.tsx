'use client';
// For `cargo xtask bench`: a page whose only use of tollgate is hasAccess (after init),
// measured against sizes/without, the same page deciding with a plain comparison.
import { useEffect, useState } from 'react';
import { hasAccess, init, loadCatalog, useCatalog } from 'tollgate';
import type { CatalogDoc } from 'tollgate';
import catalogJson from '@/tollgate-catalog.json';
import { rows } from '@/lib/rows';

export default function WithTollgate() {
  const [pro, setPro] = useState<boolean | null>(null);
  useEffect(() => {
    init().then(() => {
      useCatalog(loadCatalog(catalogJson as CatalogDoc));
      setPro(hasAccess(rows, 'creation', 'pro'));
    });
  }, []);
  return <button id="pro-tool" data-decided={String(pro !== null)} disabled={!pro}>Pro export</button>;
}
