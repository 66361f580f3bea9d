// Reads through supabase-js: filters, ordering, range/limit, counts, .single()/.maybeSingle(), embedding.
// One manager-owned data set, tagged so that other tests' rows never match.
import assert from 'node:assert/strict'
import { before, test } from 'node:test'

import { fails, ok, signIn, sorted, tag } from './env.mjs'

const t = tag()
let db // the manager's client
let acme
let beta
const ids = {}

before(async () => {
  ;({ client: db } = await signIn('manager'))
  ;[acme, beta] = ok(
    await db
      .from('companies')
      .insert([{ name: `Acme Corp ${t}` }, { name: `Beta Ltd ${t}` }])
      .select(),
  )
  const contacts = [
    { first_name: 'Ann', email: `ann-${t}@acme.io`, company_id: acme.id, tags: ['vip', 'west'], status: 'customer' },
    { first_name: 'Bob', email: `bob-${t}@acme.io`, company_id: acme.id, tags: [], status: 'lead' },
    { first_name: 'Cid', email: null, company_id: acme.id, tags: ['west'], status: 'lead' },
    { first_name: 'Dan', email: `dan-${t}@beta.io`, company_id: beta.id, tags: ['vip', 'east'], status: 'prospect' },
    { first_name: 'Eve', email: null, company_id: null, tags: [], status: 'lead' },
  ].map((c) => ({ ...c, last_name: t }))
  for (const c of ok(await db.from('contacts').insert(contacts).select('id, first_name'))) ids[c.first_name] = c.id
  ok(
    await db.from('deals').insert([
      { title: `Big ${t}`, amount: 125000.5, stage: 'proposal', contact_id: ids.Ann, company_id: acme.id },
      { title: `Small ${t}`, amount: 999.99, stage: 'lead', contact_id: null, company_id: beta.id },
    ]),
  )
})

/** First names of this test's contacts matching `filter`, in order. */
async function names(filter) {
  const rows = ok(await filter(db.from('contacts').select('first_name').eq('last_name', t)).order('first_name'))
  return rows.map((r) => r.first_name)
}

test('comparison filters: eq, neq, gt, gte, lt, lte', async () => {
  assert.deepEqual(await names((q) => q.eq('first_name', 'Ann')), ['Ann'])
  assert.deepEqual(await names((q) => q.neq('first_name', 'Ann')), ['Bob', 'Cid', 'Dan', 'Eve'])
  assert.deepEqual(await names((q) => q.gt('first_name', 'Cid')), ['Dan', 'Eve'])
  assert.deepEqual(await names((q) => q.gte('first_name', 'Cid')), ['Cid', 'Dan', 'Eve'])
  assert.deepEqual(await names((q) => q.lt('first_name', 'Bob')), ['Ann'])
  assert.deepEqual(await names((q) => q.lte('first_name', 'Bob')), ['Ann', 'Bob'])
  assert.deepEqual(await names((q) => q.match({ status: 'lead', company_id: acme.id })), ['Bob', 'Cid'])
})

test('pattern filters: like and ilike with % and *', async () => {
  assert.deepEqual(await names((q) => q.like('email', '%@acme.io')), ['Ann', 'Bob'])
  assert.deepEqual(await names((q) => q.like('email', '*@acme.io')), ['Ann', 'Bob'])
  assert.deepEqual(await names((q) => q.like('email', '%@ACME.io')), [])
  assert.deepEqual(await names((q) => q.ilike('email', '%@ACME.IO')), ['Ann', 'Bob'])
})

