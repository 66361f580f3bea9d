// The one supabase-js client of the app (the unmodified official SDK, vendored), exposed as window.supabase.

import { createClient } from '../vendor/supabase.js'

export const API_URL = window.location.origin
export const ANON_KEY = document.querySelector('meta[name="wexlot-anon-key"]')?.content ?? ''

export const supabase = createClient(API_URL, ANON_KEY, {
  auth: { persistSession: true, autoRefreshToken: true, detectSessionInUrl: false, storageKey: 'wexlot-auth' },
  // checkpoints=1: each channel also gets a `position` broadcast after its join and after every batch
  // of changes, which is what the catch-up after a reconnect starts from (see sync.js).
  realtime: { params: { checkpoints: '1' } },
})

// For the console: `window.supabase.getChannels()` lists the 7 table channels and their states.
window.supabase = supabase

/**
 * Plain fetch to /realtime/v1/api/* with the anon key and the session's bearer token (supabase-js
 * has no wrapper for these endpoints). Returns the Response; throws on network errors and timeouts.
 */
export async function realtimeApi(path, { timeoutMs = 15_000 } = {}) {
  const { data } = await supabase.auth.getSession()
  const token = data.session?.access_token
  if (!token) throw new Error('not signed in')
  return fetch(`${API_URL}/realtime/v1/api/${path}`, {
    headers: { apikey: ANON_KEY, Authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(timeoutMs),
  })
}
