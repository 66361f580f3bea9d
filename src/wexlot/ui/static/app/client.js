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
 * Plain fetch to one of our APIs (`/realtime/v1/api/…`, `/auth/v1/admin/…`, which supabase-js does not
 * wrap for a browser) with the anon key and the session's bearer token; `body` is sent as JSON. Returns
 * the Response; throws on network errors and timeouts, and (code 'no_session') when not signed in.
 */
export async function apiFetch(path, { method = 'GET', body, headers = {}, timeoutMs = 15_000 } = {}) {
  const { data } = await supabase.auth.getSession()
  const token = data.session?.access_token
  if (!token) throw Object.assign(new Error('You are not signed in.'), { code: 'no_session', status: 401 })
  return fetch(`${API_URL}${path}`, {
    method,
    headers: {
      apikey: ANON_KEY,
      Authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    signal: AbortSignal.timeout(timeoutMs),
  })
}

/** apiFetch() of `/realtime/v1/api/<path>` (changes, publication, status). */
export const realtimeApi = (path, options) => apiFetch(`/realtime/v1/api/${path}`, options)
