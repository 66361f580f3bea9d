// /auth/v1 through supabase-js: password sign-in for every role, bad password, getUser,
// refreshSession and signOut (the REST requests follow the session the client holds).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { isAuthError } from '@supabase/supabase-js'

import { UUID, env, newClient, ok, signIn } from './env.mjs'

test('every staff role signs in with signInWithPassword and gets its staff row', async () => {
  for (const [who, user] of Object.entries(env.users)) {
    const { client, session, user: authUser, staff } = await signIn(who)
    assert.match(authUser.id, UUID)
    assert.equal(authUser.email, user.email)
    assert.equal(authUser.aud, 'authenticated')
    assert.equal(session.token_type, 'bearer')
    assert.ok(session.expires_in > 120, `expires_in ${session.expires_in}`)
    assert.ok(session.expires_at > Date.now() / 1000)
    assert.ok(session.refresh_token)
    // The access token is a three-part JWT whose subject is the user.
    const claims = JSON.parse(Buffer.from(session.access_token.split('.')[1], 'base64url').toString())
    assert.equal(claims.sub, authUser.id)
    assert.equal(claims.role, 'authenticated')
    assert.equal(staff.role, user.role)
    assert.equal(staff.full_name, user.name)
    const { data } = await client.auth.getSession()
    assert.equal(data.session.access_token, session.access_token)
    await client.auth.signOut()
  }
})

test('a wrong password is invalid_credentials and leaves the client signed out', async () => {
  const client = newClient()
  const { data, error } = await client.auth.signInWithPassword({
    email: env.users.rep_a.email,
    password: 'definitely-not-the-password',
  })
  assert.ok(error, 'sign-in with a wrong password succeeded')
  assert.equal(error.name, 'AuthApiError')
  assert.equal(error.code, 'invalid_credentials')
  assert.equal(error.status, 400)
  assert.equal(data.session, null)
  assert.equal((await client.auth.getSession()).data.session, null)
})

test('getUser returns the signed-in user', async () => {
  const { client, user } = await signIn('manager')
  const { data, error } = await client.auth.getUser()
  assert.equal(error, null)
  assert.equal(data.user.id, user.id)
  assert.equal(data.user.email, env.users.manager.email)
  await client.auth.signOut()
})

test('refreshSession rotates the tokens and REST keeps working with the new access token', async () => {
  const { client, session, user } = await signIn('rep_a')
  // iat has a one-second resolution: make sure the new access token cannot equal the old one.
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const { data, error } = await client.auth.refreshSession()
  assert.equal(error, null, error?.message)
  assert.ok(data.session)
  assert.notEqual(data.session.refresh_token, session.refresh_token)
  assert.notEqual(data.session.access_token, session.access_token)
  assert.equal(data.user.id, user.id)
  assert.equal((await client.auth.getSession()).data.session.access_token, data.session.access_token)
  const me = ok(await client.from('staff').select('email').eq('user_id', user.id).single())
  assert.equal(me.email, env.users.rep_a.email)
  await client.auth.signOut()
})

test('signOut ends the session: REST falls back to anon and the refresh token is dead', async () => {
  const { client, session } = await signIn('admin')
  assert.ok(ok(await client.from('staff').select('id')).length >= 4)
  const { error } = await client.auth.signOut()
  assert.equal(error, null, error?.message)
  assert.equal((await client.auth.getSession()).data.session, null)
  // Without a session the client sends the anon key as bearer: anon reads nothing.
  assert.deepEqual(ok(await client.from('staff').select('id')), [])
  const refreshed = await client.auth.refreshSession({ refresh_token: session.refresh_token })
  assert.ok(isAuthError(refreshed.error), `the refresh token of a signed-out session still works: ${refreshed.error}`)
  assert.equal(refreshed.error.status, 400)
  assert.equal(refreshed.data.session, null)
})
