// "Import CSV" on the contacts and companies lists: one dialog, three steps.
//
//   1. Choose a file (or paste text). Parsed as RFC 4180 (csvparse.js); UTF-8, else Windows-1252.
//   2. Map each CSV column to a field of the table (auto-matched by name, label or a common synonym),
//      or ignore it. Fields that are required and have no default must be mapped.
//   3. Preview: every row checked as the form would check it, plus company names → company_id and
//      owner email/name → owner_id (managers and admins only; otherwise the server makes the importer
//      the owner). Problems are listed by row, field and message; nothing can be imported while any
//      row has one.
//
// The import is one bulk insert, which the server runs as one transaction: all rows or none. If the
// server still refuses, its message is shown (at a row and field when it names them) and nothing was
// written. The rows then reach every open list, this one included, through the live stream.

import { supabase } from './client.js'
import { parseCsv, sniffDelimiter, unguard } from './csvparse.js'
import { h, mount, newId, uid } from './dom.js'
import { explainServerError, openDialog } from './form.js'
import { lookups } from './lookups.js'
import { notify } from './notices.js'
import { DEFS, EMAIL, capital, describe, isElevated, plainLabel } from './schema.js'

const MAX_ROWS = 5000
const MAX_BYTES = 5 * 1024 * 1024
const SHOWN_PROBLEMS = 100
const PREVIEW_ROWS = 5
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const STEPS = 3

// Other names a column for a field often has (compared without case, spaces or punctuation).
const SYNONYMS = {
  contacts: {
    first_name: ['given name', 'forename', 'first'],
    last_name: ['surname', 'family name', 'last'],
    email: ['e-mail', 'email address', 'e-mail address', 'mail'],
    phone: ['telephone', 'phone number', 'tel', 'mobile'],
    title: ['job', 'position', 'role'],
    company_id: ['company', 'company name', 'organization', 'organisation', 'employer', 'account'],
    status: ['contact status'],
    source: ['lead source'],
    tags: ['tag', 'labels'],
    owner_id: ['owner', 'owner email', 'owner name', 'contact owner'],
    notes: ['note', 'comments', 'description'],
  },
  companies: {
    name: ['company', 'company name', 'organization', 'organisation', 'account'],
    domain: ['domain name'],
    size: ['employees', 'company size', 'headcount'],
    website: ['url', 'web site', 'homepage'],
    phone: ['telephone', 'phone number', 'tel'],
    owner_id: ['owner', 'owner email', 'owner name', 'account owner'],
    notes: ['note', 'comments', 'description'],
  },
}

const norm = (text) => String(text ?? '').toLowerCase().replace(/[^a-z0-9]/g, '')
const plural = (n, def) => `${n} ${n === 1 ? def.singular : def.title.toLowerCase()}`

/** Column index → field name ('' = ignore): exact name or label first, then synonyms; each field once. */
export function autoMap(headers, fields, table) {
  const mapping = headers.map(() => '')
  const used = new Set()
  const synonyms = SYNONYMS[table] ?? {}
  const passes = [
    (f) => [f.name, plainLabel(f), f.label],
    (f) => [...(synonyms[f.name] ?? []), f.name.replace(/_id$/, '')],
  ]
  for (const names of passes) {
    headers.forEach((header, i) => {
      if (mapping[i]) return
      const key = norm(header)
      const field = fields.find((f) => !used.has(f.name) && names(f).some((n) => norm(n) === key))
      if (field) {
        mapping[i] = field.name
        used.add(field.name)
      }
    })
  }
  return mapping
}

/** Reads a File as text: UTF-8 when it is valid UTF-8, else Windows-1252 (older spreadsheet exports). */
async function readFile(file) {
  const bytes = await file.arrayBuffer()
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), encoding: 'UTF-8' }
  } catch {
    return { text: new TextDecoder('windows-1252').decode(bytes), encoding: 'Windows-1252' }
  }
}

