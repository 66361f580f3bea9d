// Snapshot + live stream + catch-up with the unmodified supabase-js, through a TCP proxy that the test
// side cuts mid-stream (tests/support/tcp_proxy.py) while its writer keeps changing contacts through
// REST and directly in the database. The client does what a WeXlot web app does:
//   subscribe (socket param checkpoints=1: a `position` broadcast after the join and after every
//   transaction that delivered events) → load a REST snapshot → apply buffered events; on every later
//   SUBSCRIBED fetch /realtime/v1/api/changes?since=<last position> and apply that before the events
//   buffered meanwhile. Rows are kept by id with a version check (INSERT/UPDATE only when newer,
//   DELETE removes). At the end the local rows must equal the database's exactly.
// Run by tests/compat/test_realtime_js.py (it provides WEXLOT_RT_CONTROL and WEXLOT_PROXY_URL).
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { env, ok, tag } from './env.mjs'
import { closeAll, control, enabled, proxyUrl, signInRt, sleep } from './realtime-support.mjs'

const t = tag()
// The app waits this long after SUBSCRIBED before loading the snapshot / catching up, so that live
// events overlap with both (they are buffered meanwhile): duplicates must then be harmless.
const OVERLAP_MS = 300
let repB

/** The app's local copy of the contacts tagged `t`, with counters for the report. */
class LocalContacts {
  constructor(viewer) {
    this.viewer = viewer
    this.rows = new Map() // id -> version
    this.seen = new Map() // "id@version" -> source that delivered it first
    this.applied = { snapshot: 0, live: 0, catchup: 0 }
    this.stale = { live: 0, catchup: 0 } // not newer than the local row: ignored by the version check
    this.deleted = { live: 0, catchup: 0 }
    this.noopDeletes = { live: 0, catchup: 0 } // DELETE of a row we do not have
    this.duplicates = { live_live: 0, live_catchup: 0, catchup_live: 0, catchup_catchup: 0, snapshot_live: 0, snapshot_catchup: 0 }
    this.reapplied = 0 // an (id, version) applied a second time (harmless only if a later event fixes it)
    this.forbidden = 0 // events showing a row rep B may not read
    this.liveOutOfOrder = 0 // a live version not newer than an earlier live version of the same row
    this.lastLive = new Map()
    this.other = 0 // events about rows of other tests
  }

  snapshot(rows) {
    for (const row of rows) {
      this.rows.set(row.id, row.version)
      this.seen.set(`${row.id}@${row.version}`, 'snapshot')
      this.applied.snapshot++
    }
  }

  apply(source, ev) {
    const row = ev.type === 'DELETE' ? ev.old : ev.new
    if (row.visibility === 'private' && row.owner_id !== this.viewer) this.forbidden++
    if (ev.type === 'DELETE') {
      if (this.rows.delete(row.id)) this.deleted[source]++
      else this.noopDeletes[source]++
      return
    }
    if (row.last_name !== t) {
      this.other++
      return
    }
    const key = `${row.id}@${row.version}`
    const first = this.seen.get(key)
    if (first) this.duplicates[`${first}_${source}`]++
    else this.seen.set(key, source)
    if (source === 'live') {
      if ((this.lastLive.get(row.id) ?? 0) >= row.version) this.liveOutOfOrder++
      this.lastLive.set(row.id, row.version)
    }
    const local = this.rows.get(row.id)
    if (local === undefined || row.version > local) {
      this.rows.set(row.id, row.version)
      this.applied[source]++
      if (first) this.reapplied++
    } else {
      this.stale[source]++
    }
  }

