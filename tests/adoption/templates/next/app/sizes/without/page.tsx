'use client';
// For `cargo xtask bench`: sizes/with without tollgate (the catalog is not shipped either).
import { useEffect, useState } from 'react';
import { rows } from '@/lib/rows';

export default function WithoutTollgate() {
  const [pro, setPro] = useState<boolean | null>(null);
  useEffect(() => {
    setPro(rows.some((r) => r.cloud_id === 'creation' && r.status === 'active' && r.tier === 'pro'));
  }, []);
  return <button id="pro-tool" data-decided={String(pro !== null)} disabled={!pro}>Pro export</button>;
}