// --- resolving references ---------------------------------------------------------------------------

/** Finds rows of a referenced table by id, or by any of their names (case-insensitive). */
class Resolver {
  constructor(table, choices) {
    this.table = table
    this.ids = new Map()
    this.byName = new Map()
    for (const { row } of choices) this.add(row)
  }

  add(row) {
    if (this.ids.has(row.id)) return
    this.ids.set(row.id, row)
    const names = this.table === 'staff' ? [row.email, row.full_name] : [describe(this.table, row)]
    for (const name of names) {
      const key = String(name ?? '').trim().toLowerCase()
      if (!key) continue
      if (!this.byName.has(key)) this.byName.set(key, [])
      this.byName.get(key).push(row)
    }
  }

  find(text) {
    if (UUID.test(text) && this.ids.has(text.toLowerCase())) return [this.ids.get(text.toLowerCase())]
    return this.byName.get(text.toLowerCase()) ?? []
  }
}

async function makeResolver(table, wanted) {
  const choices = await lookups.choices(table)
  const resolver = new Resolver(table, choices)
  // More rows than the cache holds: ask the server for the exact names still unknown.
  if (!lookups.complete.has(table) && table === 'companies') {
    const unknown = [...wanted].filter((name) => !resolver.find(name).length && !name.includes('"'))
    for (let i = 0; i < unknown.length; i += 100) {
      const { data, error } = await supabase.from(table).select('id,name').in('name', unknown.slice(i, i + 100))
      if (error) throw new Error(error.message)
      data.forEach((row) => resolver.add(row))
    }
  }
  return resolver
}

// --- checking rows ------------------------------------------------------------------------------------

function blankValue(field, me) {
  if (field.default !== undefined) return field.default
  if (field.defaultMe) return me.id
  if (field.type === 'tags') return []
  if (field.type === 'checkbox') return false
  return null
}

/** The value of one cell for `field`, as the API wants it, or { error }. */
function readCell(field, raw, ctx) {
  const text = unguard(raw.trim())
  const label = plainLabel(field)
  if (text === '') {
    if (field.required && field.default === undefined && !field.defaultMe) return { error: `${label} is required.` }
    return { value: blankValue(field, ctx.me) }
  }
  switch (field.type) {
    case 'email':
      return EMAIL.test(text) ? { value: text } : { error: `“${text}” is not an email address like name@example.com.` }
    case 'url':
      try {
        const url = new URL(text)
        if (url.protocol === 'http:' || url.protocol === 'https:') return { value: text }
      } catch {
        // fall through
      }
      return { error: `“${text}” is not a full web address starting with https://` }
    case 'select': {
      const option = field.options.find((o) => norm(o.value) === norm(text) || norm(o.label) === norm(text))
      if (option) return { value: option.value }
      const values = field.options.map((o) => o.value)
      return { error: `“${text}” is not a ${label.toLowerCase()}: use ${values.slice(0, -1).join(', ')} or ${values.at(-1)}.` }
    }
    case 'tags':
      return { value: [...new Set(text.split(',').map((t) => t.trim()).filter(Boolean))] }
    case 'ref': {
      const found = ctx.resolvers.get(field.name)?.find(text) ?? []
      const what = DEFS[field.ref].singular
      if (found.length === 1) return { value: found[0].id }
      if (found.length > 1) return { error: `${found.length} ${DEFS[field.ref].title.toLowerCase()} are named “${text}”: use the ${what}'s id instead.` }
      return { error: field.ref === 'staff' ? `No staff member has the email or name “${text}”.` : `No ${what} named “${text}” (that you can see).` }
    }
    case 'number':
    case 'money': {
      const n = Number(text)
      if (!Number.isFinite(n)) return { error: `“${text}” is not a number.` }
      if (field.type === 'number' && !Number.isInteger(n)) return { error: `“${text}” is not a whole number.` }
      if ((field.min !== undefined && n < field.min) || (field.max !== undefined && n > field.max)) {
        return { error: `${text} is out of range (${field.min ?? '…'} to ${field.max ?? '…'}).` }
      }
      return { value: n }
    }
    case 'checkbox': {
      const v = text.toLowerCase()
      if (['true', 'yes', 'y', '1', 'x'].includes(v)) return { value: true }
      if (['false', 'no', 'n', '0'].includes(v)) return { value: false }
      return { error: `“${text}” is not yes or no.` }
    }
    case 'date':
      return /^\d{4}-\d{2}-\d{2}$/.test(text) && !Number.isNaN(new Date(text).getTime())
        ? { value: text } : { error: `“${text}” is not a date like 2026-01-31.` }
    case 'datetime': {
      const d = new Date(text)
      return Number.isNaN(d.getTime()) ? { error: `“${text}” is not a date and time.` } : { value: d.toISOString() }
    }
    default:
      return { value: text }
  }
}