  list() {
    return [...this.rows].map(([id, version]) => ({ id, version })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }
}

/** One row change, as delivered live (supabase-js payload) or by catch-up (server JSON). */
const fromLive = (p) => ({ type: p.eventType, new: p.new, old: p.old })
const fromCatchUp = (c) => ({ type: c.type, new: c.record ?? {}, old: c.old_record ?? {} })

if (enabled) {
  after(() => closeAll(repB?.client))

  test('snapshot + live stream + catch-up after a cut connection lose nothing and apply nothing twice', async () => {
    assert.ok(proxyUrl, 'WEXLOT_PROXY_URL is not set')
    const started = Date.now()
    const timeline = []
    const mark = (what) => timeline.push(`${Date.now() - started}ms ${what}`)
    // Everything this client does goes through the proxy: sign-in, REST, the socket, catch-up.
    repB = await signInRt('rep_b', { url: proxyUrl, params: { checkpoints: '1' } })
    const local = new LocalContacts(repB.staff.id)
    let lastPosition = null
    const positions = []
    let buffering = true
    let buffer = []
    let subscribed = 0
    let catchUpRequests = 0
    let catchUpChanges = 0
    let expired = 0
    const work = [] // snapshot and catch-up tasks (their errors fail the test)

    const flush = () => {
      for (const ev of buffer) local.apply('live', ev)
      buffer = []
      buffering = false
    }
    const catchUp = async (since) => {
      for (let page = 0; page < 20; page++) {
        const { data } = await repB.client.auth.getSession()
        let response
        for (let attempt = 0; ; attempt++) {
          try {
            response = await fetch(`${proxyUrl}/realtime/v1/api/changes?since=${since}&tables=contacts`, {
              headers: { apikey: env.anonKey, Authorization: `Bearer ${data.session.access_token}` },
              signal: AbortSignal.timeout(10_000),
            })
            break
          } catch (err) {
            if (attempt >= 10) throw err
            await sleep(300) // the connection may still be settling after the outage
          }
        }
        catchUpRequests++
        if (response.status === 410) { // history gone: an app would refetch the snapshot instead
          expired++
          return
        }
        assert.equal(response.status, 200, await response.clone().text())
        const body = await response.json()
        mark(`catch-up since ${since}: ${body.changes.length} changes to ${body.position}, complete=${body.complete}`)
        for (const change of body.changes) {
          assert.equal(change.table, 'contacts')
          assert.ok(change.position > since, `catch-up change ${change.position} not after ${since}`)
          local.apply('catchup', fromCatchUp(change))
        }
        catchUpChanges += body.changes.length
        lastPosition = Math.max(lastPosition ?? 0, body.position)
        if (body.complete) return
        since = body.position
      }
      assert.fail('catch-up did not complete in 20 pages')
    }
    const onStatus = (status, err) => {
      mark(`${status}${err ? ` (${err.message})` : ''}`)
      if (status !== 'SUBSCRIBED') return
      subscribed++
      buffering = true
      if (subscribed === 1) {
        work.push((async () => {
          await sleep(OVERLAP_MS)
          const rows = ok(await repB.client.from('contacts').select('id, version').eq('last_name', t), 'snapshot')
          mark(`snapshot: ${rows.length} rows`)
          local.snapshot(rows)
          flush()
        })())
      } else {
        const since = lastPosition // captured now: later `position` broadcasts belong to the new join
        work.push(sleep(OVERLAP_MS).then(() => catchUp(since)).then(flush))
      }
    }
    const onChange = (payload) => {
      const ev = fromLive(payload)
      if (buffering) buffer.push(ev)
      else local.apply('live', ev)
    }

    await control('/scenario/start', { tag: t }) // the writer starts now and races with subscribe + snapshot
    const channel = repB.client
      .channel(`sync-${t}`)
      .on('postgres_changes', { event: '*', schema: 'public', table: 'contacts' }, onChange)
      .on('broadcast', { event: 'position' }, ({ payload }) => {
        positions.push(payload.position)
        lastPosition = Math.max(lastPosition ?? 0, payload.position)
      })
    channel.subscribe(onStatus)

    // Live: subscribed, snapshot applied, first checkpoint received. Then the writer cuts the connection.
    const waitUntil = async (what, condition, timeout = 20_000) => {
      const deadline = Date.now() + timeout
      while (!condition()) {
        if (Date.now() > deadline) assert.fail(`${what} within ${timeout} ms; timeline: ${timeline.join('; ')}`)
        await sleep(50)
      }
    }
    await waitUntil('first SUBSCRIBED, snapshot and checkpoint', () => subscribed >= 1 && !buffering && positions.length > 0)
    mark(`live at position ${lastPosition}`)
    await control('/scenario/ready')
    const result = await control('/scenario/result') // waits for the writer (bounded on the test side)
    mark(`writer done: ${JSON.stringify({ ...result, log: undefined })}`)
    assert.equal(result.error, null, `writer failed: ${result.error}; log ${result.log}`)
    assert.ok(result.finished && result.ops === 50, JSON.stringify(result))
    assert.ok(result.cut_connections >= 1, 'the proxy cut no connection')

    // Converge: re-subscribed, caught up, and the last live events applied.
    const truth = await control(`/scenario/truth?tag=${t}`)
    const same = () => JSON.stringify(local.list()) === JSON.stringify(truth)
    await waitUntil('re-SUBSCRIBED after the cut', () => subscribed >= 2, 30_000).catch(() => {})
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline && !(same() && !buffering && subscribed >= 2)) await sleep(100)
    await Promise.all(work)
    mark(`final: ${local.rows.size} local rows, ${truth.length} in the database`)

    // Rep B's own REST read agrees with the test's service-key read (same access rule as realtime).
    const own = ok(await repB.client.from('contacts').select('id, version').eq('last_name', t).order('id'), 'own read')
    const report = {
      scenario: 'reconnect',
      backend: env.backend,
      final_equal: same(),
      rows: truth.length,
      subscribed,
      applied: local.applied,
      stale: local.stale,
      deleted: local.deleted,
      noop_deletes: local.noopDeletes,
      duplicates: local.duplicates,
      reapplied: local.reapplied,
      forbidden: local.forbidden,
      live_out_of_order: local.liveOutOfOrder,
      other_rows: local.other,
      positions: positions.length,
      last_position: lastPosition,
      catch_up_requests: catchUpRequests,
      catch_up_changes: catchUpChanges,
      expired,
      timeline,
    }
    await control('/report', report)
    console.log(`reconnect report: ${JSON.stringify(report)}`)

    assert.deepEqual(local.list(), truth, `local rows differ from the database; timeline: ${timeline.join('; ')}`)
    assert.deepEqual(own, truth, "rep B's REST read differs from the service-key read")
    assert.ok(subscribed >= 2, `no re-SUBSCRIBED after the cut: ${timeline.join('; ')}`)
    assert.equal(expired, 0, 'catch-up answered 410 position_expired')
    assert.ok(local.applied.catchup > 0, 'nothing was applied from catch-up: the outage lost nothing?')
    assert.equal(local.forbidden, 0, 'an event showed a row rep B may not read')
    assert.equal(local.duplicates.live_live, 0, 'the live stream delivered an (id, version) twice')
    assert.equal(local.duplicates.catchup_catchup, 0, 'catch-up delivered an (id, version) twice')
    assert.equal(local.liveOutOfOrder, 0, 'live events of a row arrived out of commit order')
    for (let i = 1; i < positions.length; i++) {
      // Checkpoints never go backwards, except the one after a re-join may repeat the last one.
      assert.ok(positions[i] >= positions[i - 1], `checkpoint ${positions[i]} after ${positions[i - 1]}`)
    }
  })
}
