// Buffer views without Buffer#subarray's species lookup: Node's own FastBuffer (Buffer[Symbol.species]),
// whose prototype is Buffer.prototype, is several times cheaper to construct. Falls back to Buffer.from.

type ViewConstructor = new (ab: ArrayBufferLike, byteOffset: number, length: number) => Buffer

const Species = (Buffer as unknown as { [Symbol.species]?: ViewConstructor })[Symbol.species]
const FastBuffer = typeof Species === 'function' && Species.prototype === Buffer.prototype ? Species : undefined

/** A Buffer over ab[byteOffset, byteOffset + length), sharing its memory. */
export const makeView: (ab: ArrayBufferLike, byteOffset: number, length: number) => Buffer = FastBuffer
  ? (ab, byteOffset, length) => new FastBuffer(ab, byteOffset, length)
  : (ab, byteOffset, length) => Buffer.from(ab as ArrayBuffer, byteOffset, length)

/** buf[start, end) as a Buffer sharing buf's memory. */
export const view = (buf: Buffer, start: number, end: number): Buffer =>
  makeView(buf.buffer, buf.byteOffset + start, end - start)