/**
 * Checks every data record. Returns { rows: [{ number, values }], problems: [{ number, field, column,
 * message }], invalid: number of rows with problems }. Fields not mapped get their default when they
 * have one (status, visibility), so every row has the same keys (the bulk insert needs that).
 */
export function checkRows({ data, headers, mapping, fields, me, resolvers }) {
  const mapped = fields.filter((f) => mapping.includes(f.name))
  const defaults = fields.filter((f) => !mapping.includes(f.name) && (f.default !== undefined || f.type === 'tags'))
  const rows = []
  const problems = []
  const bad = new Set()
  for (const { number, cells } of data) {
    const values = {}
    for (const field of defaults) values[field.name] = blankValue(field, me)
    for (const field of mapped) {
      const i = mapping.indexOf(field.name)
      const result = readCell(field, cells[i] ?? '', { me, resolvers })
      if (result.error) {
        problems.push({ number, field: field.name, label: plainLabel(field), column: headers[i], message: result.error })
        bad.add(number)
      } else {
        values[field.name] = result.value
      }
    }
    if (cells.length > headers.length && cells.slice(headers.length).some((c) => c.trim() !== '')) {
      problems.push({ number, field: '', label: '—', column: '', message: `This row has ${cells.length} values but the header has ${headers.length} columns (a comma or quote may be missing).` })
      bad.add(number)
    }
    rows.push({ number, values })
  }
  return { rows, problems, invalid: bad.size }
}

/** The row (and field) a server error is about, when the error quotes one of the values. */
function locateServerError(error, rows, fields, def) {
  const { field, message } = explainServerError(error, fields, def)
  const text = [error.message, error.details, error.hint].filter(Boolean).join(' ')
  const candidates = field ? [field] : fields
  for (const row of rows) {
    for (const f of candidates) {
      const value = row.values[f.name]
      if (typeof value === 'string' && value.length >= 3 && text.includes(value)) return { number: row.number, field: f, message }
    }
  }
  return { number: null, field, message }
}

// --- the dialog ----------------------------------------------------------------------------------------