test('is null, in, cs/cd/ov on tags, not', async () => {
  assert.deepEqual(await names((q) => q.is('email', null)), ['Cid', 'Eve'])
  assert.deepEqual(await names((q) => q.in('first_name', ['Ann', 'Eve', 'Zed'])), ['Ann', 'Eve'])
  assert.deepEqual(await names((q) => q.in('status', ['customer', 'prospect'])), ['Ann', 'Dan'])
  assert.deepEqual(await names((q) => q.contains('tags', ['vip'])), ['Ann', 'Dan'])
  assert.deepEqual(await names((q) => q.contains('tags', ['vip', 'west'])), ['Ann'])
  assert.deepEqual(await names((q) => q.containedBy('tags', ['west', 'east'])), ['Bob', 'Cid', 'Eve'])
  assert.deepEqual(await names((q) => q.overlaps('tags', ['east'])), ['Dan'])
  assert.deepEqual(await names((q) => q.not('email', 'is', null)), ['Ann', 'Bob', 'Dan'])
  assert.deepEqual(await names((q) => q.not('first_name', 'in', '(Ann,Eve)')), ['Bob', 'Cid', 'Dan'])
  assert.deepEqual(await names((q) => q.not('tags', 'cs', '{vip}')), ['Bob', 'Cid', 'Eve'])
})

test('regex filters: match and imatch', async () => {
  assert.deepEqual(await names((q) => q.filter('first_name', 'match', '^[AB]')), ['Ann', 'Bob'])
  assert.deepEqual(await names((q) => q.filter('first_name', 'imatch', '^[ab]')), ['Ann', 'Bob'])
  assert.deepEqual(await names((q) => q.filter('email', 'imatch', '@ACME\\.IO$')), ['Ann', 'Bob'])
  assert.deepEqual(await names((q) => q.not('first_name', 'imatch', '^[ab]')), ['Cid', 'Dan', 'Eve'])
})

test('values with reserved and non-ASCII characters survive eq, neq, in and or', async () => {
  const odd = `odd ${t}`
  const values = ['Smith, Jr.', '(paren)', 'a+b', 'x&y=z', '100%', 'Zoë 東京', 'back\\slash', 'colon:x', 'dot.ted',
    "it's", 'Robert "Bob" Smith']
  ok(await db.from('contacts').insert(values.map((first_name) => ({ first_name, last_name: odd }))))
  for (const value of values) {
    const base = () => db.from('contacts').select('first_name').eq('last_name', odd)
    assert.deepEqual(ok(await base().eq('first_name', value), `eq ${value}`), [{ first_name: value }], `eq ${value}`)
    assert.equal(ok(await base().neq('first_name', value)).length, values.length - 1, `neq ${value}`)
    // supabase-js double-quotes an in() element only when it contains , ( or ); anything else is sent as is.
    const listed = ok(await base().in('first_name', [value, 'zzz']), `in ${value}`)
    assert.deepEqual(listed, [{ first_name: value }], `in ${value}`)
  }
  const quoted = ok(await db.from('contacts').select('first_name').eq('last_name', odd).or('first_name.eq."Smith, Jr.",first_name.eq."(paren)"'))
  assert.deepEqual(sorted(quoted, 'first_name'), ['(paren)', 'Smith, Jr.'])
})

test('or, with nested and, and values containing spaces', async () => {
  assert.deepEqual(await names((q) => q.or(`first_name.eq.Ann,email.ilike.*@beta.io`)), ['Ann', 'Dan'])
  assert.deepEqual(await names((q) => q.or('first_name.eq.Ann,and(email.is.null,first_name.gt.Cid)')), ['Ann', 'Eve'])
  const companies = ok(await db.from('companies').select('name').or(`name.eq."Acme Corp ${t}",name.eq.nothing`))
  assert.deepEqual(companies, [{ name: `Acme Corp ${t}` }])
  // URLSearchParams sends spaces as "+"; the server must decode them.
  assert.deepEqual(ok(await db.from('companies').select('id').eq('name', `Beta Ltd ${t}`)), [{ id: beta.id }])
})

test('order, range and limit', async () => {
  const ordered = ok(
    await db
      .from('contacts')
      .select('first_name')
      .eq('last_name', t)
      .order('email', { ascending: false, nullsFirst: true })
      .order('first_name'),
  )
  assert.deepEqual(ordered.map((r) => r.first_name), ['Cid', 'Eve', 'Dan', 'Bob', 'Ann'])
  const page = ok(await db.from('contacts').select('first_name').eq('last_name', t).order('first_name').range(1, 3))
  assert.deepEqual(page.map((r) => r.first_name), ['Bob', 'Cid', 'Dan'])
  const top = ok(await db.from('contacts').select('first_name').eq('last_name', t).order('first_name', { ascending: false }).limit(2))
  assert.deepEqual(top.map((r) => r.first_name), ['Eve', 'Dan'])
})

