'use client';

// A new organization (POST /v1/orgs to the Org Seats worker): the signed-in user becomes
// its owner, and goes to its page.

import { useRouter } from 'next/navigation';
import { useState } from 'react';

import { postWorker } from '@/lib/billing';

export function CreateOrganization({ workerUrl, accessToken }: { workerUrl: string; accessToken: string }) {
  const router = useRouter();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function create(e: React.FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const name = String(new FormData(e.currentTarget).get('name') ?? '');
    setBusy(true);
    setError(null);
    const a = await postWorker<{ id: string }>(workerUrl, accessToken, '/v1/orgs', { name });
    setBusy(false);
    if (!a.ok) return setError(`${a.message} (${a.error})`);
    router.push(`/orgs/${a.body.id}`);
  }

  return (
    <form className="stack card" onSubmit={create} data-testid="create-org">
      <h2>New organization</h2>
      <label>
        Name
        <input name="name" required maxLength={200} data-testid="org-name" />
      </label>
      <button type="submit" disabled={busy} data-testid="create-org-submit">
        {busy ? 'Creating…' : 'Create'}
      </button>
      {error ? (
        <p className="message error" data-testid="create-org-error">
          {error}
        </p>
      ) : null}
    </form>
  );
}
