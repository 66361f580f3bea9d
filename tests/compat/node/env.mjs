// Shared set-up for the node:test files: server coordinates from the environment (set by
// tests/compat/test_supabase_js.py) and small helpers around the UNMODIFIED @supabase/supabase-js.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'

import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws'

function required(name) {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set; run these tests through tests/compat/test_supabase_js.py`)
  return value
}

export const env = {
  backend: process.env.WEXLOT_BACKEND ?? 'unknown',
  url: required('WEXLOT_URL'),
  anonKey: required('WEXLOT_ANON_KEY'),
  serviceKey: required('WEXLOT_SERVICE_KEY'),
  // { admin|manager|rep_a|rep_b: { email, password, role, name } }
  users: JSON.parse(required('WEXLOT_USERS')),
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Node 20 has no global WebSocket, so createClient needs a transport even if Realtime is unused. */
export function newClient(key = env.anonKey) {
  return createClient(env.url, key, { realtime: { transport: WebSocket } })
}

/** A unique string to keep one test's rows apart from every other test's on the shared server. */
export function tag() {
  return randomUUID().slice(0, 8)
}

/** A client signed in through signInWithPassword as one of the staff logins, with its staff row. */
export async function signIn(who) {
  const user = env.users[who]
  assert.ok(user, `no test user ${who}`)
  const client = newClient()
  const { data, error } = await client.auth.signInWithPassword({ email: user.email, password: user.password })
  assert.equal(error, null, `sign-in as ${who} failed: ${error?.message}`)
  const staff = ok(
    await client.from('staff').select('id, role, full_name, email').eq('user_id', data.user.id).single(),
    `staff row of ${who}`,
  )
  return { client, session: data.session, user: data.user, staff }
}

/** The data of a successful PostgREST/GoTrue result; fails with the error otherwise. */
export function ok(result, what = 'request') {
  assert.equal(result.error, null, `${what} failed: ${JSON.stringify(result.error)} (status ${result.status})`)
  return result.data
}

/** Asserts a failed result with this PostgREST error code (and HTTP status, when given). */
export function fails(result, code, status) {
  assert.ok(result.error, `expected error ${code}, got data ${JSON.stringify(result.data)} (status ${result.status})`)
  assert.equal(result.error.code, code, `unexpected error ${JSON.stringify(result.error)}`)
  for (const field of ['message', 'details', 'hint']) assert.ok(field in result.error, `error lacks ${field}`)
  if (status !== undefined) assert.equal(result.status, status, `status of ${JSON.stringify(result.error)}`)
  assert.equal(result.data, null)
  return result.error
}

export const sorted = (rows, key) => rows.map((r) => r[key]).sort()