export async function openImportDialog(view) {
  const { table, me } = view
  const def = DEFS[table]
  const fields = def.fields.filter((f) => !f.elevatedOnly || isElevated(me))
  const mustMap = fields.filter((f) => f.required && f.default === undefined && !f.defaultMe)
  const title = def.title.toLowerCase()

  const state = { source: '', headers: [], data: [], mapping: [], check: null, committing: false }
  const titleId = uid('import-title')
  const body = h('div', { class: 'csv-step' })
  const dialog = h('dialog', { class: 'csv-dialog', 'aria-labelledby': titleId, dataset: { table } },
    h('div', { class: 'dialog-body' }, h('h2', { id: titleId }, `Import ${title}`), body))
  dialog.addEventListener('cancel', (event) => state.committing && event.preventDefault())

  const stepHeading = (n, text) => h('h3', { tabindex: '-1', class: 'csv-step-title' }, h('span', { class: 'csv-step-count' }, `Step ${n} of ${STEPS}: `), text)
  const show = (...nodes) => {
    mount(body, ...nodes)
    body.querySelector('h3')?.focus()
  }
  const errorBox = () => h('div', { class: 'form-error', role: 'alert', hidden: true })
  const showError = (box, message) => {
    box.textContent = message
    box.hidden = !message
  }
  const cancelButton = () => h('button', { type: 'button', class: 'button-quiet', onclick: () => dialog.close() }, 'Cancel')

  // Step 1 ------------------------------------------------------------------------------------------------
  const chooseStep = () => {
    const fileId = uid('csv-file')
    const pasteId = uid('csv-paste')
    const hintId = uid('csv-hint')
    const fileInput = h('input', { id: fileId, type: 'file', accept: '.csv,text/csv,text/plain', 'aria-describedby': hintId })
    const paste = h('textarea', { id: pasteId, rows: 5, spellcheck: 'false', 'aria-describedby': hintId }, state.pasted ?? '')
    const error = errorBox()
    const form = h('form', { novalidate: true },
      stepHeading(1, 'Choose the file'),
      h('p', { id: hintId, class: 'hint' }, `A CSV file whose first row holds the column names (up to ${MAX_ROWS} rows). Excel, Google Sheets and most CRMs save one with “Save as CSV”.`),
      error,
      h('div', { class: 'field' }, h('label', { for: fileId }, 'CSV file'), fileInput),
      h('div', { class: 'field' }, h('label', { for: pasteId }, 'Or paste CSV text'), paste),
      h('div', { class: 'dialog-actions' }, cancelButton(), h('button', { type: 'submit' }, 'Next: match columns')),
    )
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      showError(error, '')
      const file = fileInput.files[0]
      let text = paste.value
      let source = 'the pasted text'
      if (file) {
        if (file.size > MAX_BYTES) return showError(error, `${file.name} is ${(file.size / 1048576).toFixed(1)} MB; import at most 5 MB at a time (split the file).`)
        const read = await readFile(file)
        text = read.text
        source = `${file.name}${read.encoding === 'UTF-8' ? '' : ` (read as ${read.encoding})`}`
      }
      state.pasted = paste.value
      if (!text.trim()) return showError(error, 'Choose a CSV file or paste CSV text first.')
      const { records, error: parseError } = parseCsv(text, sniffDelimiter(text))
      if (parseError) return showError(error, parseError.message)
      const headerIndex = records.findIndex((r) => r.some((c) => c.trim() !== ''))
      const headers = (records[headerIndex] ?? []).map((c, i) => c.trim() || `Column ${i + 1}`)
      // Record i is spreadsheet row i + 1; blank lines are skipped but keep the numbering.
      const data = records.map((cells, i) => ({ number: i + 1, cells })).slice(headerIndex + 1).filter((r) => r.cells.some((c) => c.trim() !== ''))
      if (!data.length) return showError(error, `${capital(source)} has no rows under its header row.`)
      if (data.length > MAX_ROWS) return showError(error, `${capital(source)} has ${data.length} rows; import at most ${MAX_ROWS} at a time (split the file).`)
      const sameHeaders = headers.join('\u0000') === state.headers.join('\u0000')
      Object.assign(state, { source, headers, data, mapping: sameHeaders ? state.mapping : autoMap(headers, fields, table) })
      mapStep()
    })
    show(form)
    form.querySelector('input')?.focus()
  }

  // Step 2 ------------------------------------------------------------------------------------------------
  const mapStep = () => {
    const error = errorBox()
    const selects = state.headers.map((header, i) => {
      const id = uid('csv-map')
      const sampleId = `${id}-sample`
      const samples = state.data.map((r) => (r.cells[i] ?? '').trim()).filter(Boolean).slice(0, 2)
      const select = h('select', { id, 'aria-describedby': sampleId, dataset: { column: String(i) } },
        h('option', { value: '' }, 'Ignore this column'),
        fields.map((f) => h('option', { value: f.name }, `${plainLabel(f)}${mustMap.includes(f) ? ' (required)' : ''}`)))
      select.value = state.mapping[i] ?? ''
      select.addEventListener('change', () => { state.mapping[i] = select.value })
      const sample = samples.length ? `For example: ${samples.map((s) => (s.length > 40 ? `${s.slice(0, 39)}…` : s)).join(' · ')}` : 'Empty in every row'
      return h('div', { class: 'field csv-map-row' },
        h('label', { for: id }, `Column “${header}”`),
        h('p', { id: sampleId, class: 'hint' }, sample),
        select)
    })
    const form = h('form', { novalidate: true },
      stepHeading(2, 'Match the columns'),
      h('p', { class: 'hint' }, `${state.data.length} rows in ${state.source}. Choose the ${def.singular} field each column fills, or ignore it. `,
        mustMap.length ? `Required: ${mustMap.map(plainLabel).join(', ')}.` : ''),
      !isElevated(me) && fields.every((f) => f.name !== 'owner_id') && def.fields.some((f) => f.name === 'owner_id')
        ? h('p', { class: 'hint' }, `You will be the owner of the imported ${title}.`) : null,
      error,
      h('div', { class: 'csv-map' }, selects),
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'button-quiet', onclick: chooseStep }, 'Back'),
        cancelButton(),
        h('button', { type: 'submit' }, 'Next: check rows')),
    )
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      const chosen = state.mapping.filter(Boolean)
      const missing = mustMap.filter((f) => !chosen.includes(f.name))
      const twice = fields.filter((f) => chosen.filter((c) => c === f.name).length > 1)
      if (missing.length) return showError(error, `Choose a column for ${missing.map(plainLabel).join(', ')}: ${missing.length === 1 ? 'it is' : 'they are'} required.`)
      if (twice.length) return showError(error, `${twice.map(plainLabel).join(', ')} ${twice.length === 1 ? 'is' : 'are'} chosen for more than one column; ignore all but one.`)
      if (!chosen.length) return showError(error, 'Choose a field for at least one column.')
      const submit = form.querySelector('button[type="submit"]')
      submit.disabled = true
      try {
        const resolvers = new Map()
        for (const field of fields.filter((f) => f.type === 'ref' && chosen.includes(f.name))) {
          const i = state.mapping.indexOf(field.name)
          const wanted = new Set(state.data.map((r) => (r.cells[i] ?? '').trim()).filter(Boolean))
          resolvers.set(field.name, await makeResolver(field.ref, wanted))
        }
        state.check = checkRows({ ...state, fields, me, resolvers })
        previewStep()
      } catch (err) {
        showError(error, `Could not check the rows: ${err.message ?? err}`)
        submit.disabled = false
      }
    })
    show(form)
  }

  // Step 3 ------------------------------------------------------------------------------------------------
  const previewStep = (serverProblem = null) => {
    const { rows, problems, invalid } = state.check
    const valid = rows.length - invalid
    const error = errorBox()
    const mappedFields = fields.filter((f) => state.mapping.includes(f.name))
    const summary = h('p', { class: `csv-summary ${invalid ? 'csv-summary-bad' : 'csv-summary-ok'}`, role: 'status', dataset: { valid: String(valid), invalid: String(invalid) } },
      h('strong', {}, `${valid} valid`), `, ${invalid} with errors`, ` (${rows.length} ${rows.length === 1 ? 'row' : 'rows'}).`,
      invalid ? ` Fix the file${problems.some((p) => p.field) ? ' or the column matching' : ''} and check again: nothing is imported while any row has an error.` : '')

    const problemTable = problems.length
      ? h('div', { class: 'csv-scroll', role: 'region', 'aria-label': 'Problems', tabindex: '0' },
        h('table', { class: 'csv-table csv-problems' },
          h('caption', {}, `Problems (${problems.length})`),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Row'), h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Problem'))),
          h('tbody', {}, problems.slice(0, SHOWN_PROBLEMS).map((p) => h('tr', { dataset: { row: String(p.number), field: p.field } },
            h('td', {}, String(p.number)),
            h('td', {}, p.label, p.column && norm(p.column) !== norm(p.label) ? h('span', { class: 'muted' }, ` (column “${p.column}”)`) : null),
            h('td', {}, p.message)))),
        ),
        problems.length > SHOWN_PROBLEMS ? h('p', { class: 'hint' }, `…and ${problems.length - SHOWN_PROBLEMS} more problems.`) : null)
      : null

    const shown = (field, value) => {
      if (value === null || value === undefined) return ''
      if (field.type === 'ref') return lookups.name(field.ref, value) || value
      if (field.type === 'select') return field.options.find((o) => o.value === value)?.label ?? value
      if (field.type === 'checkbox') return value ? 'Yes' : 'No'
      if (Array.isArray(value)) return value.join(', ')
      return String(value)
    }
    const sample = rows.filter((r) => !problems.some((p) => p.number === r.number)).slice(0, PREVIEW_ROWS)
    const previewTable = sample.length
      ? h('div', { class: 'csv-scroll', role: 'region', 'aria-label': 'Preview', tabindex: '0' },
        h('table', { class: 'csv-table csv-preview' },
          h('caption', {}, `First ${sample.length} valid rows as they will be saved`),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Row'), mappedFields.map((f) => h('th', { scope: 'col' }, plainLabel(f))))),
          h('tbody', {}, sample.map((r) => h('tr', {}, h('td', {}, String(r.number)), mappedFields.map((f) => h('td', {}, shown(f, r.values[f.name])))))),
        ))
      : null

    const importButton = h('button', { type: 'submit', disabled: invalid > 0 || valid === 0 }, `Import ${plural(valid, def)}`)
    const progress = h('p', { class: 'hint', role: 'status' })
    const form = h('form', { novalidate: true },
      stepHeading(3, 'Check and import'),
      h('p', { class: 'hint' }, 'Row numbers count the header as row 1, as a spreadsheet shows them.'),
      error, summary, problemTable, previewTable, progress,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'button-quiet', onclick: mapStep }, 'Back'),
        cancelButton(),
        importButton),
    )
    if (serverProblem) showError(error, serverProblem)
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      if (invalid > 0 || valid === 0 || state.committing) return
      state.committing = true
      importButton.disabled = true
      form.querySelectorAll('.dialog-actions button').forEach((b) => { b.disabled = true })
      progress.textContent = `Importing ${plural(valid, def)}…`
      const payload = rows.map((r) => ({ id: newId(), ...r.values }))
      // The list shows "N contacts imported" below; the live echoes of these rows need no notice each.
      const forget = view.expectOwnWrites(payload)
      let result
      try {
        result = await supabase.from(table).insert(payload)
      } catch (err) {
        result = { error: { message: `Could not reach the server: ${err.message ?? err}` } }
      }
      state.committing = false
      if (result.error) {
        forget()
        const where = locateServerError(result.error, rows, fields, def)
        const place = where.number ? `Row ${where.number}${where.field ? `, ${plainLabel(where.field)}` : ''}: ` : where.field ? `${plainLabel(where.field)}: ` : ''
        const tooBig = result.error.code === 'PGRST413' ? ' Split the file into smaller ones.' : ''
        previewStep(`Nothing was imported. The server refused: ${place}${where.message}${tooBig}`)
        return
      }
      dialog.close()
      notify(`${plural(payload.length, def)} imported`)
    })
    show(form)
  }

  openDialog(dialog)
  chooseStep()
}
