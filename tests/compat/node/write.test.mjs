// Upserts, optimistic concurrency on `version`, and the PostgREST error codes supabase-js surfaces.
import assert from 'node:assert/strict'
import { before, test } from 'node:test'

import { fails, ok, signIn, tag } from './env.mjs'

const t = tag()
let admin
let rep

before(async () => {
  admin = await signIn('admin')
  rep = await signIn('rep_a')
})

test('upsert with onConflict merges, ignoreDuplicates keeps the existing row', async () => {
  const db = admin.client
  const mail = ok(await db.from('platforms').insert({ name: `Mail ${t}`, kind: 'email' }).select().single())

  const merged = ok(
    await db.from('platforms').upsert({ name: `Mail ${t}`, kind: 'mail' }, { onConflict: 'name' }).select(),
  )
  assert.equal(merged.length, 1)
  assert.equal(merged[0].id, mail.id)
  assert.equal(merged[0].kind, 'mail')
  assert.equal(merged[0].version, 2)

  const ignored = ok(
    await db
      .from('platforms')
      .upsert(
        [
          { name: `Mail ${t}`, kind: 'ignored' },
          { name: `Phone ${t}`, kind: 'phone' },
        ],
        { onConflict: 'name', ignoreDuplicates: true },
      )
      .select('name, kind'),
  )
  assert.deepEqual(ignored, [{ name: `Phone ${t}`, kind: 'phone' }])
  const kinds = ok(await db.from('platforms').select('name, kind').in('name', [`Mail ${t}`, `Phone ${t}`]).order('name'))
  assert.deepEqual(kinds, [
    { name: `Mail ${t}`, kind: 'mail' },
    { name: `Phone ${t}`, kind: 'phone' },
  ])

  // Upsert on the primary key (the default conflict target), without asking for rows back.
  const bare = await db.from('platforms').upsert({ id: mail.id, name: `E-mail ${t}`, kind: 'mail' })
  assert.equal(bare.error, null)
  assert.equal(bare.data, null)
  const renamed = ok(await db.from('platforms').select('name, version').eq('id', mail.id).single())
  assert.deepEqual(renamed, { name: `E-mail ${t}`, version: 3 })
})

test('a conditional update on a stale version touches 0 rows', async () => {
  const db = rep.client
  const row = ok(await db.from('contacts').insert({ first_name: 'Vera', last_name: t }).select().single())
  assert.equal(row.version, 1)
  const first = ok(
    await db.from('contacts').update({ notes: 'first' }).eq('id', row.id).eq('version', 1).select('notes, version'),
  )
  assert.deepEqual(first, [{ notes: 'first', version: 2 }])
  // A second writer still holding version 1 changes nothing, and can tell from the result.
  const stale = await db
    .from('contacts')
    .update({ notes: 'second' }, { count: 'exact' })
    .eq('id', row.id)
    .eq('version', 1)
    .select('notes, version')
  assert.equal(stale.error, null)
  assert.deepEqual(stale.data, [])
  assert.equal(stale.count, 0)
  const staleMinimal = await db.from('contacts').update({ notes: 'third' }, { count: 'exact' }).eq('id', row.id).eq('version', 1)
  assert.equal(staleMinimal.error, null)
  assert.equal(staleMinimal.count, 0)
  const now = ok(await db.from('contacts').select('notes, version').eq('id', row.id).single())
  assert.deepEqual(now, { notes: 'first', version: 2 })
})

test('23505: a duplicate platform name is a unique violation (409)', async () => {
  ok(await admin.client.from('platforms').insert({ name: `Dup ${t}` }))
  const error = fails(await admin.client.from('platforms').insert({ name: `Dup ${t}` }), '23505', 409)
  assert.match(error.message, /duplicate key/)
  const again = fails(
    await admin.client.from('platforms').insert({ name: `Dup ${t}` }).select().single(),
    '23505',
    409,
  )
  assert.match(again.details, /name/)
})

test('42703 / PGRST204: unknown columns in select, filter and payload', async () => {
  fails(await rep.client.from('contacts').select('first_name, nope'), '42703', 400)
  fails(await rep.client.from('contacts').select('id').eq('nope', 1), '42703', 400)
  fails(await rep.client.from('contacts').select('id').order('nope'), '42703', 400)
  fails(await rep.client.from('contacts').insert({ first_name: 'X', nope: 1 }), 'PGRST204', 400)
  fails(await rep.client.from('contacts').update({ nope: 1 }).eq('last_name', t), 'PGRST204', 400)
})

test('PGRST205: an unknown table (404)', async () => {
  fails(await rep.client.from('nope').select('*'), 'PGRST205', 404)
  fails(await rep.client.from('users').select('*'), 'PGRST205', 404)
})

test('42501: a rep may not write staff or platforms (403); other errors keep their codes', async () => {
  fails(await rep.client.from('staff').insert({ full_name: 'Sneaky', email: `sneaky-${t}@example.com` }), '42501', 403)
  fails(await rep.client.from('platforms').insert({ name: `Sneaky ${t}` }), '42501', 403)
  // Not-null, check and type errors.
  fails(await rep.client.from('deals').insert({ amount: 1 }), '23502', 400)
  fails(await rep.client.from('deals').insert({ title: 'x', stage: 'maybe' }), '23514', 400)
  fails(await rep.client.from('contacts').select('id').eq('id', 'not-a-uuid'), '22P02', 400)
  fails(await rep.client.from('contacts').delete().neq('id', 'not-a-uuid'), '22P02', 400)
})
