// CSV text ↔ rows of strings (RFC 4180): quoted fields with embedded delimiters, quotes ("") and line
// breaks; CRLF, LF or CR line ends; a leading byte-order mark. No DOM here, so it is easy to test.

const BOM = '\uFEFF'

/** The likeliest delimiter of `text`: the one among , ; tab that is most frequent outside quotes on the first line. */
export function sniffDelimiter(text) {
  const counts = { ',': 0, ';': 0, '\t': 0 }
  let quoted = false
  for (const ch of text.startsWith(BOM) ? text.slice(1) : text) {
    if (ch === '"') quoted = !quoted
    else if (!quoted && (ch === '\n' || ch === '\r')) break
    else if (!quoted && ch in counts) counts[ch]++
  }
  // A comma wins ties: it is the standard, and a one-column file has none of them.
  return Object.entries(counts).reduce((best, entry) => (entry[1] > best[1] ? entry : best), [',', counts[',']])[0]
}

/**
 * Parses CSV text into { records, error }: records is an array of arrays of strings, one per record,
 * blank lines included (as ['']) so that record i is spreadsheet row i + 1. The final line break is
 * optional. error is null, or { message, line } for an unterminated quoted field.
 */
export function parseCsv(text, delimiter = ',') {
  if (text.startsWith(BOM)) text = text.slice(1)
  const records = []
  let record = []
  let field = ''
  let quoted = false
  let fieldStartLine = 1
  let line = 1
  let i = 0
  const n = text.length
  const endField = () => {
    record.push(field)
    field = ''
  }
  const endRecord = () => {
    endField()
    records.push(record)
    record = []
  }
  while (i < n) {
    const ch = text[i]
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"'
          i += 2
          continue
        }
        quoted = false
        i++
        continue
      }
      if (ch === '\n' || (ch === '\r' && text[i + 1] !== '\n')) line++
      field += ch
      i++
      continue
    }
    if (ch === '"' && field === '') {
      quoted = true
      fieldStartLine = line
      i++
    } else if (ch === delimiter) {
      endField()
      i++
    } else if (ch === '\r' || ch === '\n') {
      endRecord()
      i += ch === '\r' && text[i + 1] === '\n' ? 2 : 1
      line++
    } else {
      // A quote inside an unquoted field, or text after a closing quote: kept as written (lenient, as spreadsheets are).
      field += ch
      i++
    }
  }
  if (quoted) {
    return { records, error: { line: fieldStartLine, message: `A quoted value that starts on line ${fieldStartLine} never ends (a closing " is missing).` } }
  }
  if (field !== '' || record.length > 0) endRecord()
  return { records, error: null }
}

const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/
// Cells a spreadsheet would run as a formula. Plain numbers and phone numbers (+1 555 0110, -5) are left alone.
const FORMULA = /^[=@\t\r]|^[+-](?![\d\s().+-]*$)/

/** One CSV cell: quoted when needed; values a spreadsheet would evaluate get a leading ' (kept as text). */
export function csvCell(value) {
  if (value === null || value === undefined) return ''
  let text = typeof value === 'string' ? value : String(value)
  if (FORMULA.test(text)) text = `'${text}`
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

/** Rows of values → CSV text with CRLF line ends (RFC 4180), a header first. */
export function toCsv(header, rows) {
  return [header, ...rows].map((row) => row.map(csvCell).join(',')).join('\r\n') + '\r\n'
}

/** Undoes csvCell's formula guard on import: "'=SUM(A1)" back to "=SUM(A1)". */
export function unguard(text) {
  return /^'[=@+\-\t\r]/.test(text) ? text.slice(1) : text
}
