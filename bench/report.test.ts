import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { advantage, normalizePart, pairedAdvantages, pairedSpread, renderSvg, renderTable, type BenchRow } from './report.js'

const row = (over: Partial<BenchRow>): BenchRow => ({
  section: 'echo',
  name: 'small tuple',
  unit: 'round trips/s',
  higherIsBetter: true,
  value: 100,
  anchors: { BEAM: 50, 'C-node (ei)': 200 },
  ...over,
})

test('advantage: > 1 when ts-cnode is faster, or smaller for memory', () => {
  const r = row({})
  assert.is(advantage(r, 'BEAM'), 2)
  assert.is(advantage(r, 'C-node (ei)'), 0.5)
  const mem = row({ unit: 'MB', higherIsBetter: false, value: 40, anchors: { BEAM: 20 } })
  assert.is(advantage(mem, 'BEAM'), 0.5)
})

test('advantage: undefined when a side is missing or zero', () => {
  assert.is(advantage(row({ value: undefined }), 'BEAM'), undefined)
  assert.is(advantage(row({ anchors: { BEAM: undefined } }), 'BEAM'), undefined)
  assert.is(advantage(row({ anchors: { BEAM: 0 } }), 'BEAM'), undefined)
  assert.is(advantage(row({}), 'nobody'), undefined)
})

test('normalizePart keeps a BenchPart and fills section defaults', () => {
  const p = normalizePart({ rows: [{ name: 'x', value: 1, anchors: { A: 2 } }], skipped: ['y'] }, 'drivers')
  assert.ok(p)
  assert.is(p!.rows[0].section, 'drivers')
  assert.is(p!.rows[0].higherIsBetter, true)
  assert.equal(p!.skipped, ['y'])
})

test('normalizePart turns the "figures" shape into one row per operation', () => {
  const p = normalizePart(
    [
      {
        shape: 'gen_call',
        bytes: 175,
        ours: { decode: 10, encode: 20 },
        erlangJs: { decode: 5, encode: 40 },
        beam: null,
        ratios: { decodeVsErlangJs: 2 },
        notes: ['n1'],
      },
    ],
    'etf',
  )
  assert.ok(p)
  assert.equal(
    p!.rows.map((r) => [r.name, r.value, r.anchors.erlang_js, r.anchors.BEAM]),
    [
      ['decode: gen_call', 10, 5, undefined],
      ['encode: gen_call', 20, 40, undefined],
    ],
  )
  assert.is(p!.rows[0].section, 'etf')
  assert.is(p!.rows[0].note, 'n1')
  assert.not.ok('ratios' in p!.rows[0].anchors)
})

test('normalizePart: the "figures" shape carries per-run samples to its rows, so the table gives paired medians', () => {
  const p = normalizePart(
    [
      {
        shape: 'gen_call',
        ours: { decode: 300, encode: 20 },
        erlangJs: { decode: 120, encode: 10 },
        samples: { decode: { 'ts-cnode': [300, 250, 290], erlang_js: [100, 120, 90] }, encode: { 'ts-cnode': 'x' } },
      },
    ],
    'etf',
  )
  assert.ok(p)
  assert.equal(p!.rows[0].samples, { 'ts-cnode': [300, 250, 290], erlang_js: [100, 120, 90] })
  assert.is(p!.rows[1].samples, undefined, 'samples that are not numbers are dropped')
  assert.match(renderTable(p!.rows), '2.50x (median 3.00, 2.08–3.22)')
})

test('normalizePart: undefined for anything without rows', () => {
  assert.is(normalizePart(undefined), undefined)
  assert.is(normalizePart('text'), undefined)
  assert.is(normalizePart([{ foo: 1 }]), undefined)
})

test('renderTable shows every figure and the ratios per section', () => {
  const out = renderTable([row({}), row({ section: 'memory', name: 'rss', unit: 'MB', higherIsBetter: false, value: 40, anchors: { BEAM: 20 } })])
  assert.match(out, '== echo ==')
  assert.match(out, '== memory ==')
  assert.match(out, '2.00x')
  assert.match(out, '0.50x')
  assert.match(out, 'rss (lower is better)')
})

test('renderSvg draws one bar per measured ratio and escapes names', () => {
  const svg = renderSvg([row({ name: 'a <b> & c' }), row({ name: 'no anchors', anchors: {} })], 'T', 'S')
  assert.ok(svg.startsWith('<svg'))
  assert.ok(svg.trimEnd().endsWith('</svg>'))
  assert.is((svg.match(/<title>/g) ?? []).length, 2)
  assert.match(svg, 'a &lt;b&gt; &amp; c')
  assert.not.match(svg, 'no anchors')
})


test('pairedAdvantages: run-by-run ratios, for throughput and for memory', () => {
  const r = row({ samples: { 'ts-cnode': [100, 90, 120], BEAM: [50, 100, 60] } })
  assert.equal(pairedAdvantages(r, 'BEAM'), [2, 0.9, 2])
  const mem = row({ higherIsBetter: false, samples: { 'ts-cnode': [40, 20], BEAM: [20, 20] } })
  assert.equal(pairedAdvantages(mem, 'BEAM'), [0.5, 1])
})

test('pairedAdvantages: none without two or more runs on both sides, or with unequal counts', () => {
  assert.equal(pairedAdvantages(row({}), 'BEAM'), [])
  assert.equal(pairedAdvantages(row({ samples: { 'ts-cnode': [1], BEAM: [2] } }), 'BEAM'), [])
  assert.equal(pairedAdvantages(row({ samples: { 'ts-cnode': [1, 2, 3], BEAM: [2, 3] } }), 'BEAM'), [])
  assert.equal(pairedAdvantages(row({ samples: { 'ts-cnode': [1, 2], BEAM: [2, 0] } }), 'BEAM'), [])
})

test('pairedSpread: median and range; the table and the chart show them', () => {
  // The anchor's one lucky run makes best-vs-best 0.5x; run by run ts-cnode is ahead twice out of three.
  const r = row({ value: 100, anchors: { BEAM: 200 }, samples: { 'ts-cnode': [100, 95, 90], BEAM: [80, 200, 75] } })
  const s = pairedSpread(r, 'BEAM')
  assert.ok(s)
  assert.is(s!.runs, 3)
  assert.is(s!.median, 1.2)
  assert.is(s!.min, 0.475)
  assert.is(s!.max, 1.25)
  const even = pairedSpread(row({ samples: { 'ts-cnode': [1, 4], BEAM: [1, 1] } }), 'BEAM')
  assert.is(even!.median, 2) // geometric mean of the middle two ratios
  assert.is(pairedSpread(row({}), 'BEAM'), undefined)
  const table = renderTable([r])
  assert.match(table, '0.50x (median 1.20, 0.47–1.25)')
  const svg = renderSvg([r], 't', 's')
  assert.match(svg, 'runs 0.47x to 1.25x, median 1.20x')
})

test.run()