test('count exact, with head:true and alongside a limited page', async () => {
  const head = await db.from('contacts').select('*', { count: 'exact', head: true }).eq('last_name', t)
  assert.equal(head.error, null)
  assert.equal(head.count, 5)
  assert.equal(head.data, null)
  const none = await db.from('contacts').select('*', { count: 'exact', head: true }).eq('last_name', `none ${t}`)
  assert.equal(none.error, null)
  assert.equal(none.count, 0)
  const page = await db.from('contacts').select('first_name', { count: 'exact' }).eq('last_name', t).order('first_name').limit(2)
  assert.equal(page.error, null)
  assert.equal(page.count, 5)
  assert.equal(page.status, 206)
  assert.deepEqual(page.data, [{ first_name: 'Ann' }, { first_name: 'Bob' }])
})

test('.single() returns one object; no row or several rows is PGRST116 (406)', async () => {
  const ann = ok(await db.from('contacts').select('first_name, tags').eq('id', ids.Ann).single())
  assert.deepEqual(ann, { first_name: 'Ann', tags: ['vip', 'west'] })
  fails(await db.from('contacts').select('*').eq('last_name', t).eq('first_name', 'Nobody').single(), 'PGRST116', 406)
  fails(await db.from('contacts').select('*').eq('last_name', t).eq('status', 'lead').single(), 'PGRST116', 406)
})

test('.maybeSingle() returns null for no row and the object for one', async () => {
  const none = await db.from('contacts').select('first_name').eq('last_name', t).eq('first_name', 'Nobody').maybeSingle()
  assert.equal(none.error, null)
  assert.equal(none.data, null)
  const one = ok(await db.from('contacts').select('first_name').eq('id', ids.Eve).maybeSingle())
  assert.deepEqual(one, { first_name: 'Eve' })
})

test('embedding: deals with company:companies(name) and contact:contacts(*)', async () => {
  const deals = ok(
    await db
      .from('deals')
      .select('title, amount, company:companies(name), contact:contacts(*)')
      .in('title', [`Big ${t}`, `Small ${t}`])
      .order('title'),
  )
  assert.equal(deals.length, 2)
  const [big, small] = deals
  assert.equal(big.title, `Big ${t}`)
  assert.equal(big.amount, 125000.5)
  assert.deepEqual(big.company, { name: `Acme Corp ${t}` })
  assert.equal(big.contact.id, ids.Ann)
  assert.equal(big.contact.first_name, 'Ann')
  assert.deepEqual(big.contact.tags, ['vip', 'west'])
  assert.equal(big.contact.company_id, acme.id)
  assert.equal(small.amount, 999.99)
  assert.deepEqual(small.company, { name: `Beta Ltd ${t}` })
  assert.equal(small.contact, null)
})

test('embedding: companies with contacts(first_name), ordered in the embed; !inner filters parents', async () => {
  const companies = ok(
    await db
      .from('companies')
      .select('name, contacts(first_name)')
      .in('id', [acme.id, beta.id])
      .order('name')
      .order('first_name', { referencedTable: 'contacts', ascending: false }),
  )
  assert.deepEqual(companies, [
    { name: `Acme Corp ${t}`, contacts: [{ first_name: 'Cid' }, { first_name: 'Bob' }, { first_name: 'Ann' }] },
    { name: `Beta Ltd ${t}`, contacts: [{ first_name: 'Dan' }] },
  ])
  const inner = ok(
    await db
      .from('contacts')
      .select('first_name, companies!inner(name)')
      .eq('last_name', t)
      .eq('companies.name', `Beta Ltd ${t}`),
  )
  assert.deepEqual(inner, [{ first_name: 'Dan', companies: { name: `Beta Ltd ${t}` } }])
  const eve = ok(await db.from('contacts').select('first_name, company:companies(name)').eq('id', ids.Eve).single())
  assert.deepEqual(eve, { first_name: 'Eve', company: null })
})
